// SPDX-License-Identifier: GPL-2.0
/*
 * The fake virtio balloon device of the balloon_virtio suites (see
 * virtio_fake.h): the device side of its rings, its config space, status,
 * features and queues, its place on the virtio bus, and the static stub
 * that plays what the guest leaves in free pages.
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/bitmap.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/page_reporting.h>
#include <linux/pageblock-flags.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/xarray.h>

#include "virtio_fake.h"

/* What balloon_virtio names each queue. */
static const char * const fake_role_names[FAKE_ROLES] = {
	[FAKE_INFLATE] = "inflate",
	[FAKE_DEFLATE] = "deflate",
	[FAKE_STATS] = "stats",
	[FAKE_HINT] = "free_page",
	[FAKE_REPORT] = "reporting",
};

static struct fake_balloon *to_fake(struct virtio_device *vdev)
{
	return container_of(vdev, struct fake_vdev, vdev)->fb;
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
		    order < FAKE_REPORT_ORDER ||
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

/* -- the device on the bus, the guest's free pages ------------------------ */

int virtio_fake_init(struct kunit *test)
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
void virtio_fake_plug(struct kunit *test, struct fake_balloon *fb)
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

void virtio_fake_exit(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	if (fb->v)
		fake_unplug(fb);
	xa_destroy(&fb->held);
}

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

void virtio_fake_guest_content(struct kunit *test, enum fake_content c)
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

MODULE_DESCRIPTION("KUnit tests for balloon_virtio against a fake virtio device");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(BALLOON_KUNIT_NS);
