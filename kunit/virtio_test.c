// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for balloon_virtio against a fake virtio balloon device.
 *
 * The fake is a virtio device on the real virtio bus: register_virtio_device()
 * binds balloon_virtio to it through the bus, as a PCI or MMIO transport
 * would.  Its virtqueues are real split rings from vring_create_virtqueue().
 * The test plays the device in their notify hook: it walks the available
 * ring, reads the buffers through the guest-physical addresses in the
 * descriptors, checks them against a model of the device (the PFNs it
 * holds, its config space, its status), and completes them in the used ring
 * with vring_interrupt(), interrupts off, as a device interrupt would.  It
 * keeps the stats buffer until a test asks for fresh stats, as QEMU does,
 * and lays its queues out as QEMU does: by the features it offers.
 *
 * Whatever the device sees that breaks the protocol (a PFN it already
 * holds, a page freed before the device heard of it, an "actual" that is
 * not what it holds, a stats buffer with a repeated tag, a queue the
 * driver calls by another name...) is recorded and fails the test.
 *
 * Free page hinting is played as QEMU plays it: a command id in the config
 * (shown while requested, 0 once started or stopped, 1 when done), a run
 * that starts when the driver echoes the id and stops at its next id, and
 * hints taken only while started.  The device may stop a run after a given
 * number of blocks, or keep the blocks it was given (a stalled host).
 *
 * Suites: balloon_virtio_wire (PFN arrays, ordering, actual, legacy and
 * modern devices), balloon_virtio_stats, balloon_virtio_features (page
 * poison, free page reporting, queue layout), balloon_virtio_life
 * (removal, freeze and restore, untrusted and flapping targets) and
 * balloon_virtio_hinting (free page hinting and its shrinker).
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/page_reporting.h>
#include <linux/pageblock-flags.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>
#include <linux/xarray.h>

#include "../core/internal.h"
#include "../transports/virtio/internal.h"

#define FAKE_RING		128	/* entries per queue, as QEMU's */
#define FAKE_REPORT_RING	32	/* QEMU's reporting queue */
#define FAKE_HINT_MAX		64	/* blocks the fake remembers */
#define FAKE_MAX_DESC		64
#define FAKE_WAIT_MS		5000
#define FAKE_LOG		256
#define FAKE_PCI_VENDOR		0x1af4

/* The device's queues, in protocol order. */
enum fake_role {
	FAKE_INFLATE,
	FAKE_DEFLATE,
	FAKE_STATS,
	FAKE_HINT,
	FAKE_REPORT,
	FAKE_ROLES
};

/* What balloon_virtio names each queue. */
static const char * const fake_role_names[FAKE_ROLES] = {
	[FAKE_INFLATE] = "inflate",
	[FAKE_DEFLATE] = "deflate",
	[FAKE_STATS] = "stats",
	[FAKE_HINT] = "free_page",
	[FAKE_REPORT] = "reporting",
};

/* QEMU's free page hint states. */
enum fake_hint_state {
	FAKE_HINT_S_STOP,
	FAKE_HINT_S_REQUESTED,
	FAKE_HINT_S_START,
	FAKE_HINT_S_DONE,
};

/* Events in the order the device saw them. */
enum fake_event {
	FAKE_EV_INFLATE,
	FAKE_EV_DEFLATE,
	FAKE_EV_ACTUAL,
	FAKE_EV_RESET,
	FAKE_EV_READY,
};

struct fake_entry {
	enum fake_event ev;
	u64 val;
};

struct fake_queue {
	struct virtqueue *vq;
	enum fake_role role;
	u16 last_avail;
	bool holding;		/* the device keeps the stats buffer */
	u16 held_head;
};

struct fake_desc {
	void *buf;
	u32 len;
	bool write;
};

struct fake_vdev;

/*
 * The device model.  It lives in the test's memory; the virtio device
 * itself (struct fake_vdev) belongs to the driver core and is freed by its
 * release.  @lock serialises the device side (notify hooks and config
 * writes come from the driver's work items, the test pokes from its own
 * thread).
 */
struct fake_balloon {
	struct kunit *test;
	struct fake_vdev *v;
	struct balloon_virtio *vb;
	struct mutex lock;		/* the device side, see above */

	/* the device */
	u64 offered;
	u64 features;
	u8 status;
	struct virtio_balloon_config config;
	unsigned int report_ring;
	bool no_vqs;			/* find_vqs fails, as with no vectors */
	bool hold_pfns;			/* inflate/deflate never completed */
	enum fake_role layout[FAKE_ROLES];
	unsigned int nr_layout;
	struct fake_queue q[FAKE_ROLES];	/* by queue index */
	unsigned int nq;
	struct fake_desc desc[FAKE_MAX_DESC];

	/* the balloon as the device sees it, in 4 KiB PFNs */
	struct xarray held;
	unsigned long nr_held;
	unsigned long inflated, deflated;
	unsigned int inflates, deflates, max_request;
	unsigned int actual_writes, poison_writes;
	u32 last_actual, max_jump;
	unsigned long held_at_reset;
	unsigned int resets, readies;

	/* the last stats buffer */
	struct virtio_balloon_stat stats[BALLOON_VIRTIO_STATS_MAX];
	unsigned int nr_stats, stats_bufs;

	/* free page reports */
	unsigned int reports;
	unsigned long reported_pages;

	/* free page hinting */
	enum fake_hint_state hint_state;
	u32 hint_id;
	unsigned int hint_ring;
	unsigned int hint_stop_after;	/* the host stops a run (0: never) */
	bool hint_hold;			/* the host keeps hinted buffers */
	bool hint_hold_ids;		/* ... and command id buffers */
	unsigned int hint_pressure_at;	/* the guest shrinks after this many */
	u16 hint_held[FAKE_RING];
	unsigned int nr_hint_held;
	u32 hint_ids[8];		/* command ids the driver sent */
	unsigned int nr_hint_ids;
	unsigned int hinted;		/* blocks taken while started */
	unsigned int hinted_run;
	unsigned int hint_ignored;	/* blocks outside a run */
	struct page *hint_pages[FAKE_HINT_MAX];
	unsigned int nr_hint_pages;
	unsigned int hint_live_at_reset;

	/* allocations the core may still make (static stub) */
	unsigned int allocs_left;

	struct fake_entry log[FAKE_LOG];
	unsigned int nlog;
	char error[160];
};

struct fake_vdev {
	struct virtio_device vdev;
	struct fake_balloon *fb;
};

static struct fake_balloon *to_fake(struct virtio_device *vdev)
{
	return container_of(vdev, struct fake_vdev, vdev)->fb;
}

/* Remember the first protocol error; the test fails on it. */
static __printf(2, 3) void fake_error(struct fake_balloon *fb,
				      const char *fmt, ...)
{
	va_list args;

	if (fb->error[0])
		return;
	va_start(args, fmt);
	vsnprintf(fb->error, sizeof(fb->error), fmt, args);
	va_end(args);
}

static void fake_log(struct fake_balloon *fb, enum fake_event ev, u64 val)
{
	if (fb->nlog < FAKE_LOG)
		fb->log[fb->nlog++] = (struct fake_entry) { ev, val };
}

/* -- the device side of the rings ----------------------------------------- */

/* Gather one descriptor chain into fb->desc; returns its length or -1. */
static int fake_descs(struct fake_balloon *fb, const struct vring *vr, u16 head)
{
	struct virtio_device *vdev = &fb->v->vdev;
	unsigned int n = 0;
	u16 i = head;

	for (;;) {
		const struct vring_desc *d = &vr->desc[i];
		u16 flags = virtio16_to_cpu(vdev, d->flags);

		if (n == FAKE_MAX_DESC || i >= vr->num ||
		    (flags & VRING_DESC_F_INDIRECT)) {
			fake_error(fb, "bad descriptor chain at %u", head);
			return -1;
		}
		fb->desc[n].buf = phys_to_virt(virtio64_to_cpu(vdev, d->addr));
		fb->desc[n].len = virtio32_to_cpu(vdev, d->len);
		fb->desc[n].write = flags & VRING_DESC_F_WRITE;
		n++;
		if (!(flags & VRING_DESC_F_NEXT))
			return n;
		i = virtio16_to_cpu(vdev, d->next);
	}
}

/* Hand a buffer back in the used ring. */
static void fake_use(struct fake_balloon *fb, struct virtqueue *vq, u16 head)
{
	struct virtio_device *vdev = &fb->v->vdev;
	/* The used ring is the device's to write. */
	struct vring *vr = (struct vring *)virtqueue_get_vring(vq);
	u16 idx = virtio16_to_cpu(vdev, vr->used->idx);

	vr->used->ring[idx % vr->num].id = cpu_to_virtio32(vdev, head);
	vr->used->ring[idx % vr->num].len = cpu_to_virtio32(vdev, 0);
	/* The entry before the index that publishes it, as a device must. */
	virt_wmb();
	WRITE_ONCE(vr->used->idx, cpu_to_virtio16(vdev, idx + 1));
}

/* The device's interrupt: callbacks run with interrupts off. */
static void fake_interrupt(struct virtqueue *vq)
{
	unsigned long flags;

	local_irq_save(flags);
	vring_interrupt(0, vq);
	local_irq_restore(flags);
}

/* An inflate or deflate request: 32-bit PFNs in 4 KiB units. */
static void fake_pfns(struct fake_balloon *fb, enum fake_role role, int n)
{
	struct virtio_device *vdev = &fb->v->vdev;
	bool in = role == FAKE_INFLATE;
	unsigned int i, k, count = 0;

	for (i = 0; i < n; i++) {
		const __virtio32 *pfns = fb->desc[i].buf;

		if (fb->desc[i].write || fb->desc[i].len % sizeof(*pfns)) {
			fake_error(fb, "%s buffer of %u bytes, writable %d",
				   fake_role_names[role], fb->desc[i].len,
				   fb->desc[i].write);
			return;
		}
		for (k = 0; k < fb->desc[i].len / sizeof(*pfns); k++, count++) {
			unsigned long pfn = virtio32_to_cpu(vdev, pfns[k]);
			unsigned long gfn = pfn / BALLOON_CORE_UNITS_PER_PAGE;

			if (!pfn_valid(gfn)) {
				fake_error(fb, "%s of PFN %lu, not guest memory",
					   fake_role_names[role], pfn);
				continue;
			}
			/* The device must hear of a page while it is the balloon's. */
			if (!page_ref_count(pfn_to_page(gfn)))
				fake_error(fb, "%s of PFN %lu, a free page",
					   fake_role_names[role], pfn);
			if (in && xa_load(&fb->held, pfn)) {
				fake_error(fb, "PFN %lu inflated twice", pfn);
			} else if (in) {
				if (xa_err(xa_store(&fb->held, pfn, xa_mk_value(1),
						    GFP_KERNEL | __GFP_NORETRY)))
					fake_error(fb, "fake out of memory");
				else
					fb->nr_held++;
			} else if (!xa_erase(&fb->held, pfn)) {
				fake_error(fb, "deflate of PFN %lu, not held", pfn);
			} else {
				fb->nr_held--;
			}
		}
	}
	fb->max_request = max(fb->max_request, count);
	if (in) {
		fb->inflates++;
		fb->inflated += count;
	} else {
		fb->deflates++;
		fb->deflated += count;
	}
	fake_log(fb, in ? FAKE_EV_INFLATE : FAKE_EV_DEFLATE, count);
}

/* A stats buffer: packed (tag, value) pairs, each tag once. */
static void fake_stats(struct fake_balloon *fb, int n)
{
	struct virtio_device *vdev = &fb->v->vdev;
	DECLARE_BITMAP(seen, BALLOON_VIRTIO_STATS_MAX) = { };
	unsigned int len = fb->desc[0].len, i;

	if (n != 1 || fb->desc[0].write ||
	    len % sizeof(struct virtio_balloon_stat) ||
	    len > sizeof(fb->stats)) {
		fake_error(fb, "stats buffer: %d descriptors, %u bytes", n, len);
		return;
	}
	memcpy(fb->stats, fb->desc[0].buf, len);
	fb->nr_stats = len / sizeof(struct virtio_balloon_stat);
	for (i = 0; i < fb->nr_stats; i++) {
		u16 tag = virtio16_to_cpu(vdev, fb->stats[i].tag);

		if (tag >= BALLOON_VIRTIO_STATS_MAX || test_bit(tag, seen))
			fake_error(fb, "stats tag %u unknown or repeated", tag);
		else
			__set_bit(tag, seen);
	}
	fb->stats_bufs++;
}

/* The free page hint config field, as QEMU shows it in each state. */
static void fake_hint_config(struct fake_balloon *fb)
{
	u32 id = 0;

	if (fb->hint_state == FAKE_HINT_S_REQUESTED)
		id = fb->hint_id;
	else if (fb->hint_state == FAKE_HINT_S_DONE)
		id = VIRTIO_BALLOON_CMD_ID_DONE;
	WRITE_ONCE(fb->config.free_page_hint_cmd_id, cpu_to_le32(id));
}

static void fake_config_irq(struct fake_balloon *fb)
{
	unsigned long flags;

	local_irq_save(flags);
	virtio_config_changed(&fb->v->vdev);
	local_irq_restore(flags);
}

/*
 * A free page queue buffer: a command id the driver reads, or blocks the
 * device may write.  As QEMU: the requested id starts a run, any id during
 * a run stops it, blocks count only during a run.  Returns true when the
 * device keeps the buffer.
 */
static bool fake_hint(struct fake_balloon *fb, int n)
{
	struct virtio_device *vdev = &fb->v->vdev;
	unsigned int block = PAGE_SIZE << BALLOON_VIRTIO_HINT_ORDER;
	struct fake_desc *d = &fb->desc[0];
	struct page *page;
	u32 id;

	if (n != 1) {
		fake_error(fb, "free page buffer of %d descriptors", n);
		return false;
	}
	if (!d->write) {
		if (d->len != sizeof(id)) {
			fake_error(fb, "command id of %u bytes", d->len);
			return false;
		}
		id = virtio32_to_cpu(vdev, *(__virtio32 *)d->buf);
		if (fb->nr_hint_ids < ARRAY_SIZE(fb->hint_ids))
			fb->hint_ids[fb->nr_hint_ids++] = id;
		if (fb->hint_state == FAKE_HINT_S_REQUESTED && id == fb->hint_id) {
			fb->hint_state = FAKE_HINT_S_START;
			fb->hinted_run = 0;
		} else if (fb->hint_state == FAKE_HINT_S_START) {
			fb->hint_state = FAKE_HINT_S_STOP;
		}
		fake_hint_config(fb);
		return fb->hint_hold_ids;
	}

	page = virt_to_page(d->buf);
	if (d->len != block || !IS_ALIGNED(virt_to_phys(d->buf), block))
		fake_error(fb, "hint of %u bytes", d->len);
	/* The driver owns what it hints, until the host is done. */
	else if (!page_ref_count(page))
		fake_error(fb, "hinted block is free");
	if (fb->hint_state != FAKE_HINT_S_START) {
		fb->hint_ignored++;
		return false;
	}
	fb->hinted++;
	fb->hinted_run++;
	if (fb->nr_hint_pages < FAKE_HINT_MAX)
		fb->hint_pages[fb->nr_hint_pages++] = page;
	/* Memory pressure while the device takes its hints. */
	if (fb->hinted_run == fb->hint_pressure_at)
		balloon_virtio_hint_shrink(fb->vb, 1);
	if (fb->hint_stop_after && fb->hinted_run == fb->hint_stop_after) {
		fb->hint_state = FAKE_HINT_S_STOP;
		fake_hint_config(fb);
		fake_config_irq(fb);
	}
	return fb->hint_hold;
}

/* A free page report: device-writable runs of free pages. */
static void fake_report(struct fake_balloon *fb, int n)
{
	unsigned int i;

	if (n > PAGE_REPORTING_CAPACITY)
		fake_error(fb, "report of %d runs", n);
	for (i = 0; i < n; i++) {
		struct fake_desc *d = &fb->desc[i];
		unsigned int order = get_order(d->len);

		if (!d->write || d->len != PAGE_SIZE << order ||
		    order < pageblock_order ||
		    !IS_ALIGNED(virt_to_phys(d->buf), d->len)) {
			fake_error(fb, "report run of %u bytes, writable %d",
				   d->len, d->write);
			continue;
		}
		if (page_ref_count(virt_to_page(d->buf)))
			fake_error(fb, "reported page is in use");
		fb->reported_pages += 1UL << order;
	}
	fb->reports++;
}

static bool fake_notify(struct virtqueue *vq)
{
	struct fake_balloon *fb = to_fake(vq->vdev);
	struct fake_queue *fq = &fb->q[vq->index];
	const struct vring *vr = virtqueue_get_vring(vq);
	bool used = false;
	u16 avail;

	mutex_lock(&fb->lock);
	if (!(fb->status & VIRTIO_CONFIG_S_DRIVER_OK))
		fake_error(fb, "%s queue notified before DRIVER_OK",
			   fake_role_names[fq->role]);
	avail = virtio16_to_cpu(vq->vdev, READ_ONCE(vr->avail->idx));
	/* Read the entries only after the index that published them. */
	virt_rmb();
	while (fq->last_avail != avail) {
		u16 head = virtio16_to_cpu(vq->vdev,
					   vr->avail->ring[fq->last_avail % vr->num]);
		int n;

		fq->last_avail++;
		n = fake_descs(fb, vr, head);
		if (n < 0)
			continue;
		switch (fq->role) {
		case FAKE_INFLATE:
		case FAKE_DEFLATE:
			fake_pfns(fb, fq->role, n);
			if (fb->hold_pfns)
				continue;
			break;
		case FAKE_STATS:
			if (fq->holding)
				fake_error(fb, "a second stats buffer");
			fake_stats(fb, n);
			/* Kept until the device wants fresh stats. */
			fq->holding = true;
			fq->held_head = head;
			continue;
		case FAKE_REPORT:
			fake_report(fb, n);
			break;
		case FAKE_HINT:
			if (fake_hint(fb, n)) {
				fb->hint_held[fb->nr_hint_held++] = head;
				continue;
			}
			break;
		default:
			fake_error(fb, "buffer on the %s queue",
				   fake_role_names[fq->role]);
			break;
		}
		fake_use(fb, vq, head);
		used = true;
	}
	mutex_unlock(&fb->lock);
	if (used)
		fake_interrupt(vq);
	return true;
}

/* -- config space, status, features, queues ------------------------------- */

static void fake_get(struct virtio_device *vdev, unsigned int offset,
		     void *buf, unsigned int len)
{
	struct fake_balloon *fb = to_fake(vdev);

	if (offset + len > sizeof(fb->config)) {
		fake_error(fb, "config read at %u+%u", offset, len);
		memset(buf, 0, len);
		return;
	}
	memcpy(buf, (u8 *)&fb->config + offset, len);
}

static void fake_set(struct virtio_device *vdev, unsigned int offset,
		     const void *buf, unsigned int len)
{
	struct fake_balloon *fb = to_fake(vdev);
	u32 actual;

	mutex_lock(&fb->lock);
	if (offset == offsetof(struct virtio_balloon_config, actual) &&
	    len == sizeof(actual)) {
		memcpy(&fb->config.actual, buf, len);
		actual = le32_to_cpu(fb->config.actual);
		/* "actual" is what the device holds, never more or less. */
		if (actual != fb->nr_held)
			fake_error(fb, "actual %u while the device holds %lu",
				   actual, fb->nr_held);
		fb->max_jump = max(fb->max_jump,
				   max(actual, fb->last_actual) -
				   min(actual, fb->last_actual));
		fb->last_actual = actual;
		fb->actual_writes++;
		fake_log(fb, FAKE_EV_ACTUAL, actual);
	} else if (offset == offsetof(struct virtio_balloon_config,
				      poison_val) && len == sizeof(u32)) {
		memcpy(&fb->config.poison_val, buf, len);
		fb->poison_writes++;
	} else {
		fake_error(fb, "config write at %u+%u", offset, len);
	}
	mutex_unlock(&fb->lock);
}

static u8 fake_get_status(struct virtio_device *vdev)
{
	return READ_ONCE(to_fake(vdev)->status);
}

static void fake_set_status(struct virtio_device *vdev, u8 status)
{
	struct fake_balloon *fb = to_fake(vdev);

	mutex_lock(&fb->lock);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(fb->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
		fb->readies++;
		fake_log(fb, FAKE_EV_READY, 0);
	}
	WRITE_ONCE(fb->status, status);
	mutex_unlock(&fb->lock);
}

/* A reset forgets the poison value, not the pages (as QEMU). */
static void fake_reset(struct virtio_device *vdev)
{
	struct fake_balloon *fb = to_fake(vdev);
	unsigned int i;

	mutex_lock(&fb->lock);
	WRITE_ONCE(fb->status, 0);
	fb->resets++;
	fb->held_at_reset = max(fb->held_at_reset, fb->nr_held);
	fb->config.poison_val = 0;
	fb->nr_hint_held = 0;
	for (i = 0, fb->hint_live_at_reset = 0; i < fb->nr_hint_pages; i++)
		fb->hint_live_at_reset += !!page_ref_count(fb->hint_pages[i]);
	fake_log(fb, FAKE_EV_RESET, fb->nr_held);
	mutex_unlock(&fb->lock);
}

static u64 fake_get_features(struct virtio_device *vdev)
{
	return to_fake(vdev)->offered;
}

static int fake_finalize_features(struct virtio_device *vdev)
{
	vring_transport_features(vdev);
	to_fake(vdev)->features = vdev->features;
	return 0;
}

static void fake_del_vqs(struct virtio_device *vdev)
{
	struct fake_balloon *fb = to_fake(vdev);
	struct virtqueue *vq, *n;

	list_for_each_entry_safe(vq, n, &vdev->vqs, list)
		vring_del_virtqueue(vq);
	memset(fb->q, 0, sizeof(fb->q));
	fb->nq = 0;
}

/* Queues get indices in order, skipping the ones the driver leaves out. */
static int fake_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
			 struct virtqueue *vqs[],
			 struct virtqueue_info vqs_info[],
			 struct irq_affinity *desc)
{
	struct fake_balloon *fb = to_fake(vdev);
	unsigned int i, q = 0;

	if (fb->no_vqs)
		return -ENOMEM;
	for (i = 0; i < nvqs; i++) {
		struct fake_queue *fq = &fb->q[q];

		vqs[i] = NULL;
		if (!vqs_info[i].name)
			continue;
		if (q == fb->nr_layout) {
			fake_error(fb, "driver wants queue %u of %u", q,
				   fb->nr_layout);
			fake_del_vqs(vdev);
			return -ENOENT;
		}
		fq->role = fb->layout[q];
		if (strcmp(vqs_info[i].name, fake_role_names[fq->role]))
			fake_error(fb, "queue %u is the device's %s queue, the driver's %s",
				   q, fake_role_names[fq->role],
				   vqs_info[i].name);
		fq->vq = vring_create_virtqueue(q, fq->role == FAKE_REPORT ?
						fb->report_ring :
						fq->role == FAKE_HINT ?
						fb->hint_ring : FAKE_RING,
						SMP_CACHE_BYTES, vdev, true,
						false, vqs_info[i].ctx,
						fake_notify,
						vqs_info[i].callback,
						vqs_info[i].name);
		if (!fq->vq) {
			fake_del_vqs(vdev);
			return -ENOMEM;
		}
		vqs[i] = fq->vq;
		fb->nq = ++q;
	}
	return 0;
}

static const struct virtio_config_ops fake_config_ops = {
	.get = fake_get,
	.set = fake_set,
	.get_status = fake_get_status,
	.set_status = fake_set_status,
	.reset = fake_reset,
	.find_vqs = fake_find_vqs,
	.del_vqs = fake_del_vqs,
	.get_features = fake_get_features,
	.finalize_features = fake_finalize_features,
};

static void fake_release(struct device *dev)
{
	kfree(container_of(dev, struct fake_vdev, vdev.dev));
}

/* -- test helpers --------------------------------------------------------- */

/* The device's queue playing @role, or %NULL when the driver set none up. */
static struct fake_queue *fake_queue(struct fake_balloon *fb,
				     enum fake_role role)
{
	unsigned int q;

	for (q = 0; q < fb->nq; q++)
		if (fb->q[q].role == role)
			return &fb->q[q];
	return NULL;
}

#define FAKE_F(bit)	BIT_ULL(VIRTIO_BALLOON_F_##bit)

/* Poll for a condition the driver's work items bring about. */
#define fake_wait_for(cond) ({						\
	unsigned long __until = jiffies + msecs_to_jiffies(FAKE_WAIT_MS);	\
	bool __ok;							\
									\
	while (!(__ok = (cond)) && time_before(jiffies, __until))	\
		usleep_range(1000, 3000);				\
	__ok;								\
})

static int fake_init(struct kunit *test)
{
	struct fake_balloon *fb = kunit_kzalloc(test, sizeof(*fb), GFP_KERNEL);

	if (!fb)
		return -ENOMEM;
	fb->test = test;
	mutex_init(&fb->lock);
	xa_init(&fb->held);
	fb->offered = BIT_ULL(VIRTIO_F_VERSION_1) |
		      BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |
		      FAKE_F(MUST_TELL_HOST) | FAKE_F(STATS_VQ);
	fb->report_ring = FAKE_REPORT_RING;
	fb->hint_ring = FAKE_RING;
	test->priv = fb;
	return 0;
}

/* Put the device on the virtio bus; balloon_virtio must bind to it. */
static void fake_plug(struct kunit *test, struct fake_balloon *fb)
{
	struct fake_vdev *v;
	int ret;

	fb->nr_layout = 0;
	fb->layout[fb->nr_layout++] = FAKE_INFLATE;
	fb->layout[fb->nr_layout++] = FAKE_DEFLATE;
	if (fb->offered & FAKE_F(STATS_VQ))
		fb->layout[fb->nr_layout++] = FAKE_STATS;
	if (fb->offered & FAKE_F(FREE_PAGE_HINT))
		fb->layout[fb->nr_layout++] = FAKE_HINT;
	if (fb->offered & FAKE_F(REPORTING))
		fb->layout[fb->nr_layout++] = FAKE_REPORT;

	v = kzalloc(sizeof(*v), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, v);
	v->fb = fb;
	v->vdev.id.device = VIRTIO_ID_BALLOON;
	v->vdev.id.vendor = FAKE_PCI_VENDOR;
	v->vdev.config = &fake_config_ops;
	v->vdev.dev.release = fake_release;
	fb->v = v;
	ret = register_virtio_device(&v->vdev);
	if (ret) {
		fb->v = NULL;
		put_device(&v->vdev.dev);
		KUNIT_ASSERT_EQ(test, ret, 0);
	}
	KUNIT_ASSERT_NOT_NULL(test, v->vdev.dev.driver);
	KUNIT_ASSERT_STREQ(test, v->vdev.dev.driver->name, "balloon_virtio");
	fb->vb = v->vdev.priv;
	/* The core's first cycle. */
	flush_delayed_work(&fb->vb->bdev.work);
}

static void fake_unplug(struct fake_balloon *fb)
{
	unregister_virtio_device(&fb->v->vdev);
	fb->v = NULL;
	fb->vb = NULL;
}

static void fake_exit(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	if (fb->v)
		fake_unplug(fb);
	xa_destroy(&fb->held);
}

static u32 fake_actual(struct fake_balloon *fb)
{
	return le32_to_cpu(READ_ONCE(fb->config.actual));
}

/* Set the host's target; with @irq, raise a config-change interrupt. */
static void fake_target(struct fake_balloon *fb, u32 pages, bool irq)
{
	WRITE_ONCE(fb->config.num_pages, cpu_to_le32(pages));
	if (irq)
		fake_config_irq(fb);
}

/* Wait for the driver to report @pages as the balloon's size. */
static void fake_wait_actual(struct kunit *test, struct fake_balloon *fb,
			     u32 pages)
{
	bool reached = fake_wait_for(fake_actual(fb) == pages);

	KUNIT_ASSERT_TRUE_MSG(test, reached,
			      "actual %u, target %u; device error: \"%s\"",
			      fake_actual(fb), pages, fb->error);
}

/* Move the target and wait for the balloon to get there. */
static void fake_move(struct kunit *test, struct fake_balloon *fb, u32 pages)
{
	fake_target(fb, pages, true);
	fake_wait_actual(test, fb, pages);
}

static void expect_clean(struct kunit *test, struct fake_balloon *fb)
{
	KUNIT_EXPECT_STREQ(test, fb->error, "");
	if (fb->vb)
		KUNIT_EXPECT_EQ(test, fb->vb->bdev.size, (u64)fb->nr_held);
}

/* -- balloon_virtio_wire --------------------------------------------------- */

static void probe_binds_and_negotiates(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fb->offered |= FAKE_F(DEFLATE_ON_OOM);
	fake_plug(test, fb);

	KUNIT_EXPECT_TRUE(test, fb->status & VIRTIO_CONFIG_S_DRIVER_OK);
	KUNIT_EXPECT_TRUE(test, fb->status & VIRTIO_CONFIG_S_FEATURES_OK);
	/* Indirect descriptors are refused: a report must not allocate. */
	KUNIT_EXPECT_EQ(test, fb->features,
			BIT_ULL(VIRTIO_F_VERSION_1) | FAKE_F(MUST_TELL_HOST) |
			FAKE_F(STATS_VQ) | FAKE_F(DEFLATE_ON_OOM));
	KUNIT_EXPECT_EQ(test, fb->nq, 3U);
	KUNIT_EXPECT_EQ(test, fb->readies, 1U);
	expect_clean(test, fb);
}

static void inflate_sends_4k_pfns_of_balloon_pages(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long pfn;
	void *entry;
	unsigned int offline = 0;

	fake_target(fb, 3000, false);
	fake_plug(test, fb);
	fake_wait_actual(test, fb, 3000);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 3000UL);
	KUNIT_EXPECT_EQ(test, fb->inflated, 3000UL);
	KUNIT_EXPECT_EQ(test, fb->deflated, 0UL);
	KUNIT_EXPECT_LE(test, fb->max_request, BALLOON_VIRTIO_PFNS);
	KUNIT_EXPECT_GE(test, fb->inflates, DIV_ROUND_UP(3000, BALLOON_VIRTIO_PFNS));
	/* Every PFN the device holds is a page the balloon owns. */
	xa_for_each(&fb->held, pfn, entry)
		offline += PageOffline(pfn_to_page(pfn / BALLOON_CORE_UNITS_PER_PAGE));
	KUNIT_EXPECT_EQ(test, offline, 3000U);
	expect_clean(test, fb);
}

static void deflate_tells_host_before_free(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int i, deflate_at = 0, actual_at = 0;

	fake_target(fb, 3000, false);
	fake_plug(test, fb);
	fake_wait_actual(test, fb, 3000);
	fb->nlog = 0;
	fake_move(test, fb, 1000);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 1000UL);
	KUNIT_EXPECT_EQ(test, fb->deflated, 2000UL);
	/* The device heard of each page while it was allocated (fake_pfns). */
	for (i = 0; i < fb->nlog; i++) {
		if (fb->log[i].ev == FAKE_EV_DEFLATE && !deflate_at)
			deflate_at = i + 1;
		if (fb->log[i].ev == FAKE_EV_ACTUAL && !actual_at)
			actual_at = i + 1;
	}
	/* Told first, then the new size reported. */
	KUNIT_EXPECT_GT(test, deflate_at, 0U);
	KUNIT_EXPECT_GT(test, actual_at, deflate_at);
	expect_clean(test, fb);
}

static void actual_follows_every_change(struct kunit *test)
{
	static const u32 targets[] = { 500, 2000, 100, 1234, 0 };
	struct fake_balloon *fb = test->priv;
	unsigned int i;

	fake_plug(test, fb);
	for (i = 0; i < ARRAY_SIZE(targets); i++) {
		unsigned int writes = fb->actual_writes;

		fake_move(test, fb, targets[i]);
		KUNIT_EXPECT_GT_MSG(test, fb->actual_writes, writes,
				    "target %u", targets[i]);
		KUNIT_EXPECT_EQ(test, fb->nr_held, (unsigned long)targets[i]);
	}
	KUNIT_EXPECT_EQ(test, fb->inflated - fb->deflated, 0UL);
	expect_clean(test, fb);
}

struct fake_transport_case {
	const char *name;
	bool modern;
};

static const struct fake_transport_case transport_cases[] = {
	{ "modern (VERSION_1)", true },
	{ "legacy", false },
};

static void transport_case_desc(const struct fake_transport_case *c,
				char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(transport, transport_cases, transport_case_desc);

static void config_le_on_legacy_and_modern(struct kunit *test)
{
	const struct fake_transport_case *c = test->param_value;
	struct fake_balloon *fb = test->priv;
	u8 raw[4];

	if (!c->modern)
		fb->offered &= ~BIT_ULL(VIRTIO_F_VERSION_1);
	fake_target(fb, 0x304, false);
	fake_plug(test, fb);
	fake_wait_actual(test, fb, 0x304);

	KUNIT_EXPECT_EQ(test, !!(fb->features & BIT_ULL(VIRTIO_F_VERSION_1)),
			c->modern);
	/* Only a modern device has FEATURES_OK. */
	KUNIT_EXPECT_EQ(test, !!(fb->status & VIRTIO_CONFIG_S_FEATURES_OK),
			c->modern);
	/* The balloon's config is little-endian on legacy devices too. */
	memcpy(raw, &fb->config.actual, sizeof(raw));
	KUNIT_EXPECT_EQ(test, raw[0], 0x04);
	KUNIT_EXPECT_EQ(test, raw[1], 0x03);
	KUNIT_EXPECT_EQ(test, raw[2], 0);
	KUNIT_EXPECT_EQ(test, raw[3], 0);
	/* Stats tags and values decode in the device's byte order. */
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 1U);
	fake_move(test, fb, 0);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_wire_cases[] = {
	KUNIT_CASE(probe_binds_and_negotiates),
	KUNIT_CASE(inflate_sends_4k_pfns_of_balloon_pages),
	KUNIT_CASE(deflate_tells_host_before_free),
	KUNIT_CASE(actual_follows_every_change),
	KUNIT_CASE_PARAM(config_le_on_legacy_and_modern, transport_gen_params),
	{ }
};

static struct kunit_suite balloon_virtio_wire_suite = {
	.name = "balloon_virtio_wire",
	.init = fake_init,
	.exit = fake_exit,
	.test_cases = balloon_virtio_wire_cases,
};

/* -- balloon_virtio_stats -------------------------------------------------- */

/* The tags this kernel can answer. */
static unsigned long fake_expected_tags(void)
{
	unsigned long tags = GENMASK(VIRTIO_BALLOON_S_CACHES,
				     VIRTIO_BALLOON_S_MEMFREE);

	if (IS_ENABLED(CONFIG_VM_EVENT_COUNTERS)) {
		tags |= GENMASK(VIRTIO_BALLOON_S_MINFLT,
				VIRTIO_BALLOON_S_SWAP_IN);
		tags |= GENMASK(VIRTIO_BALLOON_S_DIRECT_RECLAIM,
				VIRTIO_BALLOON_S_OOM_KILL);
		if (IS_ENABLED(CONFIG_HUGETLB_PAGE))
			tags |= BIT(VIRTIO_BALLOON_S_HTLB_PGALLOC) |
				BIT(VIRTIO_BALLOON_S_HTLB_PGFAIL);
	}
	return tags;
}

/* The value of @tag in the last stats buffer, or U64_MAX. */
static u64 fake_stat(struct fake_balloon *fb, unsigned int tag)
{
	struct virtio_device *vdev = &fb->v->vdev;
	unsigned int i;

	for (i = 0; i < fb->nr_stats; i++)
		if (virtio16_to_cpu(vdev, fb->stats[i].tag) == tag)
			return virtio64_to_cpu(vdev, fb->stats[i].val);
	return U64_MAX;
}

static unsigned long fake_stat_tags(struct fake_balloon *fb)
{
	unsigned long tags = 0;
	unsigned int i;

	for (i = 0; i < fb->nr_stats; i++)
		tags |= BIT(virtio16_to_cpu(&fb->v->vdev, fb->stats[i].tag));
	return tags;
}

/* Wait for the @n-th stats buffer. */
static void fake_wait_stats(struct kunit *test, struct fake_balloon *fb,
			    unsigned int n)
{
	bool arrived = fake_wait_for(READ_ONCE(fb->stats_bufs) == n);

	KUNIT_ASSERT_TRUE_MSG(test, arrived, "%u stats buffers, not %u",
			      fb->stats_bufs, n);
}

/*
 * The device asks for fresh stats: it hands the buffer back, from its
 * interrupt.  Returns whether the new buffer was already there when the
 * interrupt returned (it must not be: stats are not built in interrupt
 * context).
 */
static bool fake_request_stats(struct fake_balloon *fb)
{
	struct fake_queue *fq = fake_queue(fb, FAKE_STATS);
	unsigned int before = fb->stats_bufs;
	unsigned long flags;
	bool early;

	mutex_lock(&fb->lock);
	if (!fq || !fq->holding) {
		fake_error(fb, "no stats buffer to hand back");
		mutex_unlock(&fb->lock);
		return false;
	}
	fq->holding = false;
	fake_use(fb, fq->vq, fq->held_head);
	mutex_unlock(&fb->lock);

	local_irq_save(flags);
	vring_interrupt(0, fq->vq);
	early = READ_ONCE(fb->stats_bufs) != before;
	local_irq_restore(flags);
	return early;
}

static void stats_queued_before_driver_ok_sent_after(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	u64 total = (u64)totalram_pages() << PAGE_SHIFT;

	fake_plug(test, fb);

	/* fake_notify fails the test if the kick came before DRIVER_OK. */
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 1U);
	KUNIT_EXPECT_TRUE(test, fake_queue(fb, FAKE_STATS)->holding);
	KUNIT_EXPECT_EQ(test, fake_stat_tags(fb), fake_expected_tags());
	KUNIT_EXPECT_EQ(test, fake_stat(fb, VIRTIO_BALLOON_S_MEMTOT), total);
	KUNIT_EXPECT_LE(test, fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE), total);
	KUNIT_EXPECT_GT(test, fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE), 0);
	KUNIT_EXPECT_LE(test, fake_stat(fb, VIRTIO_BALLOON_S_AVAIL), total);
	expect_clean(test, fb);
}

static void stats_refreshed_on_each_request(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	u64 free0, free1;
	void *hog;
	unsigned int i;

	fake_plug(test, fb);
	for (i = 0; i < 3; i++) {
		unsigned int before = fb->stats_bufs;

		KUNIT_EXPECT_FALSE_MSG(test, fake_request_stats(fb),
				       "stats built in interrupt context");
		fake_wait_stats(test, fb, before + 1);
		KUNIT_EXPECT_TRUE(test, fake_queue(fb, FAKE_STATS)->holding);
	}
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 4U);

	/* Fresh values: 8 MiB taken between two requests shows. */
	free0 = fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE);
	hog = vmalloc(SZ_8M);
	KUNIT_ASSERT_NOT_NULL(test, hog);
	fake_request_stats(fb);
	fake_wait_stats(test, fb, 5);
	free1 = fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE);
	vfree(hog);
	KUNIT_EXPECT_GE(test, free0 - free1, 6ULL << 20);
	expect_clean(test, fb);
}

static void stats_event_counters_in_units(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long *before, *after;
	u64 scan;

	if (!IS_ENABLED(CONFIG_VM_EVENT_COUNTERS))
		kunit_skip(test, "no VM event counters");
	before = kunit_kcalloc(test, NR_VM_EVENT_ITEMS, sizeof(*before),
			       GFP_KERNEL);
	after = kunit_kcalloc(test, NR_VM_EVENT_ITEMS, sizeof(*after),
			      GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, before);
	KUNIT_ASSERT_NOT_NULL(test, after);

	fake_plug(test, fb);
	all_vm_events(before);
	fake_request_stats(fb);
	fake_wait_stats(test, fb, 2);
	all_vm_events(after);

	/* Counts as counts, amounts of memory in bytes. */
	KUNIT_EXPECT_GE(test, fake_stat(fb, VIRTIO_BALLOON_S_MINFLT),
			(u64)before[PGFAULT]);
	KUNIT_EXPECT_LE(test, fake_stat(fb, VIRTIO_BALLOON_S_MINFLT),
			(u64)after[PGFAULT]);
	KUNIT_EXPECT_EQ(test, fake_stat(fb, VIRTIO_BALLOON_S_OOM_KILL),
			(u64)after[OOM_KILL]);
	scan = fake_stat(fb, VIRTIO_BALLOON_S_ASYNC_SCAN);
	KUNIT_EXPECT_GE(test, scan, (u64)before[PGSCAN_KSWAPD] << PAGE_SHIFT);
	KUNIT_EXPECT_LE(test, scan, (u64)after[PGSCAN_KSWAPD] << PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, fake_stat(fb, VIRTIO_BALLOON_S_SWAP_OUT),
			(u64)after[PSWPOUT] << PAGE_SHIFT);
	expect_clean(test, fb);
}

static void stats_absent_without_feature(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fb->offered &= ~FAKE_F(STATS_VQ);
	fake_plug(test, fb);
	KUNIT_EXPECT_EQ(test, fb->nq, 2U);
	KUNIT_EXPECT_NULL(test, fb->vb->vqs[BALLOON_VIRTIO_VQ_STATS]);
	fake_move(test, fb, 700);
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 0U);
	expect_clean(test, fb);
}

static void stats_request_racing_removal(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fake_plug(test, fb);
	fake_request_stats(fb);
	fake_unplug(fb);
	/* Removal waited for the refill or cancelled it; nothing after reset. */
	KUNIT_EXPECT_LE(test, fb->stats_bufs, 2U);
	KUNIT_EXPECT_EQ(test, fb->status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_stats_cases[] = {
	KUNIT_CASE(stats_queued_before_driver_ok_sent_after),
	KUNIT_CASE(stats_refreshed_on_each_request),
	KUNIT_CASE(stats_event_counters_in_units),
	KUNIT_CASE(stats_absent_without_feature),
	KUNIT_CASE(stats_request_racing_removal),
	{ }
};

static struct kunit_suite balloon_virtio_stats_suite = {
	.name = "balloon_virtio_stats",
	.init = fake_init,
	.exit = fake_exit,
	.test_cases = balloon_virtio_stats_cases,
};

/* -- balloon_virtio_features ----------------------------------------------- */

enum fake_content { FAKE_FREE_ANY, FAKE_FREE_ZEROED, FAKE_FREE_POISONED };

static bool fake_content_zeroed(u32 *poison_val)
{
	*poison_val = 0;
	return true;
}

static bool fake_content_poisoned(u32 *poison_val)
{
	*poison_val = 0xaaaaaaaa;
	return true;
}

static bool fake_content_any(u32 *poison_val)
{
	return false;
}

static void fake_guest_content(struct kunit *test, enum fake_content c)
{
	switch (c) {
	case FAKE_FREE_ANY:
		kunit_activate_static_stub(test, balloon_virtio_free_page_content,
					   fake_content_any);
		break;
	case FAKE_FREE_ZEROED:
		kunit_activate_static_stub(test, balloon_virtio_free_page_content,
					   fake_content_zeroed);
		break;
	case FAKE_FREE_POISONED:
		kunit_activate_static_stub(test, balloon_virtio_free_page_content,
					   fake_content_poisoned);
		break;
	}
}

struct fake_feature_case {
	const char *name;
	u64 offered;
	enum fake_content content;
	u64 accepted;
	bool poison_written;
	u32 poison_val;
};

static const struct fake_feature_case feature_cases[] = {
	{ "free pages unused, device has poison and reporting",
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), FAKE_FREE_ANY,
	  FAKE_F(REPORTING), false, 0 },
	{ "init_on_free, device has poison and reporting",
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), FAKE_FREE_ZEROED,
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), true, 0 },
	{ "page_poison, device has poison and reporting",
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), FAKE_FREE_POISONED,
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), true, 0xaaaaaaaa },
	{ "page_poison, device without poison",
	  FAKE_F(REPORTING), FAKE_FREE_POISONED, 0, false, 0 },
	{ "init_on_free, device without poison",
	  FAKE_F(REPORTING), FAKE_FREE_ZEROED, 0, false, 0 },
	{ "free pages unused, device has reporting only",
	  FAKE_F(REPORTING), FAKE_FREE_ANY, FAKE_F(REPORTING), false, 0 },
	{ "device has hinting and reporting",
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(REPORTING), FAKE_FREE_ANY,
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(REPORTING), false, 0 },
	{ "device has hinting only",
	  FAKE_F(FREE_PAGE_HINT), FAKE_FREE_ANY, FAKE_F(FREE_PAGE_HINT),
	  false, 0 },
	{ "page_poison, device has hinting, poison and reporting",
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(PAGE_POISON) | FAKE_F(REPORTING),
	  FAKE_FREE_POISONED,
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(PAGE_POISON) | FAKE_F(REPORTING),
	  true, 0xaaaaaaaa },
};

static void feature_case_desc(const struct fake_feature_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(feature, feature_cases, feature_case_desc);

static void features_follow_free_page_rules(struct kunit *test)
{
	const struct fake_feature_case *c = test->param_value;
	const u64 mask = FAKE_F(PAGE_POISON) | FAKE_F(REPORTING) |
			 FAKE_F(FREE_PAGE_HINT);
	struct fake_balloon *fb = test->priv;

	fake_guest_content(test, c->content);
	fb->offered |= c->offered;
	fake_plug(test, fb);

	KUNIT_EXPECT_EQ(test, fb->features & mask, c->accepted);
	KUNIT_EXPECT_EQ(test, fb->poison_writes > 0, c->poison_written);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(fb->config.poison_val), c->poison_val);
	KUNIT_EXPECT_EQ(test, fb->vb->reporting,
			!!(c->accepted & FAKE_F(REPORTING)));
	KUNIT_EXPECT_EQ(test, !!fb->vb->vqs[BALLOON_VIRTIO_VQ_REPORTING],
			!!(c->accepted & FAKE_F(REPORTING)));
	KUNIT_EXPECT_EQ(test, !!fb->vb->vqs[BALLOON_VIRTIO_VQ_FREE_PAGE],
			!!(c->accepted & FAKE_F(FREE_PAGE_HINT)));
	/* The balloon itself works whatever was negotiated. */
	fake_move(test, fb, 300);
	expect_clean(test, fb);
}

static void reporting_sends_free_runs(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int reports;
	bool reported;

	fake_guest_content(test, FAKE_FREE_ANY);
	fb->offered |= FAKE_F(REPORTING);
	fake_plug(test, fb);
	KUNIT_ASSERT_TRUE(test, fb->vb->reporting);

	/* The page reporting worker starts 2 s after registration. */
	reported = fake_wait_for(READ_ONCE(fb->reports) > 0);
	KUNIT_EXPECT_TRUE_MSG(test, reported, "no report; device error: \"%s\"",
			      fb->error);
	KUNIT_EXPECT_GE(test, fb->reported_pages, 1UL << pageblock_order);
	fake_unplug(fb);
	reports = fb->reports;
	msleep(100);
	KUNIT_EXPECT_EQ(test, fb->reports, reports);
	expect_clean(test, fb);
}

static void reporting_short_ring_goes_without(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fake_guest_content(test, FAKE_FREE_ANY);
	fb->offered |= FAKE_F(REPORTING);
	fb->report_ring = PAGE_REPORTING_CAPACITY / 2;
	fake_plug(test, fb);

	KUNIT_EXPECT_TRUE(test, fb->features & FAKE_F(REPORTING));
	KUNIT_EXPECT_FALSE(test, fb->vb->reporting);
	fake_move(test, fb, 300);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_features_cases[] = {
	KUNIT_CASE_PARAM(features_follow_free_page_rules, feature_gen_params),
	KUNIT_CASE_SLOW(reporting_sends_free_runs),
	KUNIT_CASE(reporting_short_ring_goes_without),
	{ }
};

static struct kunit_suite balloon_virtio_features_suite = {
	.name = "balloon_virtio_features",
	.init = fake_init,
	.exit = fake_exit,
	.test_cases = balloon_virtio_features_cases,
};

/* -- balloon_virtio_life ---------------------------------------------------- */

static void remove_returns_every_page_then_resets(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int resets, i, last_deflate = 0, reset_at = 0;

	fake_target(fb, 2000, false);
	fake_plug(test, fb);
	fake_wait_actual(test, fb, 2000);
	resets = fb->resets;
	fb->nlog = 0;
	fake_unplug(fb);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 0U);
	KUNIT_EXPECT_EQ(test, fb->resets, resets + 1);
	KUNIT_EXPECT_EQ(test, fb->held_at_reset, 0UL);
	/* The virtio core acknowledges the device again after removal. */
	KUNIT_EXPECT_EQ(test, fb->status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	for (i = 0; i < fb->nlog; i++) {
		if (fb->log[i].ev == FAKE_EV_DEFLATE)
			last_deflate = i + 1;
		if (fb->log[i].ev == FAKE_EV_RESET)
			reset_at = i + 1;
	}
	KUNIT_EXPECT_GT(test, last_deflate, 0U);
	KUNIT_EXPECT_GT(test, reset_at, last_deflate);
	expect_clean(test, fb);
}

static void freeze_restore_starts_afresh(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;
	unsigned int stats;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	fake_guest_content(test, FAKE_FREE_POISONED);
	fb->offered |= FAKE_F(PAGE_POISON) | FAKE_F(REPORTING);
	fake_target(fb, 1000, false);
	fake_plug(test, fb);
	vdev = &fb->v->vdev;
	fake_wait_actual(test, fb, 1000);

	KUNIT_ASSERT_EQ(test, virtio_device_freeze(vdev), 0);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 0U);
	KUNIT_EXPECT_EQ(test, fb->status, 0);
	KUNIT_EXPECT_FALSE(test, fb->vb->reporting);
	stats = fb->stats_bufs;

	KUNIT_ASSERT_EQ(test, virtio_device_restore(vdev), 0);
	/* The reset forgot poison_val: restore tells it again. */
	KUNIT_EXPECT_EQ(test, le32_to_cpu(fb->config.poison_val), 0xaaaaaaaaU);
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, stats + 1);
	KUNIT_EXPECT_TRUE(test, fb->vb->reporting);
	KUNIT_EXPECT_EQ(test, fb->readies, 2U);
	fake_wait_actual(test, fb, 1000);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 1000UL);
	expect_clean(test, fb);
}

static void failed_restore_then_remove(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	fake_target(fb, 300, false);
	fake_plug(test, fb);
	vdev = &fb->v->vdev;
	fake_wait_actual(test, fb, 300);

	KUNIT_ASSERT_EQ(test, virtio_device_freeze(vdev), 0);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	/* The queues cannot be set up again: the device stays bound, dead. */
	fb->no_vqs = true;
	KUNIT_EXPECT_NE(test, virtio_device_restore(vdev), 0);
	KUNIT_EXPECT_FALSE(test, fb->vb->live);

	/* Removal then finds nothing to stop, and frees nothing twice. */
	fake_unplug(fb);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
}

static void broken_device_ends_waits(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct balloon_core_dev *bdev;
	unsigned long t0;
	bool queued;

	/* A device that takes requests and never answers, then breaks. */
	fake_plug(test, fb);
	bdev = &fb->vb->bdev;
	fb->hold_pfns = true;
	fake_target(fb, 3000, true);
	queued = fake_wait_for(READ_ONCE(fb->inflates) > 0);
	KUNIT_ASSERT_TRUE(test, queued);
	/* Gone: what it held is moot, and it hears of nothing any more. */
	mutex_lock(&fb->lock);
	xa_destroy(&fb->held);
	fb->nr_held = 0;
	mutex_unlock(&fb->lock);
	virtio_break_device(&fb->v->vdev);

	/* The work loop's wait ends within its one-second look. */
	t0 = jiffies;
	flush_delayed_work(&bdev->work);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 2500U);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_GE(test, balloon_core_stat_read(bdev,
						     BALLOON_CORE_STAT_INFLATE_FAIL), 1);

	/* Removal does not hang on the dead device either. */
	t0 = jiffies;
	fake_unplug(fb);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 5000U);
	KUNIT_EXPECT_STREQ(test, fb->error, "");
}

static struct page *fake_alloc_page(gfp_t gfp, unsigned int order)
{
	struct fake_balloon *fb = kunit_get_current_test()->priv;

	/* Single pages only: the core's split blocks would not count. */
	if (order || !fb->allocs_left)
		return NULL;
	fb->allocs_left--;
	return alloc_pages(gfp, order);
}

static void target_all_ones_clamped_and_bounded(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct balloon_core_dev *bdev;
	u64 ram = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;

	fake_plug(test, fb);
	bdev = &fb->vb->bdev;
	/* No interrupt: the test steps the core itself, allocations capped. */
	kunit_activate_static_stub(test, balloon_core_alloc_page,
				   fake_alloc_page);
	fb->allocs_left = 300;
	fake_target(fb, U32_MAX, false);
	balloon_core_run_cycle(bdev);

	KUNIT_EXPECT_LE(test, bdev->target, ram);
	KUNIT_EXPECT_GE(test, balloon_core_stat_read(bdev,
						     BALLOON_CORE_STAT_CLAMPED), 1);
	KUNIT_EXPECT_EQ(test, bdev->size, 300);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 300U);
	/* Out of memory: the next cycle does nothing, and ends. */
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, 300);

	fake_target(fb, 0, false);
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 0U);
	expect_clean(test, fb);
}

static void target_flapping_settles(struct kunit *test)
{
	static const u32 targets[] = { 4000, 0, U32_MAX, 100, 2500, 0, 7000 };
	struct fake_balloon *fb = test->priv;
	unsigned int i;

	fake_plug(test, fb);
	for (i = 0; i < 60; i++) {
		fake_target(fb, targets[i % ARRAY_SIZE(targets)], true);
		usleep_range(500, 1500);
	}
	fake_move(test, fb, 1500);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 1500UL);
	/* One cycle moves the balloon by at most its budget. */
	KUNIT_EXPECT_LE(test, fb->max_jump, 16384U);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_life_cases[] = {
	KUNIT_CASE(remove_returns_every_page_then_resets),
	KUNIT_CASE(freeze_restore_starts_afresh),
	KUNIT_CASE(failed_restore_then_remove),
	KUNIT_CASE_SLOW(broken_device_ends_waits),
	KUNIT_CASE(target_all_ones_clamped_and_bounded),
	KUNIT_CASE(target_flapping_settles),
	{ }
};

static struct kunit_suite balloon_virtio_life_suite = {
	.name = "balloon_virtio_life",
	.init = fake_init,
	.exit = fake_exit,
	.test_cases = balloon_virtio_life_cases,
};

/* -- balloon_virtio_hinting ------------------------------------------------ */

#define FAKE_HINT_ID	0x80000000U	/* QEMU's first command id */

/* The host moves to @state (with @id when requesting); with @irq, says so. */
static void fake_hint_host(struct fake_balloon *fb, enum fake_hint_state state,
			   u32 id, bool irq)
{
	mutex_lock(&fb->lock);
	fb->hint_state = state;
	if (state == FAKE_HINT_S_REQUESTED)
		fb->hint_id = id;
	fake_hint_config(fb);
	mutex_unlock(&fb->lock);
	if (irq)
		fake_config_irq(fb);
}

/* The host hands back every hint buffer it kept. */
static void fake_hint_release(struct fake_balloon *fb)
{
	struct fake_queue *fq = fake_queue(fb, FAKE_HINT);
	struct virtqueue *vq = fq ? fq->vq : NULL;
	unsigned int i;

	mutex_lock(&fb->lock);
	for (i = 0; vq && i < fb->nr_hint_held; i++)
		fake_use(fb, vq, fb->hint_held[i]);
	fb->nr_hint_held = 0;
	mutex_unlock(&fb->lock);
	if (vq)
		fake_interrupt(vq);
}

static unsigned long fake_hint_held(struct fake_balloon *fb)
{
	return READ_ONCE(fb->vb->hint.nr_blocks);
}

/* Blocks of the last run that are free again, as seen from their pages. */
static unsigned int fake_hint_freed(struct fake_balloon *fb)
{
	unsigned int i, n = 0;

	for (i = 0; i < fb->nr_hint_pages; i++)
		n += !page_ref_count(fb->hint_pages[i]);
	return n;
}

/* Plug a hinting device whose host stops each run after @stop_after blocks. */
static void fake_plug_hinting(struct kunit *test, struct fake_balloon *fb,
			      unsigned int stop_after)
{
	fb->offered |= FAKE_F(FREE_PAGE_HINT);
	fb->hint_stop_after = stop_after;
	fake_plug(test, fb);
	KUNIT_ASSERT_TRUE(test, fb->features & FAKE_F(FREE_PAGE_HINT));
	KUNIT_ASSERT_NOT_NULL(test, fb->vb->hint.wq);
	/* start() reads the config once, for a request made before probe. */
	flush_work(&fb->vb->hint.work);
}

/* Request a run with @id and wait until the driver has stopped it. */
static void fake_hint_run(struct kunit *test, struct fake_balloon *fb, u32 id)
{
	unsigned int ids = fb->nr_hint_ids;
	bool ended;

	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, id, true);
	/* The driver echoes the id, then ends with STOP. */
	ended = fake_wait_for(READ_ONCE(fb->nr_hint_ids) >= ids + 2);
	flush_work(&fb->vb->hint.work);
	KUNIT_ASSERT_TRUE_MSG(test, ended, "%u ids sent; device error: \"%s\"",
			      fb->nr_hint_ids - ids, fb->error);
	KUNIT_EXPECT_EQ(test, fb->hint_ids[ids], id);
	KUNIT_EXPECT_EQ(test, fb->hint_ids[ids + 1],
			(u32)VIRTIO_BALLOON_CMD_ID_STOP);
}

static void hint_run_sends_id_blocks_then_stop(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long free;

	fake_plug_hinting(test, fb, 12);
	/* inflate, deflate, stats, free page: as QEMU lays them out. */
	KUNIT_EXPECT_EQ(test, fb->nq, 4U);
	fake_hint_run(test, fb, FAKE_HINT_ID);

	KUNIT_EXPECT_EQ(test, fb->hinted, 12U);
	KUNIT_EXPECT_EQ(test, fb->hint_ignored, 0U);
	KUNIT_EXPECT_EQ(test, fb->hint_state, FAKE_HINT_S_STOP);
	/* Held, still allocated, until the host is done with them. */
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 12UL);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 0U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 1UL);

	/* Whole blocks go back: the free page count says so, not just heads. */
	free = global_zone_page_state(NR_FREE_PAGES);
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	KUNIT_EXPECT_TRUE(test, fake_wait_for(fake_hint_held(fb) == 0));
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 12U);
	KUNIT_EXPECT_GE(test, global_zone_page_state(NR_FREE_PAGES),
			free + 11 * BALLOON_VIRTIO_HINT_PAGES);
	/* The balloon itself is untouched by all this. */
	fake_move(test, fb, 300);
	expect_clean(test, fb);
}

static void hint_same_id_once_new_id_again(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int ids;

	fake_plug_hinting(test, fb, 4);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	/* The same id again (any config change can show it): no new run. */
	ids = fb->nr_hint_ids;
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, ids);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 1UL);
	/* A stopped host, and one done before any run, change nothing. */
	fake_hint_host(fb, FAKE_HINT_S_STOP, 0, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, ids);

	/* A new pass: a new run; the blocks of both stay held. */
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 2UL);
	KUNIT_EXPECT_EQ(test, fb->hinted, 8U);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 8UL);
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	KUNIT_EXPECT_TRUE(test, fake_wait_for(fake_hint_held(fb) == 0));
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 8U);
	expect_clean(test, fb);
}

static void hint_requested_before_probe(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	bool ended;

	/* The host asked before the driver came: it is answered at once. */
	fb->hint_state = FAKE_HINT_S_REQUESTED;
	fb->hint_id = FAKE_HINT_ID + 7;
	fake_hint_config(fb);
	fake_plug_hinting(test, fb, 3);

	ended = fake_wait_for(READ_ONCE(fb->nr_hint_ids) >= 2);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_TRUE(test, ended);
	KUNIT_EXPECT_EQ(test, fb->hint_ids[0], FAKE_HINT_ID + 7);
	KUNIT_EXPECT_EQ(test, fb->hinted, 3U);
	expect_clean(test, fb);
}

static void hint_stalled_host_ends_run(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	/* The host never stops the run, and never hands buffers back. */
	fb->hint_ring = 8;
	fb->hint_hold = true;
	fake_plug_hinting(test, fb, 0);
	fake_hint_run(test, fb, FAKE_HINT_ID);

	/* All descriptors but the one kept for STOP, then one stall. */
	KUNIT_EXPECT_EQ(test, fb->hinted, 7U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 1UL);
	KUNIT_EXPECT_EQ(test, fb->hint_state, FAKE_HINT_S_STOP);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 7UL);

	/* Once the host catches up, the next run has room again. */
	fake_hint_release(fb);
	fb->hint_hold = false;
	fb->hint_stop_after = 2;
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->hinted, 9U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 1UL);
	expect_clean(test, fb);
}

static struct page *fake_hint_alloc(void)
{
	struct fake_balloon *fb = kunit_get_current_test()->priv;

	if (!fb->allocs_left)
		return NULL;
	fb->allocs_left--;
	return alloc_pages(GFP_KERNEL, BALLOON_VIRTIO_HINT_ORDER);
}

static void hint_run_ends_without_free_blocks(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct balloon_virtio *vb;

	fake_plug_hinting(test, fb, 0);
	vb = fb->vb;
	/*
	 * Only 5 free blocks: the test runs the hinting work itself, so that
	 * the allocation stub applies, and raises no interrupt.
	 */
	kunit_activate_static_stub(test, balloon_virtio_hint_alloc,
				   fake_hint_alloc);
	fb->allocs_left = 5;
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID, false);
	set_bit(0, &vb->hint.changed);
	vb->hint.work.func(&vb->hint.work);

	KUNIT_EXPECT_EQ(test, fb->hinted, 5U);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, 2U);
	KUNIT_EXPECT_EQ(test, fb->hint_state, FAKE_HINT_S_STOP);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 5UL);
	expect_clean(test, fb);
}

static void hint_shrinker_gives_blocks_back(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct shrink_control sc = { .gfp_mask = GFP_KERNEL };
	struct shrinker *shrinker;

	fake_plug_hinting(test, fb, 10);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	KUNIT_ASSERT_EQ(test, fake_hint_held(fb), 10UL);
	/* The shrinker the kernel calls, with the data it was given. */
#ifdef BALLOON_COMPAT_SHRINKER_ALLOC
	shrinker = fb->vb->hint.shrinker.shrinker;
#else
	shrinker = &fb->vb->hint.shrinker.shrinker;
#endif

	/* Counted in pages; taken in whole blocks, rounded up. */
	KUNIT_EXPECT_EQ(test, shrinker->count_objects(shrinker, &sc),
			10UL * BALLOON_VIRTIO_HINT_PAGES);
	sc.nr_to_scan = 1;
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			(unsigned long)BALLOON_VIRTIO_HINT_PAGES);
	sc.nr_to_scan = 3UL * BALLOON_VIRTIO_HINT_PAGES + 1;
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			4UL * BALLOON_VIRTIO_HINT_PAGES);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 5UL);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 5U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.shrunk, 5UL);
	/* More than is held: what is left, then nothing to do. */
	sc.nr_to_scan = 100UL * BALLOON_VIRTIO_HINT_PAGES;
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			5UL * BALLOON_VIRTIO_HINT_PAGES);
	KUNIT_EXPECT_EQ(test, shrinker->count_objects(shrinker, &sc), 0UL);
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			SHRINK_STOP);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 10U);

	/* DONE finds nothing left to give back. */
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 0UL);
	expect_clean(test, fb);
}

static void hint_pressure_ends_run(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	/* The host would take 40 blocks; the guest shrinks after the 3rd. */
	fb->hint_pressure_at = 3;
	fake_plug_hinting(test, fb, 40);
	fake_hint_run(test, fb, FAKE_HINT_ID);

	/* No block taken again after the shrinker ran: the run ended. */
	KUNIT_EXPECT_EQ(test, fb->hinted, 3U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.shrunk, 1UL);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 2UL);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 1U);
	/* The next pass hints again. */
	fb->hint_pressure_at = 0;
	fb->hint_stop_after = 2;
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->hinted, 5U);
	expect_clean(test, fb);
}

/* Start a run on a host that keeps every buffer; wait until it is full. */
static void fake_hint_fill_ring(struct kunit *test, struct fake_balloon *fb)
{
	bool full;

	fb->hint_ring = 8;
	fb->hint_hold = true;
	fake_plug_hinting(test, fb, 0);
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID, true);
	full = fake_wait_for(READ_ONCE(fb->hinted) == 7);
	KUNIT_ASSERT_TRUE_MSG(test, full, "hinted %u; device error: \"%s\"",
			      fb->hinted, fb->error);
}

static void hint_remove_while_waiting_on_host(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long t0;

	fake_hint_fill_ring(test, fb);
	/* The run waits for room; removal ends it at once, not after 1 s. */
	t0 = jiffies;
	fake_unplug(fb);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 500U);
	KUNIT_EXPECT_EQ(test, fb->hint_live_at_reset, 7U);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 7U);
	/* It still ended with STOP, in the descriptor kept for it. */
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, 2U);
	expect_clean(test, fb);
}

static void hint_done_while_waiting_on_host(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long t0;
	bool back;

	fake_hint_fill_ring(test, fb);
	/* The migration ends while the run waits: no stall, blocks back. */
	t0 = jiffies;
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	back = fake_wait_for(fake_hint_held(fb) == 0);
	KUNIT_EXPECT_TRUE(test, back);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 500U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 0UL);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, 2U);
	fake_hint_release(fb);
	expect_clean(test, fb);
}

static void hint_id_buffer_not_rewritten_while_queued(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int ids;

	/* The host keeps the id buffer of the first run. */
	fb->hint_hold_ids = true;
	fake_plug_hinting(test, fb, 2);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	KUNIT_ASSERT_EQ(test, fb->hinted, 2U);

	/* A new pass cannot start until the host hands the old id back. */
	ids = fb->nr_hint_ids;
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID + 1, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, ids);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 1UL);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 1UL);

	/* Once it has, the next request runs. */
	fb->hint_hold_ids = false;
	fake_hint_release(fb);
	fake_hint_run(test, fb, FAKE_HINT_ID + 2);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 2UL);
	KUNIT_EXPECT_EQ(test, fb->hinted, 4U);
	expect_clean(test, fb);
}

static void hint_remove_frees_blocks_after_reset(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fake_plug_hinting(test, fb, 6);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	KUNIT_ASSERT_EQ(test, fake_hint_held(fb), 6UL);
	fake_unplug(fb);

	/* The device could write them until its reset; then they are free. */
	KUNIT_EXPECT_EQ(test, fb->hint_live_at_reset, 6U);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 6U);
	expect_clean(test, fb);
}

static void hint_freeze_restore(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	fake_plug_hinting(test, fb, 6);
	vdev = &fb->v->vdev;
	fake_hint_run(test, fb, FAKE_HINT_ID);

	KUNIT_ASSERT_EQ(test, virtio_device_freeze(vdev), 0);
	KUNIT_EXPECT_EQ(test, fb->hint_live_at_reset, 6U);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 6U);
	KUNIT_EXPECT_NULL(test, fb->vb->hint.wq);

	KUNIT_ASSERT_EQ(test, virtio_device_restore(vdev), 0);
	flush_work(&fb->vb->hint.work);
	/* A restored device hints afresh, under its next command id. */
	fb->nr_hint_pages = 0;
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->hinted, 12U);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 6UL);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_hinting_cases[] = {
	KUNIT_CASE(hint_run_sends_id_blocks_then_stop),
	KUNIT_CASE(hint_same_id_once_new_id_again),
	KUNIT_CASE(hint_requested_before_probe),
	KUNIT_CASE_SLOW(hint_stalled_host_ends_run),
	KUNIT_CASE(hint_run_ends_without_free_blocks),
	KUNIT_CASE(hint_shrinker_gives_blocks_back),
	KUNIT_CASE(hint_pressure_ends_run),
	KUNIT_CASE(hint_remove_while_waiting_on_host),
	KUNIT_CASE(hint_done_while_waiting_on_host),
	KUNIT_CASE_SLOW(hint_id_buffer_not_rewritten_while_queued),
	KUNIT_CASE(hint_remove_frees_blocks_after_reset),
	KUNIT_CASE(hint_freeze_restore),
	{ }
};

static struct kunit_suite balloon_virtio_hinting_suite = {
	.name = "balloon_virtio_hinting",
	.init = fake_init,
	.exit = fake_exit,
	.test_cases = balloon_virtio_hinting_cases,
};

kunit_test_suites(&balloon_virtio_wire_suite, &balloon_virtio_stats_suite,
		  &balloon_virtio_features_suite, &balloon_virtio_life_suite,
		  &balloon_virtio_hinting_suite);

MODULE_DESCRIPTION("KUnit tests for balloon_virtio against a fake virtio device");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
