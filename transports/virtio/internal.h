/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared between the files of balloon_virtio.ko and its KUnit
 * suite: the device structure, its virtqueues, and the entry points of the
 * stats and free page reporting halves.  Nothing here is part of the
 * core/transport contract.
 */
#ifndef _BALLOON_VIRTIO_INTERNAL_H
#define _BALLOON_VIRTIO_INTERNAL_H

#include <linux/log2.h>
#include <linux/mmzone.h>
#include <linux/page_reporting.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/vm_event_item.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <balloon/core.h>

/*
 * PFNs per inflate or deflate request, and per buffer.  One request of
 * 2048 PFNs, one kick and one wait, halves the guest CPU time of an
 * inflation under QEMU/TCG (make bench).  Each buffer carries 256, as the
 * in-tree driver's do: some devices (Firecracker) drop a longer one.
 */
#define BALLOON_VIRTIO_PFNS		2048
#define BALLOON_VIRTIO_DESC_PFNS	256U

/*
 * Free page hints go out in blocks of the largest order the buddy allocator
 * hands out (4 MiB with 4 KiB pages), as the in-tree driver's do.
 * MAX_ORDER_NR_PAGES means that block on every supported kernel, whichever
 * way MAX_ORDER counted.
 */
#define BALLOON_VIRTIO_HINT_PAGES	MAX_ORDER_NR_PAGES
#define BALLOON_VIRTIO_HINT_ORDER	ilog2(BALLOON_VIRTIO_HINT_PAGES)

/* Stats tags 0 to 15: every one the protocol defines today. */
#define BALLOON_VIRTIO_STATS_MAX	16

/*
 * The device's virtqueues in protocol order.  A queue whose feature was
 * not negotiated does not exist and takes no index: the ones after it move
 * down (the virtio spec and both QEMU and Linux count them that way).
 */
enum balloon_virtio_vq {
	BALLOON_VIRTIO_VQ_INFLATE,
	BALLOON_VIRTIO_VQ_DEFLATE,
	BALLOON_VIRTIO_VQ_STATS,
	BALLOON_VIRTIO_VQ_FREE_PAGE,
	BALLOON_VIRTIO_VQ_REPORTING,
	BALLOON_VIRTIO_VQ_NR
};

/**
 * struct balloon_virtio_hint - free page hinting state (hinting.c)
 * @wq: the hinting work's queue, freezable and unbound: a run may take
 *	all the guest's free memory, block by block.
 * @work: answers the host's commands: hint free pages, or give them back.
 * @lock: protects @on, @blocks and @nr_blocks; taken in the config
 *	interrupt.
 * @on: config changes queue @work; cleared first when the device stops.
 * @changed: bit 0 set when the config changed since @cmd_id was read.
 * @cmd_id: the host's command id, as last read from the config.
 * @active: the command id of the last run, as sent on the wire.
 * @active_queued: @active is on the queue, not yet handed back.
 * @stop: %VIRTIO_BALLOON_CMD_ID_STOP, as sent on the wire.
 * @blocks: blocks handed to the host, held until it is done with them.
 * @nr_blocks: number of entries on @blocks.
 * @shrinker: gives @blocks back to the guest under memory pressure.
 * @runs: runs started, one per new command id.
 * @hinted: blocks handed to the host, over all runs.
 * @shrunk: blocks the shrinker gave back early.
 * @stalls: runs ended because the host did not take buffers back.
 *
 * Only @work uses the free page queue, and only it writes @cmd_id,
 * @active, @active_queued and @stop.
 */
struct balloon_virtio_hint {
	struct workqueue_struct *wq;
	struct work_struct work;
	spinlock_t lock;		/* see above */
	bool on;
	unsigned long changed;
	u32 cmd_id;
	__virtio32 active;
	bool active_queued;
	__virtio32 stop;
	struct list_head blocks;
	unsigned long nr_blocks;
	struct balloon_compat_shrinker shrinker;
	unsigned long runs;
	unsigned long hinted;
	unsigned long shrunk;
	unsigned long stalls;
};

/**
 * struct balloon_virtio - one virtio balloon device
 * @bdev: the core's balloon, embedded.
 * @vdev: the virtio device.
 * @vqs: the virtqueues, indexed by &enum balloon_virtio_vq; %NULL for
 *	those the device does not have.
 * @acked: woken when the device hands back an inflate, deflate,
 *	reporting or free page buffer.
 * @registered: set once @bdev is registered; config changes before that
 *	are picked up by the core's first cycle.
 * @live: the device is started (queues, stats, reporting, @bdev); stop
 *	does nothing otherwise, e.g. after a restore that failed.
 * @pfns: the PFN array of the inflate or deflate request in flight.  Only
 *	the core's work loop sends those, one at a time, so it needs no lock
 *	of its own.
 * @stats_lock: protects @stats_on against the stats virtqueue's interrupt.
 * @stats_on: stats requests from the host schedule @stats_work.
 * @stats_work: builds fresh stats and hands them to the host.
 * @stats: the stats buffer.  It belongs to the device from the moment it is
 *	queued until the device hands it back to ask for fresh numbers; only
 *	@stats_work (or the device start, before the queue is live) writes it.
 * @events: scratch space for the VM event counters, used with @stats.
 * @reporting: free page reporting is registered for this device.
 * @pr_dev_info: the free page reporting device.
 * @hint: free page hinting, when the device does it.
 *
 * Lock order: the core's locks are the core's; @stats_lock is taken alone.
 * The inflate/deflate queues are used by the core's work loop only, the
 * stats queue by @stats_work only, the reporting queue by the page
 * reporting worker only, the free page queue by the hinting work only, so
 * each queue has a single user at a time.
 */
struct balloon_virtio {
	struct balloon_core_dev bdev;
	struct virtio_device *vdev;
	struct virtqueue *vqs[BALLOON_VIRTIO_VQ_NR];
	wait_queue_head_t acked;
	bool registered;
	bool live;
	__virtio32 pfns[BALLOON_VIRTIO_PFNS];

	spinlock_t stats_lock;		/* protects @stats_on */
	bool stats_on;
	struct work_struct stats_work;
	struct virtio_balloon_stat stats[BALLOON_VIRTIO_STATS_MAX];
	unsigned long events[NR_VM_EVENT_ITEMS];

	bool reporting;
	struct page_reporting_dev_info pr_dev_info;

	struct balloon_virtio_hint hint;
};

/* virtio.c */
int balloon_virtio_wait_used(struct balloon_virtio *vb, struct virtqueue *vq);

/* stats.c */
void balloon_virtio_stats_init(struct balloon_virtio *vb);
int balloon_virtio_stats_start(struct balloon_virtio *vb);
void balloon_virtio_stats_stop(struct balloon_virtio *vb);
void balloon_virtio_stats_request(struct virtqueue *vq);
unsigned int balloon_virtio_stats_fill(struct balloon_virtio *vb);

/* reporting.c */
void balloon_virtio_features_validate(struct virtio_device *vdev);
void balloon_virtio_poison_write(struct balloon_virtio *vb);
void balloon_virtio_reporting_start(struct balloon_virtio *vb);
void balloon_virtio_reporting_stop(struct balloon_virtio *vb);
#if IS_ENABLED(CONFIG_KUNIT)
bool balloon_virtio_free_page_content(u32 *poison_val);
#endif

/* hinting.c */
void balloon_virtio_hint_init(struct balloon_virtio *vb);
int balloon_virtio_hint_start(struct balloon_virtio *vb);
void balloon_virtio_hint_debugfs(struct balloon_virtio *vb);
void balloon_virtio_hint_changed(struct balloon_virtio *vb);
void balloon_virtio_hint_stop(struct balloon_virtio *vb);
void balloon_virtio_hint_free(struct balloon_virtio *vb);
#if IS_ENABLED(CONFIG_KUNIT)
struct page *balloon_virtio_hint_alloc(void);
unsigned long balloon_virtio_hint_shrink(struct balloon_virtio *vb,
					 unsigned long nr_pages);
#endif

#endif /* _BALLOON_VIRTIO_INTERNAL_H */
