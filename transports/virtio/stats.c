// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_virtio: the memory statistics virtqueue (VIRTIO_BALLOON_F_STATS_VQ).
 *
 * The stats queue runs backwards: the driver queues one buffer of
 * (tag, value) pairs, and the device keeps it until it wants fresh numbers;
 * then it hands the buffer back, and the driver refills and requeues it.
 * The hand-back arrives in interrupt context, where the counters cannot be
 * read (all_vm_events() takes the CPU hotplug lock), so it only schedules a
 * work item, which does the rest.  Requests that arrive while the work is
 * pending fold into it: the host gets at most one refill per request and
 * the guest does bounded work however often the host asks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/scatterlist.h>
#include <linux/vmstat.h>

#include "internal.h"

/* Sizes and amounts of memory go to the host in bytes. */
static u64 balloon_virtio_bytes(unsigned long pages)
{
	return (u64)pages << PAGE_SHIFT;
}

/* The values this kernel can answer, by tag, and which tags those are. */
struct balloon_virtio_stat_values {
	u64 val[BALLOON_VIRTIO_STATS_MAX];
	DECLARE_BITMAP(have, BALLOON_VIRTIO_STATS_MAX);
};

static void balloon_virtio_stat_set(struct balloon_virtio_stat_values *s,
				    unsigned int tag, u64 val)
{
	s->val[tag] = val;
	__set_bit(tag, s->have);
}

#ifdef CONFIG_VM_EVENT_COUNTERS
static void balloon_virtio_stats_events(struct balloon_virtio *vb,
					struct balloon_virtio_stat_values *s)
{
	unsigned long *ev = vb->events;
	unsigned long stall = 0;
	unsigned int zone;

	all_vm_events(ev);
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_SWAP_IN,
				balloon_virtio_bytes(ev[PSWPIN]));
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_SWAP_OUT,
				balloon_virtio_bytes(ev[PSWPOUT]));
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_MAJFLT, ev[PGMAJFAULT]);
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_MINFLT, ev[PGFAULT]);
#ifdef CONFIG_HUGETLB_PAGE
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_HTLB_PGALLOC,
				ev[HTLB_BUDDY_PGALLOC]);
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_HTLB_PGFAIL,
				ev[HTLB_BUDDY_PGALLOC_FAIL]);
#endif
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_OOM_KILL, ev[OOM_KILL]);
	/* One allocation stall counter per zone, laid out in zone order. */
	for (zone = 0; zone < MAX_NR_ZONES; zone++)
		stall += ev[ALLOCSTALL_NORMAL - ZONE_NORMAL + zone];
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_ALLOC_STALL, stall);
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_ASYNC_SCAN,
				balloon_virtio_bytes(ev[PGSCAN_KSWAPD]));
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_DIRECT_SCAN,
				balloon_virtio_bytes(ev[PGSCAN_DIRECT]));
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_ASYNC_RECLAIM,
				balloon_virtio_bytes(ev[PGSTEAL_KSWAPD]));
	balloon_virtio_stat_set(s, VIRTIO_BALLOON_S_DIRECT_RECLAIM,
				balloon_virtio_bytes(ev[PGSTEAL_DIRECT]));
}
#else
static void balloon_virtio_stats_events(struct balloon_virtio *vb,
					struct balloon_virtio_stat_values *s)
{
}
#endif

/**
 * balloon_virtio_stats_fill() - write fresh statistics into the stats buffer
 * @vb: the balloon device.
 *
 * Every tag this kernel can answer, in tag order: swap in and out, major
 * and minor faults, free, total and available memory, the page cache,
 * hugetlb allocations and failures (with hugetlb), OOM kills, allocation
 * stalls, and the kswapd and direct scan and reclaim counters.  The event
 * counters need CONFIG_VM_EVENT_COUNTERS.  Amounts of memory are in bytes.
 *
 * Context: Process context; may sleep.  The caller owns the buffer.
 * Return: the number of entries written.
 */
unsigned int balloon_virtio_stats_fill(struct balloon_virtio *vb)
{
	struct balloon_virtio_stat_values s = { };
	unsigned int tag, n = 0;
	struct sysinfo si;

	balloon_virtio_stats_events(vb, &s);
	si_meminfo(&si);
	balloon_virtio_stat_set(&s, VIRTIO_BALLOON_S_MEMFREE,
				balloon_virtio_bytes(si.freeram));
	balloon_virtio_stat_set(&s, VIRTIO_BALLOON_S_MEMTOT,
				balloon_virtio_bytes(si.totalram));
	balloon_virtio_stat_set(&s, VIRTIO_BALLOON_S_AVAIL,
				balloon_virtio_bytes(si_mem_available()));
	balloon_virtio_stat_set(&s, VIRTIO_BALLOON_S_CACHES,
				balloon_virtio_bytes(global_node_page_state(NR_FILE_PAGES)));

	for_each_set_bit(tag, s.have, BALLOON_VIRTIO_STATS_MAX) {
		vb->stats[n].tag = cpu_to_virtio16(vb->vdev, tag);
		vb->stats[n].val = cpu_to_virtio64(vb->vdev, s.val[tag]);
		n++;
	}
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_virtio_stats_fill);

/* Fill the buffer and give it to the device. */
static int balloon_virtio_stats_queue(struct balloon_virtio *vb)
{
	struct scatterlist sg;
	unsigned int n = balloon_virtio_stats_fill(vb);

	sg_init_one(&sg, vb->stats, sizeof(vb->stats[0]) * n);
	return virtqueue_add_outbuf(vb->vqs[BALLOON_VIRTIO_VQ_STATS], &sg, 1,
				    vb, GFP_KERNEL);
}

static void balloon_virtio_stats_work(struct work_struct *work)
{
	struct balloon_virtio *vb =
		container_of(work, struct balloon_virtio, stats_work);
	struct virtqueue *vq = vb->vqs[BALLOON_VIRTIO_VQ_STATS];
	unsigned int len;
	int ret;

	/*
	 * Only a buffer the device handed back is ours to rewrite; an
	 * interrupt without one is spurious.
	 */
	if (!virtqueue_get_buf(vq, &len))
		return;
	ret = balloon_virtio_stats_queue(vb);
	if (ret) {
		dev_warn_ratelimited(&vb->vdev->dev,
				     "cannot queue the stats buffer: %d\n", ret);
		return;
	}
	virtqueue_kick(vq);
}

/**
 * balloon_virtio_stats_request() - the stats virtqueue's interrupt callback
 * @vq: the stats virtqueue.
 *
 * The device handed the stats buffer back: schedule the refill.
 *
 * Context: Interrupt context.
 */
void balloon_virtio_stats_request(struct virtqueue *vq)
{
	struct balloon_virtio *vb = vq->vdev->priv;
	unsigned long flags;

	spin_lock_irqsave(&vb->stats_lock, flags);
	if (vb->stats_on)
		queue_work(system_freezable_wq, &vb->stats_work);
	spin_unlock_irqrestore(&vb->stats_lock, flags);
}

/**
 * balloon_virtio_stats_init() - initialise the stats state of a new device
 * @vb: the balloon device.
 *
 * Context: Process context, at probe.
 */
void balloon_virtio_stats_init(struct balloon_virtio *vb)
{
	spin_lock_init(&vb->stats_lock);
	INIT_WORK(&vb->stats_work, balloon_virtio_stats_work);
}

/**
 * balloon_virtio_stats_start() - queue the first stats buffer
 * @vb: the balloon device, its virtqueues found, not yet DRIVER_OK.
 *
 * The device needs a buffer before it can ask for stats.  The caller kicks
 * the queue once the device is live.
 *
 * Context: Process context; may sleep.
 * Return: 0 (also without a stats queue) or a negative errno.
 */
int balloon_virtio_stats_start(struct balloon_virtio *vb)
{
	int ret;

	if (!vb->vqs[BALLOON_VIRTIO_VQ_STATS])
		return 0;
	ret = balloon_virtio_stats_queue(vb);
	if (ret)
		return ret;
	spin_lock_irq(&vb->stats_lock);
	vb->stats_on = true;
	spin_unlock_irq(&vb->stats_lock);
	return 0;
}

/**
 * balloon_virtio_stats_stop() - stop answering stats requests
 * @vb: the balloon device.
 *
 * After this returns no refill runs or can start; the buffer the device
 * holds goes with its queue at reset.
 *
 * Context: Process context; may sleep.
 */
void balloon_virtio_stats_stop(struct balloon_virtio *vb)
{
	spin_lock_irq(&vb->stats_lock);
	vb->stats_on = false;
	spin_unlock_irq(&vb->stats_lock);
	cancel_work_sync(&vb->stats_work);
}
