// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_virtio: free page hinting (VIRTIO_BALLOON_F_FREE_PAGE_HINT).
 *
 * A helper for live migration.  When the host starts a pass over guest
 * memory, it puts a new command id in the config's free_page_hint_cmd_id
 * and raises a config interrupt.  The driver answers on the free page
 * queue: the id as a driver-readable buffer, then free memory as
 * device-writable blocks, then STOP (0).  The host does not copy the pages
 * it was hinted in that pass.
 *
 * The driver takes each block from the page allocator and keeps it, so
 * that the guest does not write to it behind the host's back, until the
 * host says DONE (1), or the device goes away.  Memory pressure may take
 * blocks back sooner, through a shrinker: a page the guest writes after
 * the hint is in the host's dirty log, and is copied again.  The blocks are
 * free memory, cheap to hint again, so the shrinker gives back half of what
 * it holds each time reclaim asks (no seek cost).
 *
 * Config reads are cached: the driver reads the id once per config
 * interrupt, as the in-tree driver does.  It matters with QEMU, whose
 * config shows 0 once a run has started.
 *
 * Runs are bounded.  A run ends when the host's id changes, when no free
 * block is left, when the shrinker had to give blocks back (the guest needs
 * its memory more than the host needs hints: taking the blocks again would
 * only fight reclaim), or when the host has not handed a buffer back for a
 * second while the ring is full.  One descriptor is always kept for STOP.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/gfp.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/virtio_config.h>

#include "internal.h"

#define BALLOON_VIRTIO_HINT_BYTES	(PAGE_SIZE << BALLOON_VIRTIO_HINT_ORDER)

/* How long a run waits for the host to hand back a buffer. */
#define BALLOON_VIRTIO_HINT_WAIT	HZ

/*
 * Blocks come from the free memory that is there, never from reclaim: no
 * direct reclaim, no kswapd, no emergency reserves; the in-tree driver's
 * flags.  Not __GFP_MOVABLE: the blocks cannot move, and a movable request
 * may take them from a CMA area, which cma_alloc() could then not have
 * until the host is done.
 */
#define BALLOON_VIRTIO_HINT_GFP		(__GFP_NORETRY | __GFP_NOWARN | \
					 __GFP_NOMEMALLOC)

/**
 * balloon_virtio_hint_alloc() - take one free block to hint
 *
 * A static stub lets KUnit suites bound the number of blocks.
 *
 * Context: Process context.
 * Return: a block of %BALLOON_VIRTIO_HINT_ORDER, or %NULL when there is
 * no free one.
 */
VISIBLE_IF_KUNIT struct page *balloon_virtio_hint_alloc(void)
{
	KUNIT_STATIC_STUB_REDIRECT(balloon_virtio_hint_alloc);
	return alloc_pages(BALLOON_VIRTIO_HINT_GFP, BALLOON_VIRTIO_HINT_ORDER);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_virtio_hint_alloc);

/*
 * Give up to @blocks held blocks back to the guest, @shrunk when the
 * shrinker asks.  Returns how many went.
 */
static unsigned long balloon_virtio_hint_give_back(struct balloon_virtio *vb,
						   unsigned long blocks,
						   bool shrunk)
{
	struct balloon_virtio_hint *h = &vb->hint;
	struct page *page, *next;
	unsigned long n = 0;
	LIST_HEAD(freed);

	spin_lock_irq(&h->lock);
	while (n < blocks && !list_empty(&h->blocks)) {
		list_move(h->blocks.next, &freed);
		n++;
	}
	WRITE_ONCE(h->nr_blocks, h->nr_blocks - n);
	if (shrunk)
		WRITE_ONCE(h->shrunk, h->shrunk + n);
	spin_unlock_irq(&h->lock);

	list_for_each_entry_safe(page, next, &freed, lru) {
		list_del(&page->lru);
		__free_pages(page, BALLOON_VIRTIO_HINT_ORDER);
	}
	return n;
}

/**
 * balloon_virtio_hint_shrink() - give hinted blocks back early
 * @vb: the balloon device.
 * @nr_pages: pages wanted; rounded up to whole blocks.
 *
 * Context: Process context (the shrinker's scan).
 * Return: the number of pages given back.
 */
VISIBLE_IF_KUNIT unsigned long balloon_virtio_hint_shrink(struct balloon_virtio *vb,
							  unsigned long nr_pages)
{
	unsigned long blocks = DIV_ROUND_UP(nr_pages, BALLOON_VIRTIO_HINT_PAGES);

	return balloon_virtio_hint_give_back(vb, blocks, true) *
	       BALLOON_VIRTIO_HINT_PAGES;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_virtio_hint_shrink);

static unsigned long balloon_virtio_hint_count(struct shrinker *shrinker,
					       struct shrink_control *sc)
{
	struct balloon_virtio *vb = balloon_compat_shrinker_data(shrinker);

	return READ_ONCE(vb->hint.nr_blocks) * BALLOON_VIRTIO_HINT_PAGES;
}

static unsigned long balloon_virtio_hint_scan(struct shrinker *shrinker,
					      struct shrink_control *sc)
{
	struct balloon_virtio *vb = balloon_compat_shrinker_data(shrinker);
	unsigned long freed = balloon_virtio_hint_shrink(vb, sc->nr_to_scan);

	return freed ?: SHRINK_STOP;
}

/* The host's command id, read again only after a config interrupt. */
static u32 balloon_virtio_hint_cmd_id(struct balloon_virtio *vb)
{
	struct balloon_virtio_hint *h = &vb->hint;
	u32 id;

	if (test_and_clear_bit(0, &h->changed)) {
		virtio_cread_le(vb->vdev, struct virtio_balloon_config,
				free_page_hint_cmd_id, &id);
		WRITE_ONCE(h->cmd_id, id);
	}
	return h->cmd_id;
}

/*
 * Detach the buffers the host is done with, noting when it has read the
 * run's id; returns the free descriptors.
 */
static unsigned int balloon_virtio_hint_reap(struct balloon_virtio *vb,
					     struct virtqueue *vq)
{
	unsigned int len;
	void *buf;

	while ((buf = virtqueue_get_buf(vq, &len)))
		if (buf == &vb->hint.active)
			vb->hint.active_queued = false;
	return vq->num_free;
}

/* The host has handed back the last run's id buffer. */
static bool balloon_virtio_hint_id_back(struct balloon_virtio *vb)
{
	balloon_virtio_hint_reap(vb, vb->vqs[BALLOON_VIRTIO_VQ_FREE_PAGE]);
	return !vb->hint.active_queued;
}

/* A block fits, with a descriptor to spare for STOP. */
static bool balloon_virtio_hint_has_room(struct balloon_virtio *vb)
{
	return balloon_virtio_hint_reap(vb,
					vb->vqs[BALLOON_VIRTIO_VQ_FREE_PAGE]) > 1;
}

/*
 * Wait until @ready, the device stops or the config changes, for at most
 * BALLOON_VIRTIO_HINT_WAIT.  Returns 1 when @ready, 0 when something else
 * came first (the caller looks again), -ETIMEDOUT when the host handed
 * nothing back in time.
 */
static int balloon_virtio_hint_wait(struct balloon_virtio *vb,
				    bool (*ready)(struct balloon_virtio *vb))
{
	struct balloon_virtio_hint *h = &vb->hint;
	long left;

	left = wait_event_timeout(vb->acked, ready(vb) || !READ_ONCE(h->on) ||
				  test_bit(0, &h->changed),
				  BALLOON_VIRTIO_HINT_WAIT);
	if (ready(vb))
		return 1;
	if (left)
		return 0;
	WRITE_ONCE(h->stalls, h->stalls + 1);
	dev_warn_ratelimited(&vb->vdev->dev,
			     "free page hinting: the host took no buffer back in %u ms; run ended\n",
			     jiffies_to_msecs(BALLOON_VIRTIO_HINT_WAIT));
	return -ETIMEDOUT;
}

/* Queue a command id (the run's, or STOP) for the device to read. */
static int balloon_virtio_hint_send_id(struct balloon_virtio *vb,
				       struct virtqueue *vq, __virtio32 *id)
{
	struct scatterlist sg;
	int ret;

	balloon_virtio_hint_reap(vb, vq);
	sg_init_one(&sg, id, sizeof(*id));
	/* No allocation: indirect descriptors are off (validate). */
	ret = virtqueue_add_outbuf(vq, &sg, 1, id, GFP_NOWAIT | __GFP_NOWARN);
	if (!ret)
		virtqueue_kick(vq);
	return ret;
}

/* Hand one block to the host; false when there is none left to take. */
static bool balloon_virtio_hint_block(struct balloon_virtio *vb,
				      struct virtqueue *vq)
{
	struct balloon_virtio_hint *h = &vb->hint;
	struct scatterlist sg;
	struct page *page;
	int ret;

	page = balloon_virtio_hint_alloc();
	if (!page)
		return false;
	sg_init_one(&sg, page_address(page), BALLOON_VIRTIO_HINT_BYTES);
	ret = virtqueue_add_inbuf(vq, &sg, 1, page, GFP_NOWAIT | __GFP_NOWARN);
	if (ret) {
		__free_pages(page, BALLOON_VIRTIO_HINT_ORDER);
		dev_warn_ratelimited(&vb->vdev->dev,
				     "cannot queue a free page hint: %d\n", ret);
		return false;
	}
	spin_lock_irq(&h->lock);
	list_add(&page->lru, &h->blocks);
	WRITE_ONCE(h->nr_blocks, h->nr_blocks + 1);
	WRITE_ONCE(h->hinted, h->hinted + 1);
	spin_unlock_irq(&h->lock);
	virtqueue_kick(vq);
	return true;
}

/*
 * One run: the id, free blocks while the host still wants them and the
 * guest can spare them, STOP.
 */
static void balloon_virtio_hint_run(struct balloon_virtio *vb, u32 id)
{
	struct virtqueue *vq = vb->vqs[BALLOON_VIRTIO_VQ_FREE_PAGE];
	struct balloon_virtio_hint *h = &vb->hint;
	/* The shrinker's count, to see whether it runs meanwhile. */
	unsigned long shrunk = READ_ONCE(h->shrunk);
	int ret;

	/*
	 * The last run's id buffer must be back before it is rewritten: the
	 * host would otherwise read the new id from it and take the blocks
	 * that follow it for the new pass.
	 */
	do {
		ret = balloon_virtio_hint_wait(vb, balloon_virtio_hint_id_back);
	} while (!ret && READ_ONCE(h->on) &&
		 balloon_virtio_hint_cmd_id(vb) == id);
	if (ret <= 0)
		return;
	WRITE_ONCE(h->runs, h->runs + 1);
	h->active = cpu_to_virtio32(vb->vdev, id);
	ret = balloon_virtio_hint_send_id(vb, vq, &h->active);
	if (ret) {
		dev_warn_ratelimited(&vb->vdev->dev,
				     "cannot start free page hinting: %d\n",
				     ret);
		return;
	}
	h->active_queued = true;
	while (READ_ONCE(h->on) && balloon_virtio_hint_cmd_id(vb) == id &&
	       READ_ONCE(h->shrunk) == shrunk) {
		/* Room for a block, with a descriptor kept for STOP. */
		ret = balloon_virtio_hint_wait(vb, balloon_virtio_hint_has_room);
		if (ret < 0)
			break;
		if (!ret)
			continue;	/* the id may have changed: look again */
		if (!balloon_virtio_hint_block(vb, vq))
			break;
		cond_resched();
	}

	/* The descriptor kept for it is there, unless the device stalled. */
	ret = balloon_virtio_hint_send_id(vb, vq, &h->stop);
	if (ret)
		dev_warn_ratelimited(&vb->vdev->dev,
				     "cannot end free page hinting: %d\n", ret);
}

static void balloon_virtio_hint_work(struct work_struct *work)
{
	struct balloon_virtio *vb =
		container_of(work, struct balloon_virtio, hint.work);
	u32 id = balloon_virtio_hint_cmd_id(vb);

	if (!READ_ONCE(vb->hint.on))
		return;
	if (id == VIRTIO_BALLOON_CMD_ID_DONE)
		balloon_virtio_hint_give_back(vb, ULONG_MAX, false);
	else if (id != VIRTIO_BALLOON_CMD_ID_STOP &&
		 id != virtio32_to_cpu(vb->vdev, vb->hint.active))
		balloon_virtio_hint_run(vb, id);
}

/**
 * balloon_virtio_hint_changed() - the config changed
 * @vb: the balloon device.
 *
 * The command id may be new: have the hinting work read it.
 *
 * Context: Any context; called from the config interrupt.
 */
void balloon_virtio_hint_changed(struct balloon_virtio *vb)
{
	struct balloon_virtio_hint *h = &vb->hint;
	unsigned long flags;

	spin_lock_irqsave(&h->lock, flags);
	if (h->on) {
		set_bit(0, &h->changed);
		queue_work(h->wq, &h->work);
	}
	spin_unlock_irqrestore(&h->lock, flags);
	/* A run waiting on the host looks at the new id. */
	wake_up(&vb->acked);
}

/**
 * balloon_virtio_hint_init() - set up the hinting state, once per device
 * @vb: the balloon device, being probed.
 *
 * Context: Process context.
 */
void balloon_virtio_hint_init(struct balloon_virtio *vb)
{
	struct balloon_virtio_hint *h = &vb->hint;

	spin_lock_init(&h->lock);
	INIT_LIST_HEAD(&h->blocks);
	INIT_WORK(&h->work, balloon_virtio_hint_work);
}

/**
 * balloon_virtio_hint_start() - answer the host's hinting commands
 * @vb: the balloon device, DRIVER_OK.
 *
 * A request the host made before the driver came is answered at once.
 * Without the feature, or with a ring too short to hold a block and STOP,
 * the device works without hinting.
 *
 * Context: Process context; may sleep.
 * Return: 0, or -%ENOMEM.
 */
int balloon_virtio_hint_start(struct balloon_virtio *vb)
{
	struct virtqueue *vq = vb->vqs[BALLOON_VIRTIO_VQ_FREE_PAGE];
	struct balloon_virtio_hint *h = &vb->hint;
	const char *name = dev_name(&vb->vdev->dev);
	int ret;

	if (!vq)
		return 0;
	if (virtqueue_get_vring_size(vq) < 2) {
		dev_warn(&vb->vdev->dev,
			 "free page queue of %u entries is too short; not hinting\n",
			 virtqueue_get_vring_size(vq));
		return 0;
	}
	h->wq = alloc_workqueue("%s-hint", WQ_FREEZABLE | WQ_UNBOUND, 1, name);
	if (!h->wq)
		return -ENOMEM;
	ret = balloon_compat_shrinker_register(&h->shrinker, name, 0,
					       balloon_virtio_hint_count,
					       balloon_virtio_hint_scan, vb);
	if (ret) {
		destroy_workqueue(h->wq);
		h->wq = NULL;
		return ret;
	}
	h->cmd_id = VIRTIO_BALLOON_CMD_ID_STOP;
	h->active_queued = false;
	h->active = cpu_to_virtio32(vb->vdev, VIRTIO_BALLOON_CMD_ID_STOP);
	h->stop = cpu_to_virtio32(vb->vdev, VIRTIO_BALLOON_CMD_ID_STOP);
	spin_lock_irq(&h->lock);
	h->on = true;
	spin_unlock_irq(&h->lock);
	balloon_virtio_hint_changed(vb);
	return 0;
}

/**
 * balloon_virtio_hint_stop() - stop answering the host
 * @vb: the balloon device, its queues still live.
 *
 * A run in progress ends with STOP.  The blocks stay held until
 * balloon_virtio_hint_free(), once the device is reset.
 *
 * Context: Process context; may sleep.
 */
void balloon_virtio_hint_stop(struct balloon_virtio *vb)
{
	struct balloon_virtio_hint *h = &vb->hint;

	if (!h->wq)
		return;
	spin_lock_irq(&h->lock);
	h->on = false;
	spin_unlock_irq(&h->lock);
	/* A run waiting for the host to take buffers back ends now. */
	wake_up(&vb->acked);
	cancel_work_sync(&h->work);
}

/**
 * balloon_virtio_hint_free() - give every block back, and tear down
 * @vb: the balloon device, stopped and reset.  A device may write its
 *	device-writable buffers until then (QEMU never writes hints, which is
 *	why DONE and the shrinker may free blocks it still has queued, as the
 *	in-tree driver does).
 *
 * Context: Process context; may sleep.
 */
void balloon_virtio_hint_free(struct balloon_virtio *vb)
{
	struct balloon_virtio_hint *h = &vb->hint;

	if (!h->wq)
		return;
	balloon_compat_shrinker_unregister(&h->shrinker);
	balloon_virtio_hint_give_back(vb, ULONG_MAX, false);
	destroy_workqueue(h->wq);
	h->wq = NULL;
}

static int balloon_virtio_hinting_show(struct seq_file *f, void *unused)
{
	struct balloon_virtio *vb = f->private;
	struct balloon_virtio_hint *h = &vb->hint;

	seq_printf(f, "cmd_id %u\n", READ_ONCE(h->cmd_id));
	seq_printf(f, "active %u\n",
		   virtio32_to_cpu(vb->vdev, READ_ONCE(h->active)));
	seq_printf(f, "block_kib %lu\n", BALLOON_VIRTIO_HINT_BYTES / SZ_1K);
	seq_printf(f, "runs %lu\n", READ_ONCE(h->runs));
	seq_printf(f, "hinted %lu\n", READ_ONCE(h->hinted));
	seq_printf(f, "held %lu\n", READ_ONCE(h->nr_blocks));
	seq_printf(f, "shrunk %lu\n", READ_ONCE(h->shrunk));
	seq_printf(f, "stalls %lu\n", READ_ONCE(h->stalls));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(balloon_virtio_hinting);

/**
 * balloon_virtio_hint_debugfs() - add the "hinting" file
 * @vb: the balloon device, its core balloon registered.
 *
 * Next to the core's files; it goes with them when the balloon is
 * unregistered.
 *
 * Context: Process context.
 */
void balloon_virtio_hint_debugfs(struct balloon_virtio *vb)
{
	if (vb->hint.wq)
		debugfs_create_file("hinting", 0400,
				    balloon_core_debugfs_dir(&vb->bdev), vb,
				    &balloon_virtio_hinting_fops);
}
