// SPDX-License-Identifier: GPL-2.0
/*
 * Inflation: allocate pages and hand them to the host, batch by batch,
 * within one cycle's budget.
 *
 * The policy is the one VMware's driver has used since 2010: non-sleeping
 * allocations first; when one fails the guest is short of memory, and the
 * cycle goes on with sleeping allocations at the adaptive rate (core/rate.c
 * keeps the rates).  Where the host takes them, 2 MiB pages come first, and
 * 4 KiB pages come in blocks split after allocation.  Pages the host takes
 * join the balloon through core/pages.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/lockdep.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched.h>

#include "internal.h"
#include "ops.h"
#include "trace.h"

/**
 * balloon_core_alloc_page() - allocate one page for the balloon
 * @gfp: allocation flags.
 * @order: page order.
 *
 * The only place the core allocates balloon pages, so that KUnit suites can
 * replace it with a static stub to inject failures.
 *
 * Context: May sleep if @gfp allows it.
 * Return: the page, or %NULL.
 */
VISIBLE_IF_KUNIT struct page *balloon_core_alloc_page(gfp_t gfp,
						      unsigned int order)
{
	KUNIT_STATIC_STUB_REDIRECT(balloon_core_alloc_page, gfp, order);
	return alloc_pages(gfp, order);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_alloc_page);

/**
 * enum balloon_core_inflated - how a step of an inflate cycle ended
 * @BALLOON_CORE_INFLATE_GO_ON: nothing stopped it; the next step may run.
 * @BALLOON_CORE_INFLATE_NEXT_ORDER: this order's pass is over (the host
 *	refused a huge page, which was split and whose 4 KiB pieces go first
 *	in the 4 KiB pass; or no huge page was to be had), but not the cycle.
 * @BALLOON_CORE_INFLATE_REFUSED: the host refused as many 4 KiB pages as a
 *	cycle tolerates (&balloon_core_limits.max_refused): the cycle ends,
 *	as a good one.
 * @BALLOON_CORE_INFLATE_INTERRUPTED: while the cycle allocated without the
 *	work lock, the OOM notifier gave pages back or asked for that, or
 *	reset the balloon: the cycle ends and the loop backs off.
 * @BALLOON_CORE_INFLATE_NO_MEMORY: an allocation failed and the rates say
 *	stop: the cycle ends and the work loop backs off.
 * @BALLOON_CORE_INFLATE_HOST_FULL: the host wants no more pages this cycle
 *	(@inflate returned -%EAGAIN): the cycle ends and the loop backs off.
 * @BALLOON_CORE_INFLATE_HOST_FAILED: a host command failed as a whole: the
 *	cycle ends and the loop backs off.
 * @BALLOON_CORE_INFLATE_RESET: the host demands a reset.
 *
 * The verdicts are ordered: when two apply, the later one stands (a reset
 * the host asked for is never lost to an allocation failure).
 */
enum balloon_core_inflated {
	BALLOON_CORE_INFLATE_GO_ON,
	BALLOON_CORE_INFLATE_NEXT_ORDER,
	BALLOON_CORE_INFLATE_REFUSED,
	BALLOON_CORE_INFLATE_INTERRUPTED,
	BALLOON_CORE_INFLATE_NO_MEMORY,
	BALLOON_CORE_INFLATE_HOST_FULL,
	BALLOON_CORE_INFLATE_HOST_FAILED,
	BALLOON_CORE_INFLATE_RESET,
};

/**
 * struct balloon_core_inflation - the running totals of one inflate cycle
 * @l: the cycle's limits.
 * @budget: allocations the cycle may make, in pages of any order: a 2 MiB
 *	page is one allocation, as it is one entry on the wire.
 * @taken: pages (of any order) the host took this cycle.
 * @refused: 4 KiB pages the host refused this cycle.
 * @allocs: 4 KiB allocations this cycle, for the reschedule points.
 * @ooms: OOM notifications heard when the cycle began (%BALLOON_CORE_STAT_OOM).
 * @can_sleep: allocations may sleep: the guest is short of memory, or the
 *	cycle is one of the slow ones after such a shortage.
 *
 * Owned by balloon_core_inflate(), on its stack: only the cycle that runs
 * it touches it, with or without the work lock.
 */
struct balloon_core_inflation {
	const struct balloon_core_limits *l;
	unsigned int budget;
	unsigned int taken;
	unsigned int refused;
	unsigned int allocs;
	u64 ooms;
	bool can_sleep;
};

/*
 * How many base pages the balloon still wants to reach its target.  The
 * host may move its target during a cycle (balloon_core_update_target()),
 * so this is asked again as the cycle goes.
 */
static u64 balloon_core_inflate_left(const struct balloon_core_dev *bdev)
{
	if (bdev->target <= bdev->size)
		return 0;
	return (bdev->target - bdev->size) / BALLOON_CORE_UNITS_PER_PAGE;
}

/*
 * Take a block of 2^order 4 KiB pages at once and split it: one trip
 * through the allocator instead of 2^order, and a contiguous run for the
 * host.  Only in the non-sleeping pass, only as much as is still wanted,
 * and only while the guest can spare a whole block right now.  The
 * pieces wait on @prealloc; any left when the cycle ends are freed.
 */
static struct page *balloon_core_get_block(struct balloon_core_dev *bdev,
					   u64 left)
{
	unsigned int order, i;
	struct page *page;

	if (left < BIT(BALLOON_CORE_BLOCK_MIN_ORDER))
		return NULL;
	order = min_t(unsigned int, ilog2(left), BALLOON_CORE_MAX_ORDER);
	page = balloon_core_alloc_page(BALLOON_CORE_GFP_BLOCK, order);
	if (!page)
		return NULL;
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_BLOCK_ALLOC);
	split_page(page, order);
	cond_resched();
	for (i = 1; i < BIT(order); i++)
		list_add_tail(&page[i].lru, &bdev->prealloc);
	return page;
}

static struct page *balloon_core_get_page(struct balloon_core_dev *bdev,
					  struct balloon_core_inflation *in,
					  unsigned int order, u64 left)
{
	enum balloon_core_stat stat, fail;
	struct page *page;
	gfp_t gfp;

	/* 4 KiB pieces of a refused or split block go first. */
	if (!order && !list_empty(&bdev->prealloc)) {
		page = list_first_entry(&bdev->prealloc, struct page, lru);
		list_del(&page->lru);
		return page;
	}
	if (!order && !in->can_sleep) {
		page = balloon_core_get_block(bdev, left);
		if (page)
			return page;
	}

	if (order) {
		gfp = BALLOON_CORE_GFP_HUGE;
		stat = BALLOON_CORE_STAT_HUGE_ALLOC;
		fail = BALLOON_CORE_STAT_HUGE_ALLOC_FAIL;
	} else if (in->can_sleep) {
		gfp = BALLOON_CORE_GFP_SLEEP;
		stat = BALLOON_CORE_STAT_SLEEP_ALLOC;
		fail = BALLOON_CORE_STAT_SLEEP_ALLOC_FAIL;
	} else {
		gfp = BALLOON_CORE_GFP_NOSLEEP;
		stat = BALLOON_CORE_STAT_ALLOC;
		fail = BALLOON_CORE_STAT_ALLOC_FAIL;
	}
	balloon_core_stat_inc(bdev, stat);
	page = balloon_core_alloc_page(gfp, order);
	/* A huge page needs its slot in the balloon now, without the lock. */
	if (page && order && balloon_core_reserve(bdev, page, order)) {
		__free_pages(page, order);
		page = NULL;
	}
	if (!page)
		balloon_core_stat_inc(bdev, fail);
	/* A huge page is 2 MiB's worth of work (and zeroing). */
	if (order || ++in->allocs % BALLOON_CORE_YIELD_EVERY == 0)
		cond_resched();
	return page;
}

/* What the host's answer to a whole batch means for the cycle. */
static enum balloon_core_inflated balloon_core_inflate_answer(int ret)
{
	switch (ret) {
	case 0:
		return BALLOON_CORE_INFLATE_GO_ON;
	case -EAGAIN:
		return BALLOON_CORE_INFLATE_HOST_FULL;
	case -BALLOON_CORE_ERESET:
		return BALLOON_CORE_INFLATE_RESET;
	default:
		return BALLOON_CORE_INFLATE_HOST_FAILED;
	}
}

/*
 * Hand the @pending pages of @order to the host as one batch.  Accepted
 * pages join the balloon.  A refused huge page is split, and its 4 KiB
 * pages are offered again in the 4 KiB pass (the host most likely objected
 * to one of them).  Up to @max_refused refused 4 KiB pages a cycle wait on
 * @refused until the cycle ends, so that the allocator does not hand them
 * out again at once; any beyond that are freed now.
 */
static enum balloon_core_inflated
balloon_core_inflate_batch(struct balloon_core_dev *bdev,
			   struct balloon_core_inflation *in,
			   unsigned int order, struct list_head *pending)
{
	struct balloon_core_batch *batch = &bdev->batch;
	enum balloon_core_inflated verdict;
	struct page *page, *next;
	bool split = false;
	LIST_HEAD(taken);
	unsigned int i, j;
	int ret;

	balloon_core_batch_init(bdev, order);
	list_for_each_entry_safe(page, next, pending, lru) {
		list_del(&page->lru);
		batch->pages[batch->count++] = page;
	}
	ret = balloon_core_call_inflate(bdev, batch);
	verdict = balloon_core_inflate_answer(ret);
	if (ret && ret != -EAGAIN) {
		/* Nothing was taken: the whole batch was refused. */
		trace_balloon_core_inflate(bdev, order, batch->count, 0, ret);
		for (i = 0; i < batch->count; i++) {
			balloon_core_stat_inc(bdev,
					      BALLOON_CORE_STAT_REFUSED_ALLOC);
			balloon_core_free_page(bdev, batch->pages[i], order,
					       BALLOON_CORE_STAT_REFUSED_FREE);
		}
		batch->count = 0;
		return verdict;
	}

	for (i = 0, j = 0; i < batch->count; i++)
		j += !batch->status[i];
	trace_balloon_core_inflate(bdev, order, batch->count, j, ret);

	for (i = 0; i < batch->count; i++) {
		struct page *page = batch->pages[i];

		if (!batch->status[i]) {
			if (order)
				balloon_core_enqueue(bdev, page, order);
			else
				list_add_tail(&page->lru, &taken);
			bdev->size += BALLOON_CORE_UNITS_PER_PAGE << order;
			in->taken++;
			continue;
		}
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_REFUSED_ALLOC);
		trace_balloon_core_refused(bdev, page_to_pfn(page), order,
					   batch->status[i]);
		if (order) {
			balloon_core_unreserve(bdev, page, order);
			split_page(page, order);
			for (j = 0; j < (1U << order); j++)
				list_add_tail(&page[j].lru, &bdev->prealloc);
			balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_HUGE_SPLIT);
			split = true;
			continue;
		}
		if (in->refused++ < in->l->max_refused)
			list_add(&page->lru, &bdev->refused);
		else
			balloon_core_free_page(bdev, page, 0,
					       BALLOON_CORE_STAT_REFUSED_FREE);
	}
	/* A few trips through the balloon's page lock, not one per page. */
	balloon_core_enqueue_list(bdev, &taken);
	batch->count = 0;

	if (in->refused >= in->l->max_refused)
		verdict = max(verdict, BALLOON_CORE_INFLATE_REFUSED);
	if (split)
		verdict = max(verdict, BALLOON_CORE_INFLATE_NEXT_ORDER);
	return verdict;
}

/*
 * No page of @order to be had.  A huge page is a bonus, a 4 KiB one the
 * guest cannot spare right now means it is short of memory: go on with
 * sleeping allocations where the rates allow, or end the cycle.
 */
static enum balloon_core_inflated
balloon_core_inflate_no_page(struct balloon_core_dev *bdev,
			     struct balloon_core_inflation *in,
			     unsigned int order)
{
	if (order)
		return BALLOON_CORE_INFLATE_NEXT_ORDER;
	if (in->can_sleep) {
		balloon_core_rate_sleep_failed(&bdev->rate, in->l);
		return BALLOON_CORE_INFLATE_NO_MEMORY;
	}
	if (!balloon_core_rate_nosleep_failed(&bdev->rate, in->l, in->taken))
		return BALLOON_CORE_INFLATE_NO_MEMORY;
	in->can_sleep = true;
	in->budget = bdev->rate.alloc;
	return BALLOON_CORE_INFLATE_GO_ON;
}

/*
 * Allocate up to @want pages of @order onto @pending, without the work
 * lock, stopping at the first failure or at memory pressure.  @need is
 * what the cycle still wants in all, for the size of 4 KiB blocks.
 * Returns false when an allocation failed.
 */
static bool balloon_core_inflate_alloc(struct balloon_core_dev *bdev,
				       struct balloon_core_inflation *in,
				       unsigned int order, unsigned int want,
				       u64 need, struct list_head *pending,
				       unsigned int *count)
{
	for (*count = 0; *count < want; (*count)++) {
		struct page *page;

		if (test_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags))
			break;
		page = balloon_core_get_page(bdev, in, order, need - *count);
		if (!page)
			return false;
		list_add_tail(&page->lru, pending);
	}
	return true;
}

/*
 * While the cycle allocated without the work lock, did the guest run out
 * of memory (the OOM notifier ran, whether or not it found anything to
 * give back), or did the notifier reset the balloon?  Inflation was
 * allowed, so no hold-off ran when it began.
 */
static bool balloon_core_inflate_interrupted(struct balloon_core_dev *bdev,
					     const struct balloon_core_inflation *in)
{
	return balloon_core_stat_read(bdev, BALLOON_CORE_STAT_OOM) != in->ooms ||
	       test_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags) ||
	       test_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags) ||
	       balloon_core_needs_start(bdev);
}

/* Free pages of @order from the head of @pending, @n of them at most. */
static void balloon_core_inflate_unwanted(struct balloon_core_dev *bdev,
					  struct list_head *pending,
					  unsigned int order, unsigned int n)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, pending, lru) {
		if (!n--)
			break;
		list_del(&page->lru);
		balloon_core_free_page(bdev, page, order,
				       BALLOON_CORE_STAT_REFUSED_FREE);
	}
}

/*
 * Allocate and hand over pages of one order, a batch at a time, until the
 * cycle's budget or the target is reached, or something ends the pass.
 * Each batch is allocated without the work lock, which is taken again to
 * hand it to the host: the OOM notifier and balloon compaction never wait
 * behind the allocator, whose sleeping allocations may reclaim.
 */
static enum balloon_core_inflated
balloon_core_inflate_order(struct balloon_core_dev *bdev,
			   struct balloon_core_inflation *in, unsigned int order)
{
	enum balloon_core_inflated verdict = BALLOON_CORE_INFLATE_GO_ON;
	LIST_HEAD(pending);

	lockdep_assert_held(&bdev->lock);

	while (verdict == BALLOON_CORE_INFLATE_GO_ON &&
	       !test_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags)) {
		u64 need = min_t(u64, balloon_core_inflate_left(bdev) >> order,
				 in->budget - min(in->taken, in->budget));
		unsigned int want = min_t(u64, need, bdev->caps.max_batch);
		unsigned int count;
		u64 left;
		bool got;

		if (!want)
			break;
		mutex_unlock(&bdev->lock);
		got = balloon_core_inflate_alloc(bdev, in, order, want, need,
						 &pending, &count);
		mutex_lock(&bdev->lock);

		if (balloon_core_inflate_interrupted(bdev, in)) {
			verdict = BALLOON_CORE_INFLATE_INTERRUPTED;
			break;
		}
		/* The target may have come down meanwhile (a host reply). */
		left = balloon_core_inflate_left(bdev) >> order;
		if (count > left)
			balloon_core_inflate_unwanted(bdev, &pending, order,
						      count - left);
		if (!list_empty(&pending))
			verdict = balloon_core_inflate_batch(bdev, in, order,
							     &pending);
		if (!got)
			verdict = max(verdict,
				      balloon_core_inflate_no_page(bdev, in,
								   order));
	}
	balloon_core_inflate_unwanted(bdev, &pending, order, UINT_MAX);
	/* The pass is over; the cycle goes on with the next order. */
	if (verdict == BALLOON_CORE_INFLATE_NEXT_ORDER)
		verdict = BALLOON_CORE_INFLATE_GO_ON;
	return verdict;
}

/**
 * balloon_core_inflate() - one cycle's inflation towards the target
 * @bdev: the balloon, below its target.
 * @l: the cycle's limits.
 * @slow: the cycle starts with sleeping allocations.
 *
 * Context: Process context, work lock held; drops it while allocating, and
 * holds it again on return.  May sleep.
 * Return: false when an allocation or the host failed, or memory pressure
 * or a reset came while allocating: time to back off.
 */
bool balloon_core_inflate(struct balloon_core_dev *bdev,
			  const struct balloon_core_limits *l, bool slow)
{
	struct balloon_core_inflation in = {
		.l = l,
		.budget = balloon_core_rate_inflate_budget(&bdev->rate, l, slow),
		.ooms = balloon_core_stat_read(bdev, BALLOON_CORE_STAT_OOM),
		.can_sleep = slow,
	};
	enum balloon_core_inflated verdict = BALLOON_CORE_INFLATE_GO_ON;
	struct page *page, *next;
	bool clean;
	int order;

	/* Largest pages first: they cost the host one entry for 2 MiB. */
	for (order = BALLOON_CORE_MAX_ORDER;
	     order >= 0 && verdict == BALLOON_CORE_INFLATE_GO_ON; order--) {
		if (bdev->caps.orders & BIT(order))
			verdict = balloon_core_inflate_order(bdev, &in, order);
	}

	clean = verdict <= BALLOON_CORE_INFLATE_REFUSED;
	if (verdict == BALLOON_CORE_INFLATE_RESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	else if (clean)
		balloon_core_rate_inflated(&bdev->rate, l, in.taken);

	balloon_core_release_refused(bdev);
	list_for_each_entry_safe(page, next, &bdev->prealloc, lru) {
		list_del(&page->lru);
		balloon_core_free_page(bdev, page, 0,
				       BALLOON_CORE_STAT_REFUSED_FREE);
	}
	return clean;
}
