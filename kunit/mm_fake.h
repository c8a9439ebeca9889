/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the MM does to a ballooned page during balloon migration, for the
 * KUnit suites.
 *
 * Up to 6.x the balloon's migrate callback does the list work itself, and
 * this file plays the MM: take a reference and isolate the page, call the
 * callback with both pages locked, and put a page back after a failed
 * migration.  A page the balloon finalized (no longer PageOffline) is no
 * balloon page any more: the MM only drops its reference, as
 * putback_movable_pages() does.
 *
 * Since 7.0 the kernel's own code does all of that (mm/balloon.c's
 * movable_ops around the callback), and the suites run it: the real
 * isolate_movable_ops_page(), migrate_pages() and putback_movable_pages()
 * (the suites are built in, where these are reachable).
 */
#ifndef _BALLOON_KUNIT_MM_FAKE_H
#define _BALLOON_KUNIT_MM_FAKE_H

#include <balloon/compat.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

/* Whether balloon pages are movable in this kernel. */
#define MM_FAKE_MIGRATION \
	(IS_ENABLED(CONFIG_BALLOON_COMPACTION) || \
	 IS_ENABLED(CONFIG_BALLOON_MIGRATION))

#ifdef BALLOON_COMPAT_BALLOON_H
/* Isolate the first page of the balloon's list, as compaction would. */
static inline struct page *mm_fake_isolate(struct balloon_dev_info *info)
{
	struct page *page = list_first_entry(&info->pages, struct page, lru);

	return isolate_movable_ops_page(page, 0) ? page : NULL;
}

static inline void mm_fake_putback(struct balloon_dev_info *info,
				   struct page *page)
{
	LIST_HEAD(pages);

	list_add(&page->lru, &pages);
	putback_movable_pages(&pages);
}

static inline struct folio *mm_fake_dst(struct folio *src,
					unsigned long private)
{
	return page_folio((struct page *)private);
}

/* A failed migration leaves the new page to the test. */
static inline void mm_fake_dst_unused(struct folio *dst,
				      unsigned long private)
{
}

/*
 * Migrate an isolated @page to @newpage with migrate_pages().  Returns 0
 * when the MM is done with @page: moved (@newpage is the balloon's now) or
 * let go by the balloon with the host holding neither (the MM freed both).
 * Otherwise -EAGAIN: @page is still isolated and @newpage the test's; with
 * @undo both are put back and dropped, as compaction would.
 */
static inline int mm_fake_migrate(struct balloon_dev_info *info,
				  struct page *newpage, struct page *page,
				  bool undo)
{
	unsigned int moved = 0;
	LIST_HEAD(pages);

	list_add(&page->lru, &pages);
	if (!migrate_pages(&pages, mm_fake_dst, mm_fake_dst_unused,
			   (unsigned long)newpage, MIGRATE_SYNC, MR_COMPACTION,
			   &moved))
		return 0;
	list_del(&page->lru);
	if (undo) {
		mm_fake_putback(info, page);
		put_page(newpage);
	}
	return -EAGAIN;
}
#else
static inline struct page *mm_fake_isolate(struct balloon_dev_info *info)
{
	struct page *page;
	unsigned long flags;

	spin_lock_irqsave(&info->pages_lock, flags);
	page = list_first_entry(&info->pages, struct page, lru);
	get_page(page);
	list_del(&page->lru);
	info->isolated_pages++;
	spin_unlock_irqrestore(&info->pages_lock, flags);
	return page;
}

static inline void mm_fake_putback(struct balloon_dev_info *info,
				   struct page *page)
{
	unsigned long flags;

	if (PageOffline(page)) {
		spin_lock_irqsave(&info->pages_lock, flags);
		list_add(&page->lru, &info->pages);
		info->isolated_pages--;
		spin_unlock_irqrestore(&info->pages_lock, flags);
	}
	put_page(page);
}

/*
 * With @undo, a failed migration is finished as the MM would finish it
 * (the old page put back, the new one dropped), so that a failing test
 * does not leave a page isolated for unregister to wait on.
 */
static inline int mm_fake_migrate(struct balloon_dev_info *info,
				  struct page *newpage, struct page *page,
				  bool undo)
{
	int ret;

	lock_page(page);
	lock_page(newpage);
	ret = info->migratepage(info, newpage, page, MIGRATE_SYNC);
	unlock_page(newpage);
	unlock_page(page);
	if (ret != MIGRATEPAGE_SUCCESS && undo) {
		mm_fake_putback(info, page);
		put_page(newpage);
	}
	return ret;
}

#endif

#endif /* _BALLOON_KUNIT_MM_FAKE_H */
