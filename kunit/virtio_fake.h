/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A fake virtio balloon device for the balloon_virtio suites.
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
 * The suites may be built into the kernel, where the functions of
 * virtio_fake.c are global: they carry the virtio_fake_ prefix.  The inline
 * helpers here are the cases' shorthand.
 */
#ifndef _BALLOON_KUNIT_VIRTIO_FAKE_H
#define _BALLOON_KUNIT_VIRTIO_FAKE_H

#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/minmax.h>
#include <linux/mutex.h>
#include <linux/pageblock-flags.h>
#include <linux/sizes.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
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

/* What the guest's allocator leaves in free pages (a static stub). */
enum fake_content { FAKE_FREE_ANY, FAKE_FREE_ZEROED, FAKE_FREE_POISONED };

int virtio_fake_init(struct kunit *test);
void virtio_fake_exit(struct kunit *test);
void virtio_fake_plug(struct kunit *test, struct fake_balloon *fb);
void virtio_fake_guest_content(struct kunit *test, enum fake_content c);

/* Remember the first protocol error; the test fails on it. */
static inline __printf(2, 3) void fake_error(struct fake_balloon *fb,
					     const char *fmt, ...)
{
	va_list args;

	if (fb->error[0])
		return;
	va_start(args, fmt);
	vsnprintf(fb->error, sizeof(fb->error), fmt, args);
	va_end(args);
}

/* Hand a buffer back in the used ring. */
static inline void fake_use(struct fake_balloon *fb, struct virtqueue *vq,
			    u16 head)
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
static inline void fake_interrupt(struct virtqueue *vq)
{
	unsigned long flags;

	local_irq_save(flags);
	vring_interrupt(0, vq);
	local_irq_restore(flags);
}

/* The free page hint config field, as QEMU shows it in each state. */
static inline void fake_hint_config(struct fake_balloon *fb)
{
	u32 id = 0;

	if (fb->hint_state == FAKE_HINT_S_REQUESTED)
		id = fb->hint_id;
	else if (fb->hint_state == FAKE_HINT_S_DONE)
		id = VIRTIO_BALLOON_CMD_ID_DONE;
	WRITE_ONCE(fb->config.free_page_hint_cmd_id, cpu_to_le32(id));
}

static inline void fake_config_irq(struct fake_balloon *fb)
{
	unsigned long flags;

	local_irq_save(flags);
	virtio_config_changed(&fb->v->vdev);
	local_irq_restore(flags);
}

/* The device's queue playing @role, or %NULL when the driver set none up. */
static inline struct fake_queue *fake_queue(struct fake_balloon *fb,
					    enum fake_role role)
{
	unsigned int q;

	for (q = 0; q < fb->nq; q++)
		if (fb->q[q].role == role)
			return &fb->q[q];
	return NULL;
}

static inline void fake_unplug(struct fake_balloon *fb)
{
	unregister_virtio_device(&fb->v->vdev);
	fb->v = NULL;
	fb->vb = NULL;
}

static inline u32 fake_actual(struct fake_balloon *fb)
{
	return le32_to_cpu(READ_ONCE(fb->config.actual));
}

/*
 * The smallest free run the device expects a report of: 2 MiB, which the
 * driver documents for every page size (a pageblock is 2 MiB or more on
 * every kernel here: 32 MiB with 16 KiB pages, 512 MiB with 64 KiB).
 */
#define FAKE_REPORT_ORDER \
	min_t(unsigned int, pageblock_order, get_order(SZ_2M))

/*
 * @pages guest pages in the 4 KiB PFNs the device counts in (its target,
 * "actual", the PFN arrays).  The cases ask for whole pages: a guest with
 * larger pages cannot balloon a part of one.
 */
#define PFNS(pages)	((u32)(pages) * BALLOON_CORE_UNITS_PER_PAGE)

/* Set the host's target; with @irq, raise a config-change interrupt. */
static inline void fake_target(struct fake_balloon *fb, u32 pages, bool irq)
{
	WRITE_ONCE(fb->config.num_pages, cpu_to_le32(pages));
	if (irq)
		fake_config_irq(fb);
}

/* Wait for the driver to report @pages as the balloon's size. */
static inline void fake_wait_actual(struct kunit *test,
				    struct fake_balloon *fb, u32 pages)
{
	bool reached = fake_wait_for(fake_actual(fb) == pages);

	KUNIT_ASSERT_TRUE_MSG(test, reached,
			      "actual %u, target %u; device error: \"%s\"",
			      fake_actual(fb), pages, fb->error);
}

/* Move the target and wait for the balloon to get there. */
static inline void fake_move(struct kunit *test, struct fake_balloon *fb,
			     u32 pages)
{
	fake_target(fb, pages, true);
	fake_wait_actual(test, fb, pages);
}

static inline void expect_clean(struct kunit *test, struct fake_balloon *fb)
{
	KUNIT_EXPECT_STREQ(test, fb->error, "");
	if (fb->vb)
		KUNIT_EXPECT_EQ(test, fb->vb->bdev.size, (u64)fb->nr_held);
}

#endif /* _BALLOON_KUNIT_VIRTIO_FAKE_H */
