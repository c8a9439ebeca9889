// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_core: registration, the work loop, inflate, deflate and reset.
 *
 * One delayed work item per balloon does everything that touches pages or
 * talks to the host, on the freezable system workqueue so that nothing
 * moves while the guest suspends.  Transports only kick it.  The work lock
 * (&balloon_core_dev.lock) serialises the loop against unregister; the ops
 * rwsem makes "no method runs after unregister" hold for every caller.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/gfp.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/oom.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timer.h>

#include "internal.h"
#include "ops.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/* 4 KiB pages joining the balloon under one hold of its page lock. */
#define BALLOON_CORE_ENQUEUE_CHUNK	256

/*
 * Unregister retries a host that gives no page back this many times, this
 * far apart, before it frees the pages all the same.
 */
#define BALLOON_CORE_UNLOAD_TRIES	10
#define BALLOON_CORE_UNLOAD_WAIT_MS	100

/*
 * Delay before retrying a failed handshake, or a push-style host's cycle
 * that made no progress.
 */
#define BALLOON_CORE_RETRY_MS	1000

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

static void balloon_core_reset(struct balloon_core_dev *bdev)
{
	trace_balloon_core_reset(bdev);
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_RESET);
	balloon_core_release_refused(bdev);
	balloon_core_drop_all(bdev);
	clear_bit(BALLOON_CORE_F_STARTED, &bdev->flags);
	clear_bit(BALLOON_CORE_F_RESET, &bdev->flags);
}

/*
 * The capabilities a transport's @start filled in must make sense before
 * the core relies on them; within those rules, the core trims what it does
 * not support (orders above its largest, batches above its arrays).
 */
static int balloon_core_caps_check(struct balloon_core_dev *bdev,
				   struct balloon_core_caps *caps)
{
	if (!(caps->orders & BIT(0)) || !caps->max_batch ||
	    ((caps->flags & BALLOON_CORE_CAP_POLL) && !caps->poll_ms)) {
		dev_err_once(bdev->parent,
			     "%s: start gave no usable page order, batch size or poll interval\n",
			     bdev->name);
		return -EPROTO;
	}
	caps->orders &= GENMASK(BALLOON_CORE_MAX_ORDER, 0);
	if (caps->max_batch > BALLOON_CORE_MAX_BATCH) {
		dev_info_once(bdev->parent,
			      "%s: host batch of %u pages capped at %u\n",
			      bdev->name, caps->max_batch,
			      BALLOON_CORE_MAX_BATCH);
		caps->max_batch = BALLOON_CORE_MAX_BATCH;
	}
	return 0;
}

/* The handshake; capabilities that make no sense make it a failed one. */
static int balloon_core_start(struct balloon_core_dev *bdev)
{
	struct balloon_core_caps caps = { };
	int ret;

	ret = balloon_core_call_start(bdev, &caps);
	if (ret)
		return ret;
	ret = balloon_core_caps_check(bdev, &caps);
	if (ret) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_START_FAIL);
		return ret;
	}
	bdev->caps = caps;
	return 0;
}

/* Host-supplied targets are untrusted: never more than the guest has. */
static u64 balloon_core_clamp_target(struct balloon_core_dev *bdev, u64 target)
{
	u64 limit = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;

	/* Pages taken out of the managed count are still the guest's. */
	if (bdev->caps.flags & BALLOON_CORE_CAP_ADJUST_MANAGED)
		limit += bdev->size;

	if (target <= limit)
		return target;
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_CLAMPED);
	dev_warn_once(bdev->parent,
		      "%s: host target %llu above guest memory, clamped to %llu\n",
		      bdev->name, target, limit);
	return limit;
}

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

/* Returns false when an allocation or the host failed: time to back off. */
static bool balloon_core_inflate(struct balloon_core_dev *bdev,
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

/*
 * Tell the host, then free, up to @max base pages of one order, in whole
 * pages.  Adds what was freed to @done.  On error the batch goes back to
 * the balloon untouched.
 */
static int balloon_core_deflate_order(struct balloon_core_dev *bdev,
				      unsigned int order, u64 max, u64 *done,
				      unsigned int *budget)
{
	struct balloon_core_batch *batch = &bdev->batch;
	unsigned int n = 1U << order;
	u64 freed = 0;
	int ret = 0;

	balloon_core_batch_init(bdev, order);
	while (freed + n <= max && *budget) {
		unsigned int i = 0, kept, want;
		struct page *page;
		LIST_HEAD(taken);
		LIST_HEAD(stuck);

		want = min_t(u64, min(bdev->caps.max_batch, *budget),
			     (max - freed) >> order);

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
			balloon_core_requeue(bdev, order, &taken, batch->count);
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
			balloon_core_requeue_kept(bdev, order, &stuck, kept);
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

/* Returns false when the host failed or kept a page. */
static bool balloon_core_deflate(struct balloon_core_dev *bdev,
				 const struct balloon_core_limits *l,
				 u64 goal_units, bool rate_limited)
{
	u64 goal = goal_units / BALLOON_CORE_UNITS_PER_PAGE, done = 0;
	/* The rate counts pages of any size, as the inflate budget does. */
	unsigned int budget = rate_limited ? bdev->rate.free : UINT_MAX;
	int order, ret = 0;

	/* Largest pages first, each only while it fits in what is left. */
	for (order = BALLOON_CORE_MAX_ORDER; order >= 0 && !ret; order--)
		ret = balloon_core_deflate_order(bdev, order, goal - done, &done,
						 &budget);

	/*
	 * What is left is smaller than any page still in the balloon: free
	 * one of the smallest and let the next cycle inflate back to the
	 * target in 4 KiB pages, rather than sit above it for good.
	 */
	for (order = 0; !ret && budget && done < goal &&
	     order <= BALLOON_CORE_MAX_ORDER; order++) {
		if (!bdev->nr_pages[order])
			continue;
		ret = balloon_core_deflate_order(bdev, order, 1U << order, &done,
						 &budget);
		break;
	}

	if (ret == -BALLOON_CORE_ERESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	else if (ret)
		balloon_core_rate_deflate_failed(&bdev->rate, l);
	else if (rate_limited)
		balloon_core_rate_deflated(&bdev->rate, l);
	return !ret;
}

/* Is inflation held off after a pressure deflate?  Clears it once over. */
static bool balloon_core_held_off(struct balloon_core_dev *bdev)
{
	if (!test_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags))
		return false;
	if (time_before(jiffies, bdev->holdoff_until))
		return true;
	clear_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags);
	return false;
}

/* Which way the balloon must move: 1 inflate, -1 deflate, 0 at target. */
static int balloon_core_direction(struct balloon_core_dev *bdev)
{
	if (bdev->size + BALLOON_CORE_UNITS_PER_PAGE <= bdev->target)
		return 1;
	if (bdev->size >= bdev->target + BALLOON_CORE_UNITS_PER_PAGE)
		return -1;
	return 0;
}

/*
 * One cycle: reset if asked, handshake if needed, read the target and move
 * towards it within this cycle's budget.  Returns true when there is more
 * to do right away.
 */
static bool balloon_core_cycle(struct balloon_core_dev *bdev)
{
	struct balloon_core_limits l;
	u64 old_size = bdev->size, target;
	bool slow, clean = true;
	int dir, ret;

	balloon_core_limits_get(&l);
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_TIMER);

	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
		balloon_core_reset(bdev);
	if (!test_bit(BALLOON_CORE_F_STARTED, &bdev->flags)) {
		if (balloon_core_start(bdev))
			goto out;
		set_bit(BALLOON_CORE_F_STARTED, &bdev->flags);
	}

	slow = balloon_core_rate_cycle_slow(&bdev->rate);
	ret = balloon_core_call_target(bdev, &target);
	if (ret == -BALLOON_CORE_ERESET) {
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
		goto out;
	}
	if (ret)
		goto out;

	bdev->target = balloon_core_clamp_target(bdev, target);
	trace_balloon_core_target(bdev, target, bdev->target);
	dir = balloon_core_direction(bdev);
	if (dir < 0)
		clean = balloon_core_deflate(bdev, &l,
					     bdev->size - bdev->target, true);
	else if (dir > 0 && balloon_core_held_off(bdev))
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_HOLDOFF);
	else if (dir > 0)
		clean = balloon_core_inflate(bdev, &l, slow);

out:
	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags)) {
		balloon_core_reset(bdev);
		old_size = ~0ULL;	/* report the empty balloon */
	}
	if (bdev->size != old_size)
		balloon_core_call_size_changed(bdev);
	/* After a failure the next cycle waits: slow cycles are slow. */
	return clean && bdev->size != old_size &&
	       !test_bit(BALLOON_CORE_F_RESET, &bdev->flags) &&
	       balloon_core_direction(bdev);
}

/**
 * balloon_core_run_cycle() - run one work cycle under the work lock
 * @bdev: the balloon.
 *
 * What the work item does each time it runs; the KUnit suites call it to
 * step the balloon one cycle at a time.
 *
 * Context: Process context; may sleep.  Takes the work lock.
 * Return: true when there is more to do right away.
 */
VISIBLE_IF_KUNIT bool balloon_core_run_cycle(struct balloon_core_dev *bdev)
{
	bool more;

	mutex_lock(&bdev->lock);
	more = balloon_core_cycle(bdev);
	mutex_unlock(&bdev->lock);
	return more;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_run_cycle);

static void balloon_core_work(struct work_struct *work)
{
	struct balloon_core_dev *bdev =
		container_of(to_delayed_work(work), struct balloon_core_dev,
			     work);
	unsigned long delay;
	bool more = balloon_core_run_cycle(bdev);

	/*
	 * A cycle's budget only bounds how long the work lock is held: when
	 * the balloon moved and has further to go, go on at once, polled
	 * host or not.
	 */
	if (!test_bit(BALLOON_CORE_F_STARTED, &bdev->flags))
		delay = msecs_to_jiffies(BALLOON_CORE_RETRY_MS);
	else if (more)
		delay = 0;
	else if (bdev->caps.flags & BALLOON_CORE_CAP_POLL)
		delay = round_jiffies_relative(msecs_to_jiffies(bdev->caps.poll_ms));
	else if (balloon_core_direction(bdev))
		delay = msecs_to_jiffies(BALLOON_CORE_RETRY_MS);
	else
		return;

	spin_lock_irq(&bdev->kick_lock);
	if (test_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags))
		queue_delayed_work(system_freezable_wq, &bdev->work, delay);
	spin_unlock_irq(&bdev->kick_lock);
}

/*
 * Deflate under memory pressure, where the host allows it: the kernel is
 * about to kill a process for memory.  Give back up to @oom_pages pages
 * (telling the host first) and hold inflation off for a while, so that the
 * next cycle does not take them straight back.  The OOM killer stands down
 * when anything was freed.
 */
static int balloon_core_oom_notify(struct notifier_block *nb,
				   unsigned long unused, void *arg)
{
	struct balloon_core_dev *bdev =
		container_of(nb, struct balloon_core_dev, oom_nb);
	unsigned long *freed = arg;
	struct balloon_core_limits l;
	u64 before;

	/*
	 * Only a host that allows it gets a pressure deflate; any other
	 * balloon stays out of the OOM path, and off its work lock.
	 */
	if (!(READ_ONCE(bdev->caps.flags) & BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE))
		return NOTIFY_OK;

	balloon_core_limits_get(&l);
	mutex_lock(&bdev->lock);
	if (!test_bit(BALLOON_CORE_F_STARTED, &bdev->flags) ||
	    !(bdev->caps.flags & BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE) ||
	    !bdev->size)
		goto out;

	before = bdev->size;
	/* A host that demanded a reset has forgotten every page: take all. */
	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
		balloon_core_reset(bdev);
	else
		balloon_core_deflate(bdev, &l,
				     min_t(u64, bdev->size, (u64)l.oom_pages *
					   BALLOON_CORE_UNITS_PER_PAGE), false);
	if (bdev->size == before)
		goto out;

	*freed += (before - bdev->size) / BALLOON_CORE_UNITS_PER_PAGE;
	trace_balloon_core_pressure(bdev, before - bdev->size);
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_PRESSURE);
	atomic64_add(before - bdev->size,
		     &bdev->stats[BALLOON_CORE_STAT_PRESSURE_FREE]);
	bdev->holdoff_until = jiffies + msecs_to_jiffies(l.holdoff_ms);
	set_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags);
	balloon_core_call_size_changed(bdev);
out:
	mutex_unlock(&bdev->lock);
	/* After a host reset the work loop must redo the handshake. */
	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags) ||
	    !test_bit(BALLOON_CORE_F_STARTED, &bdev->flags))
		balloon_core_kick(bdev);
	return NOTIFY_OK;
}

/**
 * balloon_core_kick() - tell the core the host has a new target
 * @bdev: the balloon.
 *
 * Schedules the work loop at once.  Safe from interrupt context; does
 * nothing once unregister has begun.
 *
 * Context: Any context.
 */
void balloon_core_kick(struct balloon_core_dev *bdev)
{
	unsigned long flags;

	spin_lock_irqsave(&bdev->kick_lock, flags);
	if (test_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags)) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_KICK);
		mod_delayed_work(system_freezable_wq, &bdev->work, 0);
	}
	spin_unlock_irqrestore(&bdev->kick_lock, flags);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_kick, BALLOON_CORE_NS);

/**
 * balloon_core_request_reset() - drop the balloon and redo the handshake
 * @bdev: the balloon.
 *
 * For a transport whose device was reset or resumed: on its next cycle
 * the core frees every page without telling the host, then calls @start.
 *
 * Context: Any context.
 */
void balloon_core_request_reset(struct balloon_core_dev *bdev)
{
	set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	balloon_core_kick(bdev);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_request_reset, BALLOON_CORE_NS);

/**
 * balloon_core_update_target() - take a target the host sent unasked
 * @bdev: the balloon.
 * @target: the host's target, in 4 KiB units; untrusted, clamped here.
 *
 * For hosts that piggyback their current target on other replies (VMware
 * returns it with every lock and unlock): an inflate in progress stops
 * as soon as the target says so, instead of at the end of the cycle.
 *
 * Context: Only from a transport method (the work lock is held).
 */
void balloon_core_update_target(struct balloon_core_dev *bdev, u64 target)
{
	u64 clamped;

	lockdep_assert_held(&bdev->lock);
	clamped = balloon_core_clamp_target(bdev, target);
	if (clamped != bdev->target)
		trace_balloon_core_target(bdev, target, clamped);
	bdev->target = clamped;
}
EXPORT_SYMBOL_NS_GPL(balloon_core_update_target, BALLOON_CORE_NS);

/**
 * balloon_core_size() - current balloon size
 * @bdev: the balloon.
 *
 * Context: Any context; the value may be stale by the time it is used.
 * Return: the size in 4 KiB units.
 */
u64 balloon_core_size(struct balloon_core_dev *bdev)
{
	return READ_ONCE(bdev->size);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_size, BALLOON_CORE_NS);

/**
 * balloon_core_register() - bring a balloon to life
 * @bdev: the balloon, embedded in the transport's device structure.
 * @ops: the transport's methods; must outlive the registration.
 * @parent: the transport's device, for logs; may be %NULL.
 * @name: instance name, unique among registered balloons (debugfs).
 *
 * Initialises @bdev and schedules the first cycle, which runs @start.
 * The transport must be ready to take calls before it registers.
 *
 * Context: Process context; may sleep.
 * Return: 0, -EINVAL for an ops table missing a required method, -ENOMEM,
 * or the error from registering the OOM notifier.
 */
int balloon_core_register(struct balloon_core_dev *bdev,
			  const struct balloon_core_ops *ops,
			  struct device *parent, const char *name)
{
	struct balloon_core_limits l;
	int ret;

	if (!ops || !ops->start || !ops->get_target || !ops->inflate || !name)
		return -EINVAL;

	memset(bdev, 0, sizeof(*bdev));
	init_rwsem(&bdev->ops_lock);
	mutex_init(&bdev->lock);
	spin_lock_init(&bdev->kick_lock);
	INIT_DELAYED_WORK(&bdev->work, balloon_core_work);
	balloon_core_pages_init(bdev);
	balloon_core_limits_get(&l);
	balloon_core_rate_init(&bdev->rate, &l);
	bdev->parent = parent;
	strscpy(bdev->name, name, sizeof(bdev->name));
	bdev->ops = ops;

	/* Allocated here, outside every lock, for the largest batch. */
	bdev->batch.pages = kvmalloc_array(BALLOON_CORE_MAX_BATCH,
					   sizeof(*bdev->batch.pages),
					   GFP_KERNEL);
	bdev->batch.status = kvmalloc_array(BALLOON_CORE_MAX_BATCH,
					    sizeof(*bdev->batch.status),
					    GFP_KERNEL);
	if (!bdev->batch.pages || !bdev->batch.status) {
		ret = -ENOMEM;
		goto err_batch;
	}

	bdev->oom_nb.notifier_call = balloon_core_oom_notify;
	ret = register_oom_notifier(&bdev->oom_nb);
	if (ret)
		goto err_batch;

	balloon_core_debugfs_add(bdev);
	set_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags);
	balloon_core_kick(bdev);
	dev_info(parent, "balloon %s registered (transport %s)\n",
		 bdev->name, ops->name);
	return 0;

err_batch:
	kvfree(bdev->batch.pages);
	kvfree(bdev->batch.status);
	bdev->batch.pages = NULL;
	bdev->batch.status = NULL;
	bdev->ops = NULL;	/* unregister will see nothing to undo */
	return ret;
}
EXPORT_SYMBOL_NS_GPL(balloon_core_register, BALLOON_CORE_NS);

/**
 * balloon_core_unregister() - stop a balloon and give every page back
 * @bdev: the balloon.
 *
 * Stops the work loop, returns every ballooned page to the guest (telling
 * the host through @deflate while it is there, unless @detach says the
 * host let go of them all; a page the host will not release after a second
 * of retries is freed all the same, since the guest owns it), and
 * detaches the transport.  Once this returns no transport method runs or
 * can start.
 *
 * Does nothing for a balloon that is not registered (never, or not any
 * more), so that a transport's teardown may call it unconditionally.
 *
 * Context: Process context; may sleep.  Must not be called from a
 * transport method.
 */
void balloon_core_unregister(struct balloon_core_dev *bdev)
{
	unsigned long warn_at = jiffies +
				msecs_to_jiffies(BALLOON_CORE_ISOLATED_WAIT_MS);
	struct balloon_core_limits l;
	unsigned int tries = 0;

	/* Never registered, or unregistered already: nothing to do. */
	if (!bdev->ops)
		return;

	/* Waits for a running notifier: none can start after this. */
	unregister_oom_notifier(&bdev->oom_nb);
	spin_lock_irq(&bdev->kick_lock);
	clear_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags);
	spin_unlock_irq(&bdev->kick_lock);
	cancel_delayed_work_sync(&bdev->work);

	mutex_lock(&bdev->lock);
	balloon_core_limits_get(&l);
	/* A host that lets go of everything at once needs no page by page. */
	if (test_bit(BALLOON_CORE_F_STARTED, &bdev->flags) &&
	    balloon_core_call_detach(bdev) == -BALLOON_CORE_ERESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	while (bdev->size && test_bit(BALLOON_CORE_F_STARTED, &bdev->flags) &&
	       !test_bit(BALLOON_CORE_F_RESET, &bdev->flags)) {
		u64 before = bdev->size;

		balloon_core_deflate(bdev, &l, bdev->size, false);
		if (bdev->size != before) {
			tries = 0;
			continue;
		}
		if (balloon_core_isolated(bdev)) {
			balloon_core_wait_isolated(bdev, &warn_at);
			continue;
		}
		if (++tries > BALLOON_CORE_UNLOAD_TRIES)
			break;	/* the host will not release them */
		msleep(BALLOON_CORE_UNLOAD_WAIT_MS);
	}
	if (bdev->size && !test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
		dev_warn(bdev->parent,
			 "%s: host did not release %llu KiB; freeing them anyway\n",
			 bdev->name, bdev->size * 4);
	balloon_core_release_refused(bdev);
	balloon_core_drop_all(bdev);
	balloon_core_call_size_changed(bdev);
	clear_bit(BALLOON_CORE_F_STARTED, &bdev->flags);

	down_write(&bdev->ops_lock);
	bdev->ops = NULL;
	up_write(&bdev->ops_lock);
	mutex_unlock(&bdev->lock);

	balloon_core_debugfs_remove(bdev);
	kvfree(bdev->batch.pages);
	kvfree(bdev->batch.status);
	bdev->batch.pages = NULL;
	bdev->batch.status = NULL;
}
EXPORT_SYMBOL_NS_GPL(balloon_core_unregister, BALLOON_CORE_NS);

static int __init balloon_core_init(void)
{
	balloon_core_params_settle();
	return balloon_core_debugfs_init();
}
module_init(balloon_core_init);

static void __exit balloon_core_exit(void)
{
	balloon_core_debugfs_exit();
}
module_exit(balloon_core_exit);

MODULE_DESCRIPTION("Hypervisor-neutral memory balloon core");
MODULE_AUTHOR("The balloon driver authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(BALLOON_VERSION);
