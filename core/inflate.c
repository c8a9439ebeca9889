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
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/sched.h>

#include "internal.h"
#include "ops.h"
#include "trace.h"

/* 4 KiB pages joining the balloon under one hold of its page lock. */
#define BALLOON_CORE_ENQUEUE_CHUNK	256

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

/*
 * One inflate cycle's running state.  @want and @done count base (order-0)
 * pages; @budget and @taken count pages of any order, since the budget
 * bounds allocations and a 2 MiB page is one allocation, as it is one
 * entry on the wire.  @refused counts refused 4 KiB pages; @split says a
 * huge page was refused (and split) in the current pass.
 */
struct balloon_core_inflate_ctx {
	const struct balloon_core_limits *l;
	u64 want;
	unsigned int budget;
	unsigned int done;
	unsigned int taken;
	unsigned int refused;
	unsigned int allocs;
	bool can_sleep;
	bool failed;
	bool split;
	int ret;
};

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
					  struct balloon_core_inflate_ctx *ctx,
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
	if (!order && !ctx->can_sleep) {
		page = balloon_core_get_block(bdev, left);
		if (page)
			return page;
	}

	if (order) {
		gfp = BALLOON_CORE_GFP_HUGE;
		stat = BALLOON_CORE_STAT_HUGE_ALLOC;
		fail = BALLOON_CORE_STAT_HUGE_ALLOC_FAIL;
	} else if (ctx->can_sleep) {
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
	if (!page)
		balloon_core_stat_inc(bdev, fail);
	/* A huge page is 512 pages' worth of work (and zeroing). */
	if (order || ++ctx->allocs % BALLOON_CORE_YIELD_EVERY == 0)
		cond_resched();
	return page;
}

/*
 * Hand a filled batch to the host.  Accepted pages join the balloon.  A
 * refused huge page is split, and its 4 KiB pages are offered again in the
 * 4 KiB pass (the host most likely objected to one of them).  Up to
 * @max_refused refused 4 KiB pages a cycle wait on @refused until the cycle
 * ends, so that the allocator does not hand them out again at once; any
 * beyond that are freed now.  Records the transport's verdict in @ctx.
 */
static void balloon_core_inflate_batch(struct balloon_core_dev *bdev,
				       struct balloon_core_inflate_ctx *ctx)
{
	struct balloon_core_batch *batch = &bdev->batch;
	unsigned int i, j, queued = 0, order = batch->order;
	LIST_HEAD(taken);
	int ret;

	ret = balloon_core_call_inflate(bdev, batch);
	ctx->ret = ret == -EAGAIN ? 0 : ret;
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
		return;
	}

	for (i = 0, j = 0; i < batch->count; i++)
		j += !batch->status[i];
	trace_balloon_core_inflate(bdev, order, batch->count, j, ret);

	for (i = 0; i < batch->count; i++) {
		struct page *page = batch->pages[i];

		if (!batch->status[i]) {
			balloon_core_account(bdev, page, order, true);
			if (order)
				balloon_core_enqueue(bdev, page, order);
			else
				list_add_tail(&page->lru, &taken);
			/* The page lock keeps interrupts off: not too long. */
			if (!order && ++queued == BALLOON_CORE_ENQUEUE_CHUNK) {
				balloon_core_enqueue_list(bdev, &taken);
				queued = 0;
			}
			bdev->size += BALLOON_CORE_UNITS_PER_PAGE << order;
			ctx->done += 1U << order;
			ctx->taken++;
			continue;
		}
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_REFUSED_ALLOC);
		trace_balloon_core_refused(bdev, page_to_pfn(page), order,
					   batch->status[i]);
		if (order) {
			split_page(page, order);
			for (j = 0; j < (1U << order); j++)
				list_add_tail(&page[j].lru, &bdev->prealloc);
			balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_HUGE_SPLIT);
			ctx->split = true;
			continue;
		}
		if (ctx->refused++ < ctx->l->max_refused)
			list_add(&page->lru, &bdev->refused);
		else
			balloon_core_free_page(bdev, page, 0,
					       BALLOON_CORE_STAT_REFUSED_FREE);
	}
	/* One trip through the balloon's page lock per chunk, not per page. */
	balloon_core_enqueue_list(bdev, &taken);
	batch->count = 0;
	if (ret == -EAGAIN)
		ctx->ret = -EAGAIN;

	/* The host may have moved its target meanwhile (see update_target). */
	ctx->want = ctx->done;
	if (bdev->target > bdev->size)
		ctx->want += (bdev->target - bdev->size) /
			     BALLOON_CORE_UNITS_PER_PAGE;
}

/*
 * Allocate and hand over pages of one order until the cycle's budget or
 * the target is reached.  Returns false when the whole cycle must end.
 */
static bool balloon_core_inflate_order(struct balloon_core_dev *bdev,
				       struct balloon_core_inflate_ctx *ctx,
				       unsigned int order)
{
	struct balloon_core_batch *batch = &bdev->batch;
	unsigned int n = 1U << order;

	balloon_core_batch_init(bdev, order);
	ctx->split = false;
	while (ctx->done + (batch->count + 1) * n <= ctx->want &&
	       ctx->taken + batch->count < ctx->budget) {
		struct page *page;

		page = balloon_core_get_page(bdev, ctx, order,
					     min_t(u64, ctx->want - ctx->done -
						   batch->count,
						   ctx->budget - ctx->taken -
						   batch->count));

		if (!page && order)
			break;	/* no huge page to spare: go on with 4 KiB */
		if (!page && ctx->can_sleep) {
			balloon_core_rate_sleep_failed(&bdev->rate, ctx->l);
			ctx->failed = true;
			break;
		}
		if (!page) {
			if (!balloon_core_rate_nosleep_failed(&bdev->rate, ctx->l,
							      ctx->taken + batch->count)) {
				ctx->failed = true;
				break;
			}
			ctx->can_sleep = true;
			ctx->budget = bdev->rate.alloc;
			continue;
		}

		batch->pages[batch->count++] = page;
		if (batch->count < bdev->caps.max_batch)
			continue;
		balloon_core_inflate_batch(bdev, ctx);
		if (ctx->ret || ctx->refused >= ctx->l->max_refused)
			return false;
		if (ctx->split)
			break;	/* the pieces go first in the 4 KiB pass */
	}
	if (batch->count)
		balloon_core_inflate_batch(bdev, ctx);
	return !ctx->ret && !ctx->failed &&
	       ctx->refused < ctx->l->max_refused;
}

/**
 * balloon_core_inflate() - one cycle's inflation towards the target
 * @bdev: the balloon, below its target.
 * @l: the cycle's limits.
 * @slow: the cycle starts with sleeping allocations.
 *
 * Context: Process context, work lock held; may sleep.
 * Return: false when an allocation or the host failed: time to back off.
 */
bool balloon_core_inflate(struct balloon_core_dev *bdev,
			  const struct balloon_core_limits *l, bool slow)
{
	struct balloon_core_inflate_ctx ctx = {
		.l = l,
		.want = (bdev->target - bdev->size) / BALLOON_CORE_UNITS_PER_PAGE,
		.budget = balloon_core_rate_inflate_budget(&bdev->rate, l, slow),
		.can_sleep = slow,
	};
	struct page *page, *next;
	int order;

	/* Largest pages first: they cost the host one entry for 512. */
	for (order = BALLOON_CORE_MAX_ORDER; order >= 0; order--) {
		if (!(bdev->caps.orders & BIT(order)))
			continue;
		if (!balloon_core_inflate_order(bdev, &ctx, order))
			break;
	}

	if (ctx.ret == -BALLOON_CORE_ERESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	else if (!ctx.ret && !ctx.failed)
		balloon_core_rate_inflated(&bdev->rate, l, ctx.taken);

	balloon_core_release_refused(bdev);
	list_for_each_entry_safe(page, next, &bdev->prealloc, lru) {
		list_del(&page->lru);
		balloon_core_free_page(bdev, page, 0,
				       BALLOON_CORE_STAT_REFUSED_FREE);
	}
	return !ctx.ret && !ctx.failed;
}
