// SPDX-License-Identifier: GPL-2.0
/*
 * Deflation: give pages back to the guest, telling the host first.
 *
 * Largest pages first, each only while it fits in what is left; a page the
 * host will not release stays in the balloon (tried after every other
 * page of its order) and ends the cycle's deflation.  Used by the work
 * loop at the adaptive deflate rate (core/rate.c), and in full by the OOM
 * notifier and unregister.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/list.h>
#include <linux/minmax.h>
#include <linux/sched.h>

#include "internal.h"
#include "ops.h"
#include "trace.h"

/*
 * Base pages that may still go this pass: what is left of @max, and in the
 * work loop (@to_target) no more than takes the balloon down to the
 * target, which a host may lower or raise in its replies
 * (balloon_core_update_target()).
 */
static u64 balloon_core_deflate_room(struct balloon_core_dev *bdev,
				     bool to_target, u64 max, u64 freed)
{
	u64 room = max - freed;

	if (to_target)
		room = min(room, bdev->size > bdev->target ?
			   (bdev->size - bdev->target) /
			   BALLOON_CORE_UNITS_PER_PAGE : 0);
	return room;
}

/*
 * Tell the host, then free, up to @max base pages of one order, in whole
 * pages.  Adds what was freed to @done.  On error the batch goes back to
 * the balloon untouched.
 */
static int balloon_core_deflate_order(struct balloon_core_dev *bdev,
				      unsigned int order, bool to_target,
				      u64 max, u64 *done, unsigned int *budget)
{
	struct balloon_core_batch *batch = &bdev->batch;
	unsigned int n = 1U << order;
	u64 freed = 0, room;
	int ret = 0;

	balloon_core_batch_init(bdev, order);
	while ((room = balloon_core_deflate_room(bdev, to_target, max,
						 freed)) >= n && *budget) {
		unsigned int i = 0, kept, want;
		struct page *page;
		LIST_HEAD(taken);
		LIST_HEAD(stuck);

		want = min_t(u64, min(bdev->caps.max_batch, *budget),
			     room >> order);

		batch->count = balloon_core_dequeue(bdev, order, &taken, want);
		if (!batch->count)
			break;
		list_for_each_entry(page, &taken, lru)
			batch->pages[i++] = page;

		/* The host hears of it before the guest may reuse the page. */
		ret = balloon_core_call_deflate(bdev, batch);
		if (ret) {
			trace_balloon_core_deflate(bdev, order, batch->count, 0,
						   ret);
			balloon_core_requeue(bdev, order, &taken);
			break;
		}
		/* Pages the host would not release stay in the balloon. */
		for (i = 0, kept = 0; i < batch->count; i++) {
			if (!batch->status[i])
				continue;
			list_move_tail(&batch->pages[i]->lru, &stuck);
			kept++;
		}
		if (kept) {
			balloon_core_requeue_kept(bdev, order, &stuck);
			ret = -EBUSY;
		}
		balloon_core_free_list(bdev, &taken, order);
		bdev->size -= (u64)(batch->count - kept) * n *
			      BALLOON_CORE_UNITS_PER_PAGE;
		freed += (u64)(batch->count - kept) * n;
		*budget -= batch->count - kept;
		trace_balloon_core_deflate(bdev, order, batch->count,
					   batch->count - kept, ret);
		if (ret)
			break;
		cond_resched();
	}
	batch->count = 0;
	*done += freed;
	return ret;
}

/**
 * balloon_core_deflate() - give pages back, telling the host first
 * @bdev: the balloon.
 * @l: the limits.
 * @goal_units: how much to give back, in 4 KiB units, when not @to_target.
 * @to_target: a work cycle: at most the deflate rate's worth of pages, and
 *	down to the target as it stands after each host reply, rather than
 *	all of @goal_units (pressure, unregister).
 *
 * Context: Process context, work lock held; may sleep.
 * Return: false when the host failed or kept a page.
 */
bool balloon_core_deflate(struct balloon_core_dev *bdev,
			  const struct balloon_core_limits *l,
			  u64 goal_units, bool to_target)
{
	u64 goal = to_target ? U64_MAX :
		   goal_units / BALLOON_CORE_UNITS_PER_PAGE, done = 0;
	/* The rate counts pages of any size, as the inflate budget does. */
	unsigned int budget = to_target ? bdev->rate.free : UINT_MAX;
	int order, ret = 0;

	/* Largest pages first, each only while it fits in what is left. */
	for (order = BALLOON_CORE_MAX_ORDER; order >= 0 && !ret; order--)
		ret = balloon_core_deflate_order(bdev, order, to_target, goal,
						 &done, &budget);

	/*
	 * Under pressure or at unload, what is left may be smaller than any
	 * page still in the balloon: free one of the smallest all the same.
	 * A work cycle leaves it: the balloon stays above its target by
	 * less than its largest page (balloon_core_direction()), as the
	 * in-tree VMware driver does, rather than split a 2 MiB page for a
	 * 4 KiB dip.
	 */
	for (order = 0; !to_target && !ret && budget && done < goal &&
	     order <= BALLOON_CORE_MAX_ORDER; order++) {
		if (!bdev->nr_pages[order])
			continue;
		ret = balloon_core_deflate_order(bdev, order, false,
						 1U << order, &done, &budget);
		break;
	}

	if (ret == -BALLOON_CORE_ERESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	else if (ret)
		balloon_core_rate_deflate_failed(&bdev->rate, l);
	else if (to_target)
		balloon_core_rate_deflated(&bdev->rate, l);
	return !ret;
}
