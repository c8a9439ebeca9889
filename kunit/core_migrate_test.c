// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_core_migrate: balloon compaction (core/pages.c)
 * through the fake transport of core_fake.h, with the MM's part played by
 * mm_fake.h (up to 6.x) or by the kernel's own migration code (7.x).  The
 * host hears of the old page before the new one, a page stays isolated
 * until the migration is done, failed migrations change nothing or shrink
 * the balloon by one page, and unregister waits for an isolated page to
 * come back.
 */
#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "core_fake.h"
#include "mm_fake.h"

static struct page *fake_isolate(struct fake_host *host)
{
	return mm_fake_isolate(&host->bdev.b_dev_info);
}

static void fake_putback(struct fake_host *host, struct page *page)
{
	mm_fake_putback(&host->bdev.b_dev_info, page);
}

static int fake_migrate(struct fake_host *host, struct page *newpage,
			struct page *page, bool undo)
{
	return mm_fake_migrate(&host->bdev.b_dev_info, newpage, page, undo);
}

/* A registered balloon of 100 movable pages, for the migration cases. */
static void fake_movable_balloon(struct kunit *test, struct fake_host *host)
{
	if (!MM_FAKE_MIGRATION)
		kunit_skip(test, "needs balloon migration in the kernel");
	fake_register(test, host);
	host->target = UNITS(100);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(100));
}

static struct page *fake_new_page(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, page);
	return page;
}

/* The same on either side of 7.0. */
static void migrate_busy_balloon_retries_later(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;
	unsigned int calls;

	fake_movable_balloon(test, host);

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_NOT_NULL(test, page);
	calls = host->seq;
	mutex_lock(&host->bdev.lock);	/* the work loop is running */
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, false), -EAGAIN);
	mutex_unlock(&host->bdev.lock);
	KUNIT_EXPECT_EQ(test, host->seq, calls);	/* host not called */
	/* 7.x's migrate_pages() tries a few times: at least one failure. */
	KUNIT_EXPECT_GE(test, stat(host, BALLOON_CORE_STAT_MIGRATE_FAIL), 1);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 1);

	fake_putback(host, page);
	__free_page(newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void migrate_old_page_kept_changes_nothing(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	fake_movable_balloon(test, host);
	host->keep_every = 1;		/* the host keeps the old page */

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, true), -EAGAIN);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&host->held, page_to_pfn(page)));
	KUNIT_EXPECT_TRUE(test, PageOffline(page));
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	host->keep_every = 0;
	expect_consistent(test, host);
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

#ifdef BALLOON_COMPAT_BALLOON_H
/*
 * Since 7.0 the kernel's migrate_pages() runs the move: it retries a
 * migration that failed for now (-EAGAIN) a few times, and the old page
 * is freed by the MM once the balloon let go of it.
 */
static void migrate_tells_host_old_then_new(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;
	unsigned long pfn;
	unsigned int nlog;

	fake_movable_balloon(test, host);

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 1);
	pfn = page_to_pfn(page);
	nlog = host->nlog;
	KUNIT_ASSERT_EQ(test, fake_migrate(host, newpage, page, true), 0);

	/* The host gave back the old page before it took the new one. */
	KUNIT_ASSERT_EQ(test, host->nlog, nlog + 2);
	KUNIT_EXPECT_EQ(test, host->log[nlog].op, FAKE_DEFLATE);
	KUNIT_EXPECT_EQ(test, host->log[nlog + 1].op, FAKE_INFLATE);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&host->held, page_to_pfn(newpage)));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, pfn));
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE), 1);
	/* The new page is on the kernel's list, a balloon page. */
	KUNIT_EXPECT_TRUE(test, PageOffline(newpage));
	KUNIT_EXPECT_PTR_EQ(test, list_first_entry(&host->bdev.b_dev_info.pages,
						   struct page, lru), newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 100);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

/*
 * The host takes the old page back but refuses the new one: the callback
 * says -ENOENT, the kernel frees both, and the balloon is one page smaller
 * until the next cycle.
 */
static void migrate_new_page_refused(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;
	unsigned long pfn, newpfn;
	unsigned long ram;

	host->cap_flags = BALLOON_CORE_CAP_ADJUST_MANAGED;
	fake_movable_balloon(test, host);
	ram = totalram_pages();
	host->refuse_every = 101;	/* the next page offered */
	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	newpfn = page_to_pfn(newpage);
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, false), 0);

	KUNIT_EXPECT_NULL(test, xa_load(&host->held, pfn));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, newpfn));
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(99));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 99);
	KUNIT_EXPECT_EQ(test, host->reported, UNITS(99));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE_FAIL), 1);
	/* The kernel gave the page back to the managed count. */
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram + 1);
	expect_consistent(test, host);

	/* The next cycle makes it up. */
	host->refuse_every = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram);
	expect_consistent(test, host);
}

/* A host error on the old page fails that try; the kernel's retry moves it. */
static void migrate_old_page_command_failed(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	fake_movable_balloon(test, host);
	host->script[0] = (struct fake_script){ FAKE_DEFLATE, 1, -EIO };

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, true), 0);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 2U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE_FAIL), 1);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE), 1);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 100);
	expect_consistent(test, host);
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void migrate_host_enough_still_takes_new_page(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;
	unsigned long pfn;

	fake_movable_balloon(test, host);
	KUNIT_ASSERT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	/* "No more this cycle", but the page itself was taken. */
	host->script[0] = (struct fake_script){ FAKE_INFLATE, 3, -EAGAIN };

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	KUNIT_ASSERT_EQ(test, fake_migrate(host, newpage, page, true), 0);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&host->held, page_to_pfn(newpage)));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, pfn));
	expect_consistent(test, host);
}
#else
static void migrate_tells_host_old_then_new(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;
	unsigned int nlog;

	fake_movable_balloon(test, host);

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	nlog = host->nlog;
	KUNIT_ASSERT_EQ(test, fake_migrate(host, newpage, page, true),
			MIGRATEPAGE_SUCCESS);

	/* The host gave back the old page before it took the new one. */
	KUNIT_ASSERT_EQ(test, host->nlog, nlog + 2);
	KUNIT_EXPECT_EQ(test, host->log[nlog].op, FAKE_DEFLATE);
	KUNIT_EXPECT_EQ(test, host->log[nlog + 1].op, FAKE_INFLATE);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&host->held, page_to_pfn(newpage)));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, page_to_pfn(page)));
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE), 1);
	/* The old page is the MM's alone now; the new one is the balloon's. */
	KUNIT_EXPECT_EQ(test, page_ref_count(page), 1);
	put_page(page);
	put_page(newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 100);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

/*
 * In a balloon of 100 movable pages, migrate one to a new page the host
 * refuses; return what the callback returned, with both pages left to the
 * caller.
 */
static int fake_migrate_refused(struct kunit *test, struct fake_host *host,
				struct page **page, struct page **newpage)
{
	fake_movable_balloon(test, host);
	host->refuse_every = 101;	/* the next page offered */
	*newpage = fake_new_page(test);
	*page = fake_isolate(host);
	return fake_migrate(host, *newpage, *page, false);
}

static void migrate_new_page_refused(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	KUNIT_EXPECT_EQ(test, fake_migrate_refused(test, host, &page, &newpage),
			-EBUSY);
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, page_to_pfn(page)));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, page_to_pfn(newpage)));

	/* Neither page is the balloon's: it is one page smaller. */
	KUNIT_EXPECT_FALSE(test, PageOffline(page));
	KUNIT_EXPECT_EQ(test, page_ref_count(page), 1);	/* the MM's */
	fake_putback(host, page);
	put_page(newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(99));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 99);
	KUNIT_EXPECT_EQ(test, host->reported, UNITS(99));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE_FAIL), 1);
	expect_consistent(test, host);

	/* The next cycle makes it up. */
	host->refuse_every = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	expect_consistent(test, host);
}

/*
 * Unregister waits while a page is isolated; once migration gives the
 * page up, the transport may free the balloon at once.  So the page stays
 * isolated until the migration has done everything else.
 */
static void migrate_keeps_page_isolated_until_done(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	KUNIT_EXPECT_EQ(test, fake_migrate_refused(test, host, &page, &newpage),
			-EBUSY);
	/* The balloon shrank and told the host with the page still isolated. */
	KUNIT_EXPECT_EQ(test, host->reported, UNITS(99));
	KUNIT_EXPECT_EQ(test, host->isolated_at_size, 1);
	fake_putback(host, page);
	put_page(newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	expect_consistent(test, host);
}

static void migrate_old_page_command_failed(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	fake_movable_balloon(test, host);
	host->script[0] = (struct fake_script){ FAKE_DEFLATE, 1, -EIO };

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, true), -EAGAIN);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 100);
	expect_consistent(test, host);
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void migrate_host_enough_still_takes_new_page(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	fake_movable_balloon(test, host);
	KUNIT_ASSERT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	/* "No more this cycle", but the page itself was taken. */
	host->script[0] = (struct fake_script){ FAKE_INFLATE, 3, -EAGAIN };

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_ASSERT_EQ(test, fake_migrate(host, newpage, page, true),
			MIGRATEPAGE_SUCCESS);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&host->held, page_to_pfn(newpage)));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, page_to_pfn(page)));
	put_page(page);
	put_page(newpage);
	expect_consistent(test, host);
}

#endif

static void fake_putback_fn(struct work_struct *work)
{
	struct fake_host *host = container_of(to_delayed_work(work),
					      struct fake_host, putback_work);

	fake_putback(host, host->putback_page);
}

static void unregister_waits_for_isolated_page(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_movable_balloon(test, host);

	/* A page is isolated for migration when the transport goes away. */
	host->putback_page = fake_isolate(host);
	INIT_DELAYED_WORK(&host->putback_work, fake_putback_fn);
	schedule_delayed_work(&host->putback_work, msecs_to_jiffies(50));
	fake_unregister(host);
	flush_delayed_work(&host->putback_work);

	/* It came back and was given back through the host, like the rest. */
	KUNIT_EXPECT_EQ(test, host->pages_out, 100U);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 100);
	KUNIT_EXPECT_FALSE(test, host->protocol_error);
}

#ifndef BALLOON_COMPAT_BALLOON_H
/* The migrate callback's last step: the isolated count drops. */
static void fake_let_go_fn(struct work_struct *work)
{
	struct fake_host *host = container_of(to_delayed_work(work),
					      struct fake_host, putback_work);
	struct balloon_dev_info *info = &host->bdev.b_dev_info;
	unsigned long flags;

	spin_lock_irqsave(&info->pages_lock, flags);
	WRITE_ONCE(host->let_go, true);
	info->isolated_pages--;
	spin_unlock_irqrestore(&info->pages_lock, flags);
}

/*
 * A migration whose new page the host refused has taken the old page out
 * of the balloon's counts, but still has to drop the isolated count; the
 * transport may free the balloon as soon as unregister returns, so
 * unregister must wait for that step too.
 */
static void unregister_waits_until_migration_lets_go(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct balloon_dev_info *info = &host->bdev.b_dev_info;
	struct page *page, *newpage;
	unsigned long flags;

	KUNIT_ASSERT_EQ(test, fake_migrate_refused(test, host, &page, &newpage),
			-EBUSY);
	fake_putback(host, page);
	put_page(newpage);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(99));

	/* Back to the moment before the callback's last step. */
	spin_lock_irqsave(&info->pages_lock, flags);
	info->isolated_pages++;
	spin_unlock_irqrestore(&info->pages_lock, flags);
	INIT_DELAYED_WORK(&host->putback_work, fake_let_go_fn);
	schedule_delayed_work(&host->putback_work, msecs_to_jiffies(100));

	fake_unregister(host);
	KUNIT_EXPECT_TRUE(test, READ_ONCE(host->let_go));
	flush_delayed_work(&host->putback_work);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, info->isolated_pages, 0);
}
#endif

static struct kunit_case balloon_core_migrate_cases[] = {
	KUNIT_CASE(migrate_tells_host_old_then_new),
	KUNIT_CASE(migrate_busy_balloon_retries_later),
	KUNIT_CASE(migrate_new_page_refused),
	KUNIT_CASE(migrate_host_enough_still_takes_new_page),
#ifndef BALLOON_COMPAT_BALLOON_H
	KUNIT_CASE(migrate_keeps_page_isolated_until_done),
#endif
	KUNIT_CASE(migrate_old_page_kept_changes_nothing),
	KUNIT_CASE(migrate_old_page_command_failed),
	KUNIT_CASE(unregister_waits_for_isolated_page),
#ifndef BALLOON_COMPAT_BALLOON_H
	KUNIT_CASE(unregister_waits_until_migration_lets_go),
#endif
	{ }
};

static struct kunit_suite balloon_core_migrate_suite = {
	.name = "balloon_core_migrate",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_migrate_cases,
};

kunit_test_suite(balloon_core_migrate_suite);
