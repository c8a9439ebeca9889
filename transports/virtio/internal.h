/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared between the files of balloon_virtio.ko and its KUnit
 * suite: the device structure, its virtqueues, and the entry points of the
 * stats and free page reporting halves.  Nothing here is part of the
 * core/transport contract.
 */
#ifndef _BALLOON_VIRTIO_INTERNAL_H
#define _BALLOON_VIRTIO_INTERNAL_H

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
 * struct balloon_virtio - one virtio balloon device
 * @bdev: the core's balloon, embedded.
 * @vdev: the virtio device.
 * @vqs: the virtqueues, indexed by &enum balloon_virtio_vq; %NULL for
 *	those the device does not have.
 * @acked: woken when the device hands back an inflate, deflate or
 *	reporting buffer.
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
 *
 * Lock order: the core's locks are the core's; @stats_lock is taken alone.
 * The inflate/deflate queues are used by the core's work loop only, the
 * stats queue by @stats_work only, the reporting queue by the page
 * reporting worker only, so each queue has a single user at a time.
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
};

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

#endif /* _BALLOON_VIRTIO_INTERNAL_H */
