/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the MM does to a ballooned page during balloon compaction, for the
 * KUnit suites: take a reference and isolate it, call the balloon's
 * migratepage callback with both pages locked, and put a page back after a
 * failed migration.  A page the balloon finalized (no longer PageOffline)
 * is no balloon page any more: the MM only drops its reference, as
 * putback_movable_pages() does.
 */
#ifndef _BALLOON_KUNIT_MM_FAKE_H
#define _BALLOON_KUNIT_MM_FAKE_H

#include <balloon/compat.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

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

#endif /* _BALLOON_KUNIT_MM_FAKE_H */
