// SPDX-License-Identifier: GPL-2.0
/*
 * The balloon's pages: where they are kept, how they enter and leave the
 * balloon, and how balloon compaction moves them.
 *
 * 4 KiB pages live in &balloon_core_dev.b_dev_info, the kernel's balloon
 * page list (mm/balloon_compaction.c, since 7.0 mm/balloon.c), where
 * compaction can isolate and migrate them.  Larger pages, and 4 KiB pages
 * the host would not release, live in the core's own arrays, one xarray
 * per order indexed by PFN: they do not use the page's lru or mapping,
 * which upstream means to take from balloon pages.  Lists through lru
 * carry only pages that are nobody's but the core's (just allocated, or
 * just taken out of the balloon), as the kernel's own balloon API does.
 * Every ballooned page is PageOffline, so that hibernation and kdump do not
 * read it (which would make the host back it again).
 *
 * This is the only file of the core that uses the kernel's balloon page
 * API (balloon_page_*(), balloon_dev_info's lock and counters, the
 * BALLOON_* vm events): the rest of the core moves pages through the
 * functions here, and decides nothing about them here.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/gfp.h>
#include <linux/jiffies.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched.h>
#include <linux/vmstat.h>
#include <linux/xarray.h>

#include "internal.h"
#include "ops.h"

/*
 * Where the two APIs differ.  Up to 6.x the balloon list has a lock of its
 * own (pages_lock), the driver puts pages on it and counts the managed
 * pages, and its migrate callback inserts the new page itself.  Since 7.0
 * (linux/balloon.h) one lock inside mm/ guards every balloon list, the
 * kernel counts (the list's adjust_managed_page_count flag), and the
 * migrate callback only talks to the host.
 */
#ifdef BALLOON_COMPAT_BALLOON_H
#define BALLOON_CORE_MIGRATION	IS_ENABLED(CONFIG_BALLOON_MIGRATION)
#else
#define BALLOON_CORE_MIGRATION	IS_ENABLED(CONFIG_BALLOON_COMPACTION)
#endif

/**
 * balloon_core_page_gfp() - the allocation mask for a 4 KiB balloon page
 *
 * Movable where balloon migration is built in, so that the page can join
 * the kernel's balloon list and be migrated; the inflate path adds its own
 * reclaim and reserve flags.
 *
 * Context: Any context.
 * Return: the mask.
 */
gfp_t balloon_core_page_gfp(void)
{
	return BALLOON_CORE_MIGRATION ? GFP_HIGHUSER_MOVABLE : GFP_HIGHUSER;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_page_gfp);

/*
 * The core's own arrays.  Every page of order 1 and above has its slot
 * from the moment it is allocated for the balloon until it is freed or
 * split: reserved (empty) while the cycle offers the page to the host;
 * while the page is in the balloon, holding it and marked ready (taken
 * first) or kept (the host would not release it: taken last); and while
 * a deflate or a migration has it out, holding it unmarked.  So no entry
 * of those orders needs memory under the work lock.  A 4 KiB page the
 * host keeps gets its slot when it is kept, without reclaim, and loses it
 * when it is taken again.  Within a mark, pages go in PFN order.  The
 * marks are in internal.h.
 */
static unsigned long balloon_core_own_index(struct page *page,
					    unsigned int order)
{
	return page_to_pfn(page) >> order;
}

/**
 * balloon_core_reserve() - make room for a page in the core's own array
 * @bdev: the balloon.
 * @page: the page.
 * @order: its order.
 *
 * The only allocation of the own arrays, without reclaim, so that KUnit
 * suites can replace it with a static stub to make it fail.  A page above
 * 4 KiB gets its slot here while the inflation allocates, without the
 * work lock, so that it can join the balloon under the lock without
 * allocating; the slot goes when the page is freed
 * (balloon_core_free_page()) or split (balloon_core_unreserve()).  A
 * 4 KiB page the host keeps gets its slot here, under the work lock.  A
 * slot that holds the page already stays as it is.
 *
 * Context: Process context; may allocate with %GFP_NOWAIT.
 * Return: 0, or -%ENOMEM: the page cannot join the array.
 */
int balloon_core_reserve(struct balloon_core_dev *bdev, struct page *page,
			 unsigned int order)
{
	KUNIT_STATIC_STUB_REDIRECT(balloon_core_reserve, bdev, page, order);
	return xa_reserve(&bdev->own[order],
			  balloon_core_own_index(page, order),
			  GFP_NOWAIT | __GFP_NOWARN);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_reserve);

/**
 * balloon_core_unreserve() - a page above 4 KiB will not join the balloon
 * @bdev: the balloon.
 * @page: the page, reserved by balloon_core_reserve(), about to be split.
 * @order: its order.
 *
 * Context: Process context.
 */
void balloon_core_unreserve(struct balloon_core_dev *bdev, struct page *page,
			    unsigned int order)
{
	xa_erase(&bdev->own[order], balloon_core_own_index(page, order));
}

/**
 * balloon_core_free_page() - give a page back to the guest and count it
 * @bdev: the balloon.
 * @page: the page, no longer in the balloon.
 * @order: its order.
 * @stat: the counter for it.
 *
 * A page above 4 KiB gives up its slot in the core's own array.
 *
 * Context: Process context.
 */
void balloon_core_free_page(struct balloon_core_dev *bdev,
			    struct page *page, unsigned int order,
			    enum balloon_core_stat stat)
{
	if (order)
		balloon_core_unreserve(bdev, page, order);
	__free_pages(page, order);
	balloon_core_stat_inc(bdev, stat);
}

/*
 * Who counts a ballooned page.  The guest's managed page count (MemTotal)
 * leaves out ballooned pages where the transport chose so
 * (%BALLOON_CORE_CAP_ADJUST_MANAGED), and NR_BALLOON_PAGES ("Balloon:" in
 * /proc/meminfo, since 6.15) counts them all.  A page in one of the core's
 * own arrays (pages above 4 KiB, and 4 KiB pages the host would not
 * release) is counted here, when it joins or leaves the array.  For a 4 KiB
 * page on the kernel's balloon list the kernel counts NR_BALLOON_PAGES,
 * and since 7.0 the managed pages too; before, the core counts those.
 */
static void balloon_core_count(struct balloon_core_dev *bdev,
			       struct page *page, unsigned int order, bool in)
{
	long n = 1L << order;

	if (bdev->caps.flags & BALLOON_CORE_CAP_ADJUST_MANAGED)
		adjust_managed_page_count(page, in ? -n : n);
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
	mod_node_page_state(page_pgdat(page), NR_BALLOON_PAGES, in ? n : -n);
#endif
}

/* The same for a 4 KiB page joining or leaving the kernel's list. */
static void balloon_core_count_listed(struct balloon_core_dev *bdev,
				      struct page *page, bool in)
{
#ifndef BALLOON_COMPAT_BALLOON_H
	if (bdev->caps.flags & BALLOON_CORE_CAP_ADJUST_MANAGED)
		adjust_managed_page_count(page, in ? -1 : 1);
#endif
}

/**
 * balloon_core_pages_start() - the host's capabilities are known
 * @bdev: the balloon, empty, after a successful @start.
 *
 * Since 7.0 the kernel keeps the managed page count of the pages on its
 * list, as the transport chose; the balloon is empty, so the choice can
 * change here.
 *
 * Context: Work lock held.
 */
void balloon_core_pages_start(struct balloon_core_dev *bdev)
{
#ifdef BALLOON_COMPAT_BALLOON_H
	WRITE_ONCE(bdev->b_dev_info.adjust_managed_page_count,
		   !!(bdev->caps.flags & BALLOON_CORE_CAP_ADJUST_MANAGED));
#endif
}

/*
 * Ballooned pages are PageOffline, so that hibernation and kdump do not
 * read them (which would make the host back them again); for 4 KiB pages
 * on the kernel's list, the kernel sees to it.  Since 7.0 a page the
 * kernel's list let go of stays PageOffline until it is freed, and
 * setting the type again is allowed.
 */
static void balloon_core_mark_offline(struct page *page, unsigned int order,
				      bool offline)
{
	unsigned int i;

	for (i = 0; i < (1U << order); i++) {
		if (offline)
			__SetPageOffline(page + i);
		else if (PageOffline(page + i))
			__ClearPageOffline(page + i);
	}
}

/*
 * A page joins the core's own array for its order, ready or kept.  Its slot
 * is there already, unless it is a 4 KiB page the host keeps: one that
 * finds no room without reclaim returns false and stays out, for the
 * caller to put elsewhere.  A larger page always has its slot; should the
 * store fail all the same (a bug), the page is left alone, since the host
 * holds it, and the balloon is one page short of its size for good.
 */
static bool balloon_core_own_add(struct balloon_core_dev *bdev,
				 struct page *page, unsigned int order,
				 bool kept)
{
	struct xarray *xa = &bdev->own[order];
	unsigned long index = balloon_core_own_index(page, order);

	if (!order && balloon_core_reserve(bdev, page, order))
		return false;
	/* Into a slot that exists: nothing to allocate, nothing to fail. */
	if (WARN_ON_ONCE(xa_is_err(xa_store(xa, index, page,
					    GFP_NOWAIT | __GFP_NOWARN))))
		return false;
	xa_set_mark(xa, index, kept ? BALLOON_CORE_OWN_KEPT :
				      BALLOON_CORE_OWN_READY);
	balloon_core_mark_offline(page, order, true);
	balloon_core_count(bdev, page, order, true);
	bdev->nr_pages[order]++;
	return true;
}

/*
 * Take up to @n pages marked @mark out of the core's own array for @order.
 * Pages above 4 KiB keep their slot, unmarked; 4 KiB pages give it up.
 */
static unsigned int balloon_core_own_take(struct balloon_core_dev *bdev,
					  unsigned int order, xa_mark_t mark,
					  struct list_head *list,
					  unsigned int n)
{
	struct xarray *xa = &bdev->own[order];
	unsigned int got = 0;
	unsigned long index;
	struct page *page;

	xa_for_each_marked(xa, index, page, mark) {
		if (got == n)
			break;
		if (order)
			xa_clear_mark(xa, index, mark);
		else
			xa_erase(xa, index);
		balloon_core_count(bdev, page, order, false);
		balloon_core_mark_offline(page, order, false);
		list_add_tail(&page->lru, list);
		got++;
	}
	bdev->nr_pages[order] -= got;
	return got;
}

/**
 * balloon_core_enqueue() - a page above 4 KiB joins the balloon
 * @bdev: the balloon.
 * @page: the page, which the host took.
 * @order: its order, above 0.
 *
 * The page has its slot since balloon_core_reserve().
 *
 * Context: Work lock held.
 */
void balloon_core_enqueue(struct balloon_core_dev *bdev,
			  struct page *page, unsigned int order)
{
	balloon_core_own_add(bdev, page, order, false);
}

/**
 * balloon_core_dequeue_4k() - take 4 KiB pages off the kernel's balloon list
 * @bdev: the balloon.
 * @list: where to put them.
 * @n: how many at most; callers ask for %BALLOON_CORE_LOCK_CHUNK at most.
 *
 * One hold of the balloon list's lock, with interrupts off.  The only
 * place the core takes pages off that list, so that KUnit suites can see
 * how many it takes under one hold.
 *
 * Context: Work lock held.
 * Return: how many were taken.
 */
VISIBLE_IF_KUNIT size_t balloon_core_dequeue_4k(struct balloon_core_dev *bdev,
						struct list_head *list, size_t n)
{
	KUNIT_STATIC_STUB_REDIRECT(balloon_core_dequeue_4k, bdev, list, n);
	return balloon_page_list_dequeue(&bdev->b_dev_info, list, n);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_dequeue_4k);

/*
 * Put 4 KiB pages on the kernel's balloon list, %BALLOON_CORE_LOCK_CHUNK
 * under each hold of its lock, counting them (balloon_core_count_listed()).
 */
static void balloon_core_list_enqueue(struct balloon_core_dev *bdev,
				      struct list_head *list)
{
	while (!list_empty(list)) {
		struct page *page, *next;
		unsigned int n = 0;
		LIST_HEAD(chunk);

		list_for_each_entry_safe(page, next, list, lru) {
			balloon_core_count_listed(bdev, page, true);
			list_move_tail(&page->lru, &chunk);
			if (++n == BALLOON_CORE_LOCK_CHUNK)
				break;
		}
		bdev->nr_pages[0] += balloon_page_list_enqueue(&bdev->b_dev_info,
							       &chunk);
		cond_resched();
	}
}

/**
 * balloon_core_enqueue_list() - 4 KiB pages join the balloon together
 * @bdev: the balloon.
 * @list: the pages, which the host took; emptied.
 *
 * Context: Work lock held.
 */
void balloon_core_enqueue_list(struct balloon_core_dev *bdev,
			       struct list_head *list)
{
	balloon_core_list_enqueue(bdev, list);
}

/*
 * Take up to @n 4 KiB pages off the kernel's balloon list, in chunks, with
 * interrupts on between them, counting them (balloon_core_count_listed()).
 */
static unsigned int balloon_core_list_dequeue(struct balloon_core_dev *bdev,
					      struct list_head *list,
					      unsigned int n)
{
	unsigned int got = 0;

	while (got < n) {
		unsigned int want = min_t(unsigned int, n - got,
					  BALLOON_CORE_LOCK_CHUNK);
		LIST_HEAD(chunk);
		struct page *page;
		size_t took = balloon_core_dequeue_4k(bdev, &chunk, want);

		list_for_each_entry(page, &chunk, lru)
			balloon_core_count_listed(bdev, page, false);
		list_splice_tail(&chunk, list);
		bdev->nr_pages[0] -= took;
		got += took;
		if (took < want)
			break;
	}
	return got;
}

/**
 * balloon_core_dequeue() - take pages of one order out of the balloon
 * @bdev: the balloon.
 * @order: their order.
 * @list: where to put them.
 * @n: how many at most.
 *
 * Pages the host would not release come last: 4 KiB pages after those on
 * the kernel's list, larger ones after the ready ones.  Pages isolated for
 * migration are not on the list and are not taken.  Pages taken no longer
 * count as ballooned.
 *
 * Context: Work lock held.
 * Return: how many were taken.
 */
unsigned int balloon_core_dequeue(struct balloon_core_dev *bdev,
				  unsigned int order,
				  struct list_head *list, unsigned int n)
{
	unsigned int got;

	if (order)
		got = balloon_core_own_take(bdev, order, BALLOON_CORE_OWN_READY,
					    list, n);
	else
		got = balloon_core_list_dequeue(bdev, list, n);
	if (got < n)
		got += balloon_core_own_take(bdev, order, BALLOON_CORE_OWN_KEPT,
					     list, n - got);
	return got;
}

#ifdef BALLOON_COMPAT_BALLOON_H
/* Since 7.0 the kernel's enqueue puts a page back as it was. */
static void balloon_core_reinsert_list(struct balloon_core_dev *bdev,
				       struct list_head *list)
{
	balloon_core_list_enqueue(bdev, list);
}
#else
/*
 * Put one 4 KiB page, taken off the balloon by balloon_core_dequeue(), back
 * on the kernel's balloon list.  Compaction may still hold the page's lock
 * for a moment (it saw the page movable just before we took it): wait for
 * it, where the kernel's enqueue helpers would BUG().
 */
static void balloon_core_reinsert_4k(struct balloon_core_dev *bdev,
				     struct page *page)
{
	struct balloon_dev_info *info = &bdev->b_dev_info;
	unsigned long flags;

	list_del(&page->lru);
	lock_page(page);
	spin_lock_irqsave(&info->pages_lock, flags);
	balloon_page_insert(info, page);
	spin_unlock_irqrestore(&info->pages_lock, flags);
	unlock_page(page);
	balloon_core_count_listed(bdev, page, true);
	count_vm_event(BALLOON_INFLATE);
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
	/* The kernel's enqueue counts it; its insert, used here, does not. */
	inc_node_page_state(page, NR_BALLOON_PAGES);
#endif
	bdev->nr_pages[0]++;
}

static void balloon_core_reinsert_list(struct balloon_core_dev *bdev,
				       struct list_head *list)
{
	struct page *page, *next;
	unsigned int i = 0;

	list_for_each_entry_safe(page, next, list, lru) {
		balloon_core_reinsert_4k(bdev, page);
		if (++i % BALLOON_CORE_LOCK_CHUNK == 0)
			cond_resched();
	}
}
#endif

/**
 * balloon_core_requeue() - put pages taken by balloon_core_dequeue() back
 * @bdev: the balloon.
 * @order: their order.
 * @list: the pages; emptied.
 *
 * After a host command failed as a whole: the pages go back as ready
 * pages (4 KiB pages the host would not release before join the kernel's
 * list now).
 *
 * Context: Process context, work lock held; may sleep.
 */
void balloon_core_requeue(struct balloon_core_dev *bdev,
			  unsigned int order, struct list_head *list)
{
	struct page *page, *next;

	if (!order) {
		balloon_core_reinsert_list(bdev, list);
		return;
	}
	list_for_each_entry_safe(page, next, list, lru) {
		list_del(&page->lru);
		balloon_core_own_add(bdev, page, order, false);
	}
}

/**
 * balloon_core_requeue_kept() - put back pages the host would not release
 * @bdev: the balloon.
 * @order: their order.
 * @list: the pages, taken by balloon_core_dequeue(); emptied.
 *
 * They go in the core's own array for their order, marked kept, so that
 * the next deflate tries every other page before them.  4 KiB pages there
 * are not on the kernel's list: compaction does not move them.  A 4 KiB
 * page for which the array has no room without reclaim goes back on the
 * kernel's list instead, still in the balloon, where the next deflate
 * offers it first; it gets another chance at a slot if the host keeps it
 * again.
 *
 * Context: Process context, work lock held; may sleep.
 */
void balloon_core_requeue_kept(struct balloon_core_dev *bdev,
			       unsigned int order, struct list_head *list)
{
	struct page *page, *next;
	LIST_HEAD(back);

	list_for_each_entry_safe(page, next, list, lru) {
		list_del(&page->lru);
		if (!balloon_core_own_add(bdev, page, order, true) && !order)
			list_add_tail(&page->lru, &back);
	}
	balloon_core_reinsert_list(bdev, &back);
}

/**
 * balloon_core_free_list() - give pages that left the balloon to the guest
 * @bdev: the balloon.
 * @list: the pages, taken by balloon_core_dequeue(); emptied.
 * @order: their order.
 *
 * Context: Work lock held.
 */
void balloon_core_free_list(struct balloon_core_dev *bdev,
			    struct list_head *list, unsigned int order)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, list, lru) {
		list_del(&page->lru);
		balloon_core_free_page(bdev, page, order,
				       order ? BALLOON_CORE_STAT_HUGE_FREE :
					       BALLOON_CORE_STAT_FREE);
	}
}

/**
 * balloon_core_isolated() - 4 KiB pages isolated for migration right now
 * @bdev: the balloon.
 *
 * Up to 6.x read under the balloon's page lock: the migrate callback and
 * the MM's putback drop the count under it, and release it as their last
 * touch of the balloon, so a zero read here means no migration still uses
 * @bdev.  Since 7.0 the kernel drops the count under its own lock, after
 * which it touches only the page.
 *
 * Context: Process context.
 * Return: the number of pages.
 */
unsigned long balloon_core_isolated(struct balloon_core_dev *bdev)
{
	struct balloon_dev_info *info = &bdev->b_dev_info;
#ifdef BALLOON_COMPAT_BALLOON_H
	return READ_ONCE(info->isolated_pages);
#else
	unsigned long flags, n;

	spin_lock_irqsave(&info->pages_lock, flags);
	n = info->isolated_pages;
	spin_unlock_irqrestore(&info->pages_lock, flags);
	return n;
#endif
}

/**
 * balloon_core_wait_isolated() - wait a moment for isolated pages
 * @bdev: the balloon.
 * @warn_at: when to say that we still wait (jiffies); moved on each time.
 *
 * A 4 KiB page isolated for migration is off the list for a moment: the
 * migration finds the balloon busy (we hold the work lock) and puts it
 * back.  Wait for that; giving up would leave a page pointing at a
 * balloon that is about to go away.
 *
 * Context: Process context, work lock held; sleeps.
 */
void balloon_core_wait_isolated(struct balloon_core_dev *bdev,
				unsigned long *warn_at)
{
	if (time_after(jiffies, *warn_at)) {
		dev_warn(bdev->parent,
			 "%s: still waiting for %lu pages isolated for migration\n",
			 bdev->name, balloon_core_isolated(bdev));
		*warn_at = jiffies + msecs_to_jiffies(BALLOON_CORE_ISOLATED_WAIT_MS);
	}
	usleep_range(1000, 2000);
}

/**
 * balloon_core_drop_all() - free every ballooned page, telling no one
 * @bdev: the balloon.
 *
 * After a reset the host has forgotten the pages already.  Waits for
 * pages isolated for migration to come back, and returns only once no
 * page is isolated: a migration that gave its page up has left the counts
 * already but still drops the isolated count.  The balloon may hold
 * millions of pages: they go %BALLOON_CORE_LOCK_CHUNK at a time, with
 * interrupts on and a reschedule point between chunks.
 *
 * Context: Process context, work lock held; may sleep.
 */
void balloon_core_drop_all(struct balloon_core_dev *bdev)
{
	unsigned long warn_at = jiffies +
				msecs_to_jiffies(BALLOON_CORE_ISOLATED_WAIT_MS);
	unsigned int order;

	for (order = 0; order <= BALLOON_CORE_MAX_ORDER; order++) {
		while (bdev->nr_pages[order]) {
			LIST_HEAD(taken);

			if (balloon_core_dequeue(bdev, order, &taken,
						 BALLOON_CORE_LOCK_CHUNK))
				balloon_core_free_list(bdev, &taken, order);
			else
				balloon_core_wait_isolated(bdev, &warn_at);
			cond_resched();
		}
	}
	while (balloon_core_isolated(bdev))
		balloon_core_wait_isolated(bdev, &warn_at);
	bdev->size = 0;
}

/**
 * balloon_core_release_refused() - free the pages the host refused
 * @bdev: the balloon.
 *
 * Refused pages are all 4 KiB: a refused huge page is split, not kept.
 *
 * Context: Work lock held.
 */
void balloon_core_release_refused(struct balloon_core_dev *bdev)
{
	struct page *page, *next;

	list_for_each_entry_safe(page, next, &bdev->refused, lru) {
		list_del(&page->lru);
		balloon_core_free_page(bdev, page, 0,
				       BALLOON_CORE_STAT_REFUSED_FREE);
	}
}

#if BALLOON_CORE_MIGRATION
/* What the host did with a page balloon compaction moves. */
enum balloon_core_moved {
	BALLOON_CORE_MOVE_KEPT,		/* nothing changed: try again later */
	BALLOON_CORE_MOVE_DONE,		/* the host gave @page back, took @newpage */
	BALLOON_CORE_MOVE_LOST,		/* it gave @page back, refused @newpage */
};

/*
 * Tell the host.  The old page leaves first: a host at its target may
 * refuse a page it does not need (VMware does), and one that will not
 * give the old page back leaves nothing to undo: the old page simply
 * stays.
 */
static enum balloon_core_moved
balloon_core_move_host(struct balloon_core_dev *bdev, struct page *newpage,
		       struct page *page, int *ret)
{
	struct balloon_core_batch *batch = &bdev->batch;
	bool taken;

	if (balloon_core_needs_start(bdev))
		return BALLOON_CORE_MOVE_KEPT;

	balloon_core_batch_init(bdev, 0);
	batch->pages[0] = page;
	batch->count = 1;
	*ret = balloon_core_call_deflate(bdev, batch);
	if (*ret || batch->status[0]) {
		batch->count = 0;
		if (*ret == -BALLOON_CORE_ERESET)
			set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
		if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
			balloon_core_kick(bdev);
		return BALLOON_CORE_MOVE_KEPT;
	}

	/* "No more this cycle" (-EAGAIN) still took a page whose status is 0. */
	batch->pages[0] = newpage;
	*ret = balloon_core_call_inflate(bdev, batch);
	taken = (!*ret || *ret == -EAGAIN) && !batch->status[0];
	batch->count = 0;
	return taken ? BALLOON_CORE_MOVE_DONE : BALLOON_CORE_MOVE_LOST;
}

/* The host has neither page now: the balloon is one page smaller. */
static void balloon_core_move_lost(struct balloon_core_dev *bdev, int ret)
{
	bdev->nr_pages[0]--;
	bdev->size -= BALLOON_CORE_UNITS_PER_PAGE;
	if (ret == -BALLOON_CORE_ERESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	else
		balloon_core_call_size_changed(bdev);
	/* The next cycle inflates back to the target (or resets). */
	balloon_core_kick(bdev);
}

#ifdef BALLOON_COMPAT_BALLOON_H
/*
 * Balloon migration moves a ballooned 4 KiB page: the host gives the old
 * page back, then takes the new one.  Since 7.0 the kernel does the rest:
 * on 0 it puts @newpage on the list and lets @page go, on -ENOENT (the
 * host has neither) it lets @page go alone, and on any other error the
 * migration fails and @page goes back on the list.  A busy balloon (a
 * work cycle talking to the host) makes the migration retry later rather
 * than wait.  The kernel drops the isolated count once this returns, and
 * then touches only the page: unregister, which waits for that count,
 * may then let the transport free @bdev.
 */
static int balloon_core_migratepage(struct balloon_dev_info *info,
				    struct page *newpage, struct page *page,
				    enum migrate_mode mode)
{
	struct balloon_core_dev *bdev =
		container_of(info, struct balloon_core_dev, b_dev_info);
	enum balloon_core_moved moved;
	int ret = 0, rc;

	if (!mutex_trylock(&bdev->lock)) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_MIGRATE_FAIL);
		return -EAGAIN;
	}
	moved = balloon_core_move_host(bdev, newpage, page, &ret);
	if (moved == BALLOON_CORE_MOVE_DONE) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_MIGRATE);
		rc = 0;
	} else if (moved == BALLOON_CORE_MOVE_LOST) {
		balloon_core_move_lost(bdev, ret);
		rc = -ENOENT;
	} else {
		rc = -EAGAIN;
	}
	if (rc)
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_MIGRATE_FAIL);
	mutex_unlock(&bdev->lock);
	return rc;
}
#else
/*
 * Balloon compaction moves a ballooned 4 KiB page: the host gives the old
 * page back, then takes the new one.  If it will not give the old one
 * back, nothing changed; if it will not take the new one, the balloon
 * shrinks by that page and the work loop makes it up.  No path leaves a
 * page the host holds with the MM, or one the MM owns in the balloon.  A
 * busy balloon (a work cycle talking to the host) makes the migration
 * retry later rather than wait.
 *
 * Unregister returns only once no page is isolated (read under the
 * balloon's page lock); after this function gives its page up
 * (isolated_pages drops) the transport may free @bdev at once.  So that
 * is the very last thing it does, after the work lock is released, and the
 * release of the page lock around it is its last touch of @bdev.
 */
static int balloon_core_migratepage(struct balloon_dev_info *info,
				    struct page *newpage, struct page *page,
				    enum migrate_mode mode)
{
	struct balloon_core_dev *bdev =
		container_of(info, struct balloon_core_dev, b_dev_info);
	enum balloon_core_moved moved;
	int ret = 0, rc = -EAGAIN;
	unsigned long flags;

	if (!mutex_trylock(&bdev->lock)) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_MIGRATE_FAIL);
		return rc;
	}
	moved = balloon_core_move_host(bdev, newpage, page, &ret);
	if (moved == BALLOON_CORE_MOVE_KEPT)
		goto out_unlock;

	/*
	 * Either way the old page is no balloon page any more: the MM frees
	 * it when it drops its own reference, without putting it back.
	 */
	if (moved == BALLOON_CORE_MOVE_DONE) {
		spin_lock_irqsave(&info->pages_lock, flags);
		get_page(newpage);	/* the balloon's reference */
		balloon_page_insert(info, newpage);
		spin_unlock_irqrestore(&info->pages_lock, flags);
	}
	balloon_page_finalize(page);
	put_page(page);			/* the balloon's reference */

	if (moved == BALLOON_CORE_MOVE_DONE) {
		if ((bdev->caps.flags & BALLOON_CORE_CAP_ADJUST_MANAGED) &&
		    page_zone(page) != page_zone(newpage)) {
			adjust_managed_page_count(page, 1);
			adjust_managed_page_count(newpage, -1);
		}
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_MIGRATE);
		count_vm_event(BALLOON_MIGRATE);
		rc = MIGRATEPAGE_SUCCESS;
	} else {
		balloon_core_count_listed(bdev, page, false);
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
		dec_node_page_state(page, NR_BALLOON_PAGES);
#endif
		balloon_core_move_lost(bdev, ret);
		rc = -EBUSY;
	}

out_unlock:
	if (rc != MIGRATEPAGE_SUCCESS)
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_MIGRATE_FAIL);
	mutex_unlock(&bdev->lock);
	if (moved != BALLOON_CORE_MOVE_KEPT) {
		/* The last touch of @bdev: see above. */
		spin_lock_irqsave(&info->pages_lock, flags);
		info->isolated_pages--;
		spin_unlock_irqrestore(&info->pages_lock, flags);
	}
	return rc;
}
#endif
#endif

/**
 * balloon_core_pages_init() - set up an empty balloon's page list and arrays
 * @bdev: the balloon, being registered.
 *
 * Context: Process context, before the balloon is live.
 */
void balloon_core_pages_init(struct balloon_core_dev *bdev)
{
	unsigned int order;

	for (order = 0; order <= BALLOON_CORE_MAX_ORDER; order++)
		xa_init(&bdev->own[order]);
	balloon_devinfo_init(&bdev->b_dev_info);
#if BALLOON_CORE_MIGRATION
	bdev->b_dev_info.migratepage = balloon_core_migratepage;
#endif
	INIT_LIST_HEAD(&bdev->refused);
	INIT_LIST_HEAD(&bdev->prealloc);
}

/**
 * balloon_core_pages_exit() - tear down an empty balloon's page arrays
 * @bdev: the balloon, being unregistered, after balloon_core_drop_all().
 *
 * Context: Process context, no work cycle running.
 */
void balloon_core_pages_exit(struct balloon_core_dev *bdev)
{
	unsigned int order;

	for (order = 0; order <= BALLOON_CORE_MAX_ORDER; order++) {
		WARN_ON_ONCE(!xa_empty(&bdev->own[order]));
		xa_destroy(&bdev->own[order]);
	}
}
