// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_core_deflate: deflation (core/deflate.c) through the
 * fake transport of core_fake.h.  The host hears of a page before it is
 * freed, the deflate rate, pages the host keeps, bounded chunks, and
 * 2 MiB pages.
 */
#include <kunit/test.h>
#include <linux/mm.h>

#include "core_fake.h"

static void deflate_tells_host_before_free(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(1000));

	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->pages_out, 1000U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 1000);
	KUNIT_EXPECT_EQ(test, host->reported, 0);
	/* protocol_error covers "told after free" and "never held". */
	expect_consistent(test, host);
}

static void deflate_rate_limited_and_halved_on_error(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = UNITS(2000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(2000));

	host->target = 0;
	host->bdev.rate.free = 1024;
	host->script[0] = (struct fake_script){ FAKE_DEFLATE, 1, -EIO };
	balloon_core_run_cycle(&host->bdev);
	/* Nothing lost. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000));
	KUNIT_EXPECT_EQ(test, host->bdev.rate.free, 512U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_DEFLATE_FAIL), 1);

	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000 - 512));
	KUNIT_EXPECT_EQ(test, host->bdev.rate.free, 528U);
	expect_consistent(test, host);
}

static void deflate_takes_pages_in_bounded_chunks(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->max_batch = BALLOON_CORE_MAX_BATCH;
	fake_register(test, host);
	host->target = BALLOON_KUNIT_MANY_UNITS;
	while (host->bdev.size < BALLOON_KUNIT_MANY_UNITS &&
	       host->calls[FAKE_INFLATE] < 1000)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, BALLOON_KUNIT_MANY_UNITS);

	/*
	 * An unload of over 4 GiB (a million 4 KiB pages), in batches of
	 * thousands; the lock is held for 256 pages at most, with a
	 * reschedule point after each.
	 */
	host->dequeue_max = 0;
	host->dequeue_calls = 0;
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, host->pages_out, BALLOON_KUNIT_MANY_PAGES);
	KUNIT_EXPECT_LE(test, host->dequeue_max, (size_t)256);
	KUNIT_EXPECT_GE(test, host->dequeue_calls,
			BALLOON_KUNIT_MANY_PAGES / 256);
	KUNIT_EXPECT_FALSE(test, host->protocol_error);
}

static void deflate_page_host_keeps_stays_in_balloon(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int free_rate;

	fake_register(test, host);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(1000));

	/* The host keeps the last page of the first batch; the rest goes. */
	free_rate = host->bdev.rate.free;
	host->keep_every = 64;
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 1U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1000 - 63));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 1000UL - 63);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 63);
	KUNIT_EXPECT_LT(test, host->bdev.rate.free, free_rate);
	expect_consistent(test, host);

	/* Once the host lets go, the balloon empties. */
	host->keep_every = 0;
	while (host->bdev.size && host->calls[FAKE_DEFLATE] < 100)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	expect_consistent(test, host);
}

/* Ballooned pages as "Balloon:" in /proc/meminfo counts them (6.15+). */
static long meminfo_balloon_delta(unsigned long before)
{
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
	return global_node_page_state(NR_BALLOON_PAGES) - before;
#else
	return -1;
#endif
}

static unsigned long meminfo_balloon_now(void)
{
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
	return global_node_page_state(NR_BALLOON_PAGES);
#else
	return 0;
#endif
}

/*
 * A balloon of 1000 pages, asked to deflate to 0 by a host that will never
 * give back the first page the balloon offers.  Returns that page.
 */
static struct page *fill_keeping_first(struct kunit *test,
				       struct fake_host *host)
{
	struct page *first;

	fake_register(test, host);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(1000));

	first = list_first_entry(&host->bdev.b_dev_info.pages, struct page,
				 lru);
	host->keep_pfn = page_to_pfn(first);
	host->target = 0;
	return first;
}

static void deflate_tries_kept_page_last(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long balloon = meminfo_balloon_now();
	bool counted = BALLOON_KUNIT_COUNTED;
	struct page *first;

	first = fill_keeping_first(test, host);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1000 - 63));

	/* Next time every other page goes first. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1));
	/* It waits in the core's own array, not on the kernel's list. */
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.b_dev_info.pages));
	KUNIT_EXPECT_PTR_EQ(test, xa_load(&host->bdev.own[0], host->keep_pfn),
			    first);
	KUNIT_EXPECT_TRUE(test, xa_get_mark(&host->bdev.own[0], host->keep_pfn,
					    BALLOON_CORE_OWN_KEPT));
	KUNIT_EXPECT_TRUE(test, PageOffline(first));
	/* Still a ballooned page, where the kernel counts them. */
	if (counted)
		KUNIT_EXPECT_EQ(test, meminfo_balloon_delta(balloon), 1);

	/* Once the host lets go, it goes like any other. */
	host->keep_pfn = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 0);
	if (counted)
		KUNIT_EXPECT_EQ(test, meminfo_balloon_delta(balloon), 0);
	expect_consistent(test, host);
}

/*
 * A 4 KiB page the host keeps finds no room in the core's array without
 * reclaim: it goes back on the kernel's list, still in the balloon and
 * counted, and is offered again with the others.
 */
static void deflate_kept_page_without_slot_stays(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long balloon = meminfo_balloon_now();
	bool counted = BALLOON_KUNIT_COUNTED;
	struct page *first;
	unsigned int i;

	host->slot_ok = 0;
	first = fill_keeping_first(test, host);
	for (i = 0; i < 50 && host->bdev.size > UNITS(1); i++)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 1);
	KUNIT_EXPECT_GE(test, host->slots, 1U);
	KUNIT_EXPECT_TRUE(test, xa_empty(&host->bdev.own[0]));
	KUNIT_EXPECT_FALSE(test, list_empty(&host->bdev.b_dev_info.pages));
	KUNIT_EXPECT_TRUE(test, PageOffline(first));
	if (counted)
		KUNIT_EXPECT_EQ(test, meminfo_balloon_delta(balloon), 1);
	expect_consistent(test, host);

	host->keep_pfn = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	if (counted)
		KUNIT_EXPECT_EQ(test, meminfo_balloon_delta(balloon), 0);
	expect_consistent(test, host);
}

/*
 * Above its target by less than a huge page (2 MiB with 4 KiB pages), a
 * balloon of huge pages stays where it is (the in-tree VMware driver's
 * slack); further above, whole huge pages go, and none is split to come
 * closer.
 */
static void huge_deflate_keeps_2m_slack(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	fake_register(test, host);
	host->target = UNITS(2 * HUGE_PAGES);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 2);

	/* Above the target by seven eighths of a huge page. */
	host->target = UNITS(HUGE_PAGES + HUGE_PAGES / 8);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2 * HUGE_PAGES));
	KUNIT_EXPECT_EQ(test, host->pages_out, 0);

	/* By a huge page and a quarter: one goes whole, and there it stays. */
	host->target = UNITS(HUGE_PAGES - HUGE_PAGES / 4);
	balloon_core_run_cycle(&host->bdev);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(HUGE_PAGES));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_FREE), 1);
	KUNIT_EXPECT_EQ(test, host->pages_out, HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 0);

	/* A target of 0 empties the balloon, slack or not. */
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_FREE), 2);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 0);
	expect_consistent(test, host);
}

static struct kunit_case balloon_core_deflate_cases[] = {
	KUNIT_CASE(deflate_tells_host_before_free),
	KUNIT_CASE(deflate_rate_limited_and_halved_on_error),
	KUNIT_CASE(deflate_page_host_keeps_stays_in_balloon),
	KUNIT_CASE(deflate_tries_kept_page_last),
	KUNIT_CASE(deflate_kept_page_without_slot_stays),
	KUNIT_CASE(deflate_takes_pages_in_bounded_chunks),
	KUNIT_CASE(huge_deflate_keeps_2m_slack),
	{ }
};

static struct kunit_suite balloon_core_deflate_suite = {
	.name = "balloon_core_deflate",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_deflate_cases,
};

kunit_test_suite(balloon_core_deflate_suite);
