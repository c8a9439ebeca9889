// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite for balloon_core driven by the fake transport of core_fake.h.
 */
#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/irqflags.h>
#include <linux/migrate.h>
#include <linux/pagemap.h>
#include <linux/mm.h>
#include <linux/xarray.h>

#include "core_fake.h"
#include "mm_fake.h"

static void inflate_reaches_target_across_cycles(struct kunit *test)
{
	struct fake_host *host = test->priv;
	static const u64 expect[] = { 16384, 32768, 40000, 40000 };
	unsigned int i;

	fake_register(test, host);
	host->target = 40000;
	for (i = 0; i < ARRAY_SIZE(expect); i++) {
		balloon_core_run_cycle(&host->bdev);
		KUNIT_EXPECT_EQ_MSG(test, host->bdev.size, expect[i],
				    "cycle %u", i);
		KUNIT_EXPECT_EQ(test, host->reported, host->bdev.size);
	}
	expect_consistent(test, host);
	/* Whole batches: 40000 pages in batches of at most 64. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], DIV_ROUND_UP(16384, 64) * 2 +
			DIV_ROUND_UP(40000 - 32768, 64));
	KUNIT_EXPECT_EQ(test, host->log[0].op, FAKE_START);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC_FAIL), 0);
}

static void inflate_sleeping_rate_progression(struct kunit *test)
{
	struct fake_host *host = test->priv;
	/*
	 * Cycle 1 falls back to sleeping at 512 and grows the rate by 16;
	 * cycles 2-5 are slow (sleeping only) and each grows it again; cycle
	 * 6 tries non-sleeping first, fails, and falls back once more.
	 */
	static const unsigned int grow[] = { 512, 528, 544, 560, 576, 592 };
	static const unsigned int nosleep_tries[] = { 1, 1, 1, 1, 1, 2 };
	u64 size = 0;
	unsigned int i;

	fake_register(test, host);
	host->bdev.rate.alloc = 512;
	host->nosleep_ok = 0;
	host->target = 100000;
	for (i = 0; i < ARRAY_SIZE(grow); i++) {
		balloon_core_run_cycle(&host->bdev);
		size += grow[i];
		KUNIT_EXPECT_EQ_MSG(test, host->bdev.size, size, "cycle %u", i);
		KUNIT_EXPECT_EQ_MSG(test, host->nosleep_allocs,
				    nosleep_tries[i], "cycle %u", i);
	}
	KUNIT_EXPECT_EQ(test, host->bdev.rate.alloc, 608U);
	expect_consistent(test, host);
}

static void inflate_nosleep_failure_falls_back_to_sleep(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->nosleep_ok = 100;
	host->target = 10000;
	balloon_core_run_cycle(&host->bdev);

	/* 100 non-sleeping pages, one failure, then sleeping up to 2048. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2048);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC), 101);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC_FAIL), 1);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_SLEEP_ALLOC), 1948);
	KUNIT_EXPECT_EQ(test, host->bdev.rate.slow_cycles, 4U);

	/* The next cycle is slow: sleeping allocations only. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC), 101);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2048 + 2048);
	expect_consistent(test, host);
}

static void inflate_sleep_failure_halves_rate(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->nosleep_ok = 0;
	host->sleep_ok = 10;
	host->target = 10000;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 10);
	KUNIT_EXPECT_EQ(test, host->bdev.rate.alloc, 1024U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_SLEEP_ALLOC_FAIL), 1);
	expect_consistent(test, host);
}

static void inflate_refused_pages_capped_and_released(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->max_batch = 8;
	host->bdev.caps.max_batch = 8;
	host->refuse_every = 2;
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	/* Every other page refused: the 16th refusal ends the cycle. */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_ALLOC), 16);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE), 16);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 16);
	expect_consistent(test, host);
}

static void inflate_refused_beyond_cap_freed_at_once(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->refuse_every = 1;
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	/* One batch of 64, all refused: 16 kept aside, 48 freed, all back. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 1U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_ALLOC), 64);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE), 64);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	expect_consistent(test, host);
}

static void inflate_host_says_enough(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->script[0] = (struct fake_script){ FAKE_INFLATE, 3, -EAGAIN };
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	/* The third batch is taken, then the cycle ends. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 3U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 3 * 64);
	expect_consistent(test, host);
}

static void deflate_tells_host_before_free(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 1000);

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
	host->target = 2000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 2000);

	host->target = 0;
	host->bdev.rate.free = 1024;
	host->script[0] = (struct fake_script){ FAKE_DEFLATE, 1, -EIO };
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2000);	/* nothing lost */
	KUNIT_EXPECT_EQ(test, host->bdev.rate.free, 512U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_DEFLATE_FAIL), 1);

	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2000 - 512);
	KUNIT_EXPECT_EQ(test, host->bdev.rate.free, 528U);
	expect_consistent(test, host);
}

static void reset_mid_inflate(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->script[0] = (struct fake_script){ FAKE_INFLATE, 3,
						-BALLOON_CORE_ERESET };
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	/* Every page freed without telling the host, size reported as 0. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RESET), 1);
	KUNIT_EXPECT_EQ(test, host->reported, 0);
	expect_consistent(test, host);

	/* The handshake runs again before anything else. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 2U);
	KUNIT_EXPECT_EQ(test, host->log[host->nlog - 1].op, FAKE_SIZE);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 1000);
	expect_consistent(test, host);
}

static void reset_mid_deflate(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);
	host->target = 0;
	host->script[0] = (struct fake_script){ FAKE_DEFLATE, 2,
						-BALLOON_CORE_ERESET };
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 2U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 1000);
	expect_consistent(test, host);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 2U);
}

static void reset_requested_by_transport(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 300;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 300);

	/* A device reset: the host forgot, and the core must too. */
	fake_forget(host);
	balloon_core_request_reset(&host->bdev);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 2U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RESET), 1);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 300);	/* re-inflated */
	expect_consistent(test, host);
}

static void target_beyond_memory_clamped(struct kunit *test)
{
	struct fake_host *host = test->priv;
	u64 ram = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;

	fake_register(test, host);
	host->target = U64_MAX / 2;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.target, ram);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_CLAMPED), 1);
	KUNIT_EXPECT_LE(test, host->bdev.size, 16384);	/* one cycle's worth */
	expect_consistent(test, host);
}

static void target_flapping_bounded_per_cycle(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int i;

	fake_register(test, host);
	for (i = 0; i < 8; i++) {
		u64 before = host->bdev.size;

		host->target = (i % 2) ? 0 : 30000;
		balloon_core_run_cycle(&host->bdev);
		KUNIT_EXPECT_LE_MSG(test,
				    max(host->bdev.size, before) -
				    min(host->bdev.size, before), 16384,
				    "cycle %u", i);
	}
	expect_consistent(test, host);
}

/* Fail the Nth non-sleeping and every sleeping allocation. */
static const unsigned int alloc_fail_at[] = { 1, 2, 17, 64, 65, 129 };

static void alloc_fail_desc(const unsigned int *n, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "allocation %u fails", *n);
}

KUNIT_ARRAY_PARAM(alloc_fail, alloc_fail_at, alloc_fail_desc);

static void inflate_alloc_failure_at_every_step(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int n = *(const unsigned int *)test->param_value;

	fake_register(test, host);
	host->nosleep_ok = n - 1;
	host->sleep_ok = 0;
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, n - 1);
	KUNIT_EXPECT_EQ(test, host->bdev.rate.alloc, 1024U);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), n - 1);
}

/*
 * A balloon of any size is dropped in bounded chunks: interrupts are off
 * only while the balloon's page lock is held, for 256 pages at most.
 */
static void reset_drops_pages_in_bounded_chunks(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->max_batch = BALLOON_CORE_MAX_BATCH;
	fake_register(test, host);
	host->target = 20000;
	while (host->bdev.size < 20000 && host->calls[FAKE_INFLATE] < 100)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 20000);

	host->dequeue_calls = 0;
	host->dequeue_max = 0;
	balloon_core_request_reset(&host->bdev);
	cancel_delayed_work_sync(&host->bdev.work);
	fake_forget(host);
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 0);
	KUNIT_EXPECT_LE(test, host->dequeue_max, (size_t)256);
	KUNIT_EXPECT_GE(test, host->dequeue_calls, 20000U / 256);
}

static void deflate_takes_pages_in_bounded_chunks(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->max_batch = BALLOON_CORE_MAX_BATCH;
	fake_register(test, host);
	host->target = 10000;
	while (host->bdev.size < 10000 && host->calls[FAKE_INFLATE] < 100)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 10000);

	/* Batches of thousands of pages; the lock is held for 256 at most. */
	host->dequeue_max = 0;
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, host->pages_out, 10000U);
	KUNIT_EXPECT_LE(test, host->dequeue_max, (size_t)256);
	KUNIT_EXPECT_FALSE(test, host->protocol_error);
}

static void unregister_full_balloon_returns_every_page(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 5000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 5000);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, host->pages_out, 5000U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->reported, 0);
	KUNIT_EXPECT_FALSE(test, host->protocol_error);
	KUNIT_EXPECT_NULL(test, host->bdev.ops);

	/* No callback can start any more. */
	balloon_core_kick(&host->bdev);
	KUNIT_EXPECT_FALSE(test, delayed_work_pending(&host->bdev.work));
}

static void unregister_host_refusing_release_frees_anyway(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 500;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 500);

	/* It keeps every page: after a second of retries, they go anyway. */
	host->keep_every = 1;
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 500);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 11U);
}

static void unregister_retries_a_busy_host(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int i;

	fake_register(test, host);
	host->target = 500;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 500);

	/* Four failed commands, then the host gives everything back. */
	for (i = 0; i < FAKE_SCRIPT; i++)
		host->script[i] = (struct fake_script){ FAKE_DEFLATE, i + 1,
							-EBUSY };
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, host->pages_out, 500U);
	KUNIT_EXPECT_FALSE(test, host->protocol_error);
}

static void unregister_detach_lets_host_drop_all(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 500;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 500);

	host->detach_drops = true;
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DETACH], 1U);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 500);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void deflate_page_host_keeps_stays_in_balloon(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int free_rate;

	fake_register(test, host);
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 1000);

	/* The host keeps the last page of the first batch; the rest goes. */
	free_rate = host->bdev.rate.free;
	host->keep_every = 64;
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 1U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 1000 - 63);
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

static void deflate_tries_kept_page_last(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *first;

	fake_register(test, host);
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 1000);

	/* The host will never give back the first page the balloon offers. */
	first = list_first_entry(&host->bdev.b_dev_info.pages, struct page,
				 lru);
	host->keep_pfn = page_to_pfn(first);
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 1000 - 63);

	/* Next time every other page goes first. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 1);
	KUNIT_EXPECT_PTR_EQ(test, list_first_entry(&host->bdev.b_dev_info.pages,
						   struct page, lru), first);
	host->keep_pfn = 0;
	expect_consistent(test, host);
}

static void inflate_stops_at_target_from_reply(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 1000;
	host->retarget_at = 2;
	host->retarget = 100;
	balloon_core_run_cycle(&host->bdev);

	/* Two batches of 64 went before the host said 100 is enough. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	KUNIT_EXPECT_EQ(test, host->bdev.target, 100);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 128);
	expect_consistent(test, host);

	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
	expect_consistent(test, host);
}

static void work_goes_on_while_moving_on_polled_host(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int i;

	/*
	 * The fake is polled hourly: only the core's "more" can go on.  (No
	 * flush here: flushing would fire the hourly timer at once.)
	 */
	host->target = 40000;
	fake_register(test, host);
	for (i = 0; i < 250 && READ_ONCE(host->bdev.size) < 40000; i++)
		msleep(20);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 40000);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 1U);
	KUNIT_EXPECT_GE(test, host->calls[FAKE_TARGET], 3U);
	/* At the target the hourly poll takes over. */
	KUNIT_EXPECT_TRUE(test, delayed_work_pending(&host->bdev.work));
	expect_consistent(test, host);
}

static void start_failure_retried_next_cycle(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->script[0] = (struct fake_script){ FAKE_START, 1, -EIO };
	fake_register(test, host);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_TARGET], 0U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_START_FAIL), 1);

	host->target = 100;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 2U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
	expect_consistent(test, host);
}

static void start_batch_size_honoured_and_capped(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->max_batch = 512;		/* a VMware batch page */
	fake_register(test, host);
	host->target = 16384;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 16384U / 512);

	/* A host asking for more than the core's limit gets the limit. */
	host->max_batch = 1 << 20;
	host->target = 0;
	fake_forget(host);		/* the device was reset */
	balloon_core_request_reset(&host->bdev);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, host->bdev.caps.max_batch, BALLOON_CORE_MAX_BATCH);
	host->target = 2 * BALLOON_CORE_MAX_BATCH;
	host->calls[FAKE_INFLATE] = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	expect_consistent(test, host);
}

static void start_without_usable_batch_fails(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->max_batch = 0;
	KUNIT_ASSERT_EQ(test, balloon_core_register(&host->bdev, &core_fake_ops,
						    NULL, "kunit"), 0);
	host->registered = true;
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_START_FAIL), 1);

	/* Nothing else runs until a handshake succeeds. */
	host->target = 100;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_TARGET], 0U);
	host->max_batch = 16;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], DIV_ROUND_UP(100, 16));
}

static void huge_inflate_prefers_2m_pages(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	fake_register(test, host);
	host->target = 4 * HUGE_PAGES + 100;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 4 * HUGE_PAGES + 100);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 4);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 100);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_ALLOC), 4);
	/* One batch of four huge pages, two of 4 KiB pages. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 3U);
	expect_consistent(test, host);
}

static void block_alloc_splits_whole_blocks(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/* 1000 = 512 + 256 + 128 + 64 + 32 + 8: six blocks, no single page. */
	host->block_ok = FAKE_NEVER;
	host->max_batch = 512;
	fake_register(test, host);
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 1000);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_BLOCK_ALLOC), 6);
	KUNIT_EXPECT_EQ(test, host->nosleep_allocs, 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 1000);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	expect_consistent(test, host);

	/* The pieces are ordinary balloon pages: they all come back. */
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 1000);
	expect_consistent(test, host);
}

static void block_alloc_failure_takes_single_pages(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->block_ok = 1;
	fake_register(test, host);
	host->target = 700;
	balloon_core_run_cycle(&host->bdev);

	/* One block of 512, then no block to spare: 188 single pages. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, 700);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_BLOCK_ALLOC), 1);
	KUNIT_EXPECT_EQ(test, host->nosleep_allocs, 188U);
	expect_consistent(test, host);
}

static void block_pieces_not_needed_are_freed(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/* The host says 64 is enough after the first batch of 64. */
	host->block_ok = FAKE_NEVER;
	host->retarget_at = 1;
	host->retarget = 64;
	fake_register(test, host);
	host->target = 512;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 64);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_BLOCK_ALLOC), 1);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE),
			512 - 64);
	expect_consistent(test, host);
}

static void huge_page_costs_one_allocation(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/* 64 huge pages are 32768 base pages, twice nosleep_max. */
	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->max_batch = 512;
	fake_register(test, host);
	host->target = 64 * HUGE_PAGES;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 64 * HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 1U);
	expect_consistent(test, host);
}

static void huge_alloc_failure_falls_back_to_4k(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->huge_ok = 1;
	fake_register(test, host);
	host->target = 4 * HUGE_PAGES;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 4 * HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 1);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 3 * HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_ALLOC_FAIL), 1);
	/* No huge page to spare is not memory pressure. */
	KUNIT_EXPECT_EQ(test, host->bdev.rate.slow_cycles, 0U);
	expect_consistent(test, host);
}

static void huge_refused_split_and_offered_again(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->refuse_huge_every = 1;
	fake_register(test, host);
	host->target = 2 * HUGE_PAGES;
	balloon_core_run_cycle(&host->bdev);

	/* Both huge pages refused, split, and every piece taken as 4 KiB. */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_SPLIT), 2);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2 * HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 2 * HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC), 0);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	expect_consistent(test, host);
}

static void huge_refused_pieces_not_needed_are_freed(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->refuse_huge_every = 1;
	host->refuse_every = 2;		/* and half of the pieces too */
	fake_register(test, host);
	host->target = HUGE_PAGES;
	balloon_core_run_cycle(&host->bdev);

	/*
	 * The first batch of 64 pieces has 32 refused, past the cap of 16:
	 * the cycle ends with 32 taken, and every other piece freed.
	 */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_SPLIT), 1);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 32);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE),
			HUGE_PAGES - host->bdev.size);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	expect_consistent(test, host);
}

static void huge_deflate_whole_pages_then_exact(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	fake_register(test, host);
	host->target = 2 * HUGE_PAGES;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 2);

	/* 424 pages to give back, only 2 MiB pages: one goes whole ... */
	host->target = 600;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_FREE), 1);
	KUNIT_EXPECT_EQ(test, host->pages_out, HUGE_PAGES);

	/* ... and the next cycle makes up the difference in 4 KiB pages. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 600);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 600 - HUGE_PAGES);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_FREE), 2);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE),
			600 - HUGE_PAGES);
}

static unsigned long fake_oom(struct fake_host *host)
{
	unsigned long freed = 0;

	host->bdev.oom_nb.notifier_call(&host->bdev.oom_nb, 0, &freed);
	return freed;
}

static void pressure_deflate_frees_and_holds_off(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int calls;

	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = 2000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 2000);

	/* An OOM notification takes oom_pages back, telling the host. */
	KUNIT_EXPECT_EQ(test, fake_oom(host), 256UL);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2000 - 256);
	KUNIT_EXPECT_EQ(test, host->pages_out, 256U);
	KUNIT_EXPECT_EQ(test, host->reported, 2000 - 256);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 1);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE_FREE), 256);

	/* The host still wants 2000, but the next cycles must not ping-pong. */
	calls = host->calls[FAKE_INFLATE];
	balloon_core_run_cycle(&host->bdev);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], calls);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2000 - 256);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HOLDOFF), 2);

	/* Once the hold-off has passed, inflation resumes. */
	host->bdev.holdoff_until = jiffies - 1;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2000);
	expect_consistent(test, host);
}

static void pressure_deflate_needs_host_permission(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = 2000;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, fake_oom(host), 0UL);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 2000);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 0);
	expect_consistent(test, host);
}

static void pressure_deflate_huge_page_whole(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = 2 * HUGE_PAGES;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 2);

	/* 256 pages wanted, only 2 MiB pages: one goes, whole. */
	KUNIT_EXPECT_EQ(test, fake_oom(host), (unsigned long)HUGE_PAGES);
	KUNIT_EXPECT_EQ(test, host->bdev.size, HUGE_PAGES);
	expect_consistent(test, host);
}

static void managed_count_follows_balloon(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long ram = totalram_pages();

	host->cap_flags = BALLOON_CORE_CAP_ADJUST_MANAGED;
	fake_register(test, host);
	host->target = 3000;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 3000);
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram - 3000);

	/* The clamp still counts the ballooned pages as the guest's. */
	host->target = U64_MAX;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.target, (u64)ram);

	/* That cycle inflated up to 16384 more; deflating takes two. */
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 1000);
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram - 1000);
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram);
}

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
	if (!IS_ENABLED(CONFIG_BALLOON_COMPACTION))
		kunit_skip(test, "needs CONFIG_BALLOON_COMPACTION");
	fake_register(test, host);
	host->target = 100;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, 100);
}

static struct page *fake_new_page(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, page);
	return page;
}

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
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 100);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void migrate_busy_balloon_retries_later(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;
	unsigned int calls;

	fake_movable_balloon(test, host);

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	calls = host->seq;
	mutex_lock(&host->bdev.lock);	/* the work loop is running */
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, false), -EAGAIN);
	mutex_unlock(&host->bdev.lock);
	KUNIT_EXPECT_EQ(test, host->seq, calls);	/* host not called */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE_FAIL), 1);

	fake_putback(host, page);
	__free_page(newpage);
	expect_consistent(test, host);

	/* Reset and unregister wait for isolated pages to come back. */
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void migrate_new_page_refused(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	fake_movable_balloon(test, host);
	host->refuse_every = 101;	/* the next page offered */

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, false), -EBUSY);
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, page_to_pfn(page)));
	KUNIT_EXPECT_NULL(test, xa_load(&host->held, page_to_pfn(newpage)));

	/* Neither page is the balloon's: it is one page smaller. */
	KUNIT_EXPECT_FALSE(test, PageOffline(page));
	KUNIT_EXPECT_EQ(test, page_ref_count(page), 1);	/* the MM's */
	fake_putback(host, page);
	put_page(newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 99);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 99);
	KUNIT_EXPECT_EQ(test, host->reported, 99);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_MIGRATE_FAIL), 1);
	expect_consistent(test, host);

	/* The next cycle makes it up. */
	host->refuse_every = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
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

	fake_movable_balloon(test, host);
	host->refuse_every = 101;	/* the next page offered */

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	host->isolated_at_size = 0;
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, false), -EBUSY);
	/* The balloon shrank and told the host with the page still isolated. */
	KUNIT_EXPECT_EQ(test, host->reported, 99);
	KUNIT_EXPECT_EQ(test, host->isolated_at_size, 1);
	fake_putback(host, page);
	put_page(newpage);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	expect_consistent(test, host);
}

static void migrate_old_page_kept_changes_nothing(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct page *page, *newpage;

	fake_movable_balloon(test, host);
	host->keep_every = 1;		/* the host keeps the old page */

	newpage = fake_new_page(test);
	page = fake_isolate(host);
	KUNIT_EXPECT_EQ(test, fake_migrate(host, newpage, page, true), -EAGAIN);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&host->held, page_to_pfn(page)));
	KUNIT_EXPECT_TRUE(test, PageOffline(page));
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
	KUNIT_EXPECT_EQ(test, host->bdev.b_dev_info.isolated_pages, 0);
	host->keep_every = 0;
	expect_consistent(test, host);
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
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
	KUNIT_EXPECT_EQ(test, host->bdev.size, 100);
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

static void pressure_deflate_with_reset_pending(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = 1000;
	balloon_core_run_cycle(&host->bdev);

	/* The host reset and forgot; the work loop has not run yet. */
	fake_forget(host);
	set_bit(BALLOON_CORE_F_RESET, &host->bdev.flags);
	KUNIT_EXPECT_EQ(test, fake_oom(host), 1000UL);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	expect_consistent(test, host);
}

static void kick_from_atomic_context(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long flags;

	fake_register(test, host);
	local_irq_save(flags);
	balloon_core_kick(&host->bdev);
	local_irq_restore(flags);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_KICK), 2);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_TARGET], 2U);
}

static void register_rejects_incomplete_ops(struct kunit *test)
{
	static const struct balloon_core_ops no_inflate = {
		.owner = THIS_MODULE,
		.name = "broken",
		.start = core_fake_start,
		.get_target = core_fake_get_target,
	};
	struct fake_host *host = test->priv;

	KUNIT_EXPECT_EQ(test, balloon_core_register(&host->bdev, &no_inflate,
						    NULL, "kunit"), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_register(&host->bdev, NULL, NULL,
						    "kunit"), -EINVAL);
}

static struct kunit_case balloon_core_loop_cases[] = {
	KUNIT_CASE(inflate_reaches_target_across_cycles),
	KUNIT_CASE(inflate_sleeping_rate_progression),
	KUNIT_CASE(inflate_nosleep_failure_falls_back_to_sleep),
	KUNIT_CASE(inflate_sleep_failure_halves_rate),
	KUNIT_CASE(inflate_refused_pages_capped_and_released),
	KUNIT_CASE(inflate_refused_beyond_cap_freed_at_once),
	KUNIT_CASE(inflate_host_says_enough),
	KUNIT_CASE_PARAM(inflate_alloc_failure_at_every_step,
			 alloc_fail_gen_params),
	KUNIT_CASE(deflate_tells_host_before_free),
	KUNIT_CASE(deflate_rate_limited_and_halved_on_error),
	KUNIT_CASE(deflate_page_host_keeps_stays_in_balloon),
	KUNIT_CASE(deflate_tries_kept_page_last),
	KUNIT_CASE(inflate_stops_at_target_from_reply),
	KUNIT_CASE(work_goes_on_while_moving_on_polled_host),
	KUNIT_CASE(reset_mid_inflate),
	KUNIT_CASE(reset_mid_deflate),
	KUNIT_CASE(reset_requested_by_transport),
	KUNIT_CASE(target_beyond_memory_clamped),
	KUNIT_CASE(target_flapping_bounded_per_cycle),
	KUNIT_CASE(reset_drops_pages_in_bounded_chunks),
	KUNIT_CASE(deflate_takes_pages_in_bounded_chunks),
	KUNIT_CASE(unregister_full_balloon_returns_every_page),
	KUNIT_CASE(unregister_host_refusing_release_frees_anyway),
	KUNIT_CASE(unregister_retries_a_busy_host),
	KUNIT_CASE(unregister_detach_lets_host_drop_all),
	KUNIT_CASE(start_failure_retried_next_cycle),
	KUNIT_CASE(start_batch_size_honoured_and_capped),
	KUNIT_CASE(start_without_usable_batch_fails),
	KUNIT_CASE(huge_inflate_prefers_2m_pages),
	KUNIT_CASE(huge_page_costs_one_allocation),
	KUNIT_CASE(block_alloc_splits_whole_blocks),
	KUNIT_CASE(block_alloc_failure_takes_single_pages),
	KUNIT_CASE(block_pieces_not_needed_are_freed),
	KUNIT_CASE(huge_alloc_failure_falls_back_to_4k),
	KUNIT_CASE(huge_refused_split_and_offered_again),
	KUNIT_CASE(huge_refused_pieces_not_needed_are_freed),
	KUNIT_CASE(huge_deflate_whole_pages_then_exact),
	KUNIT_CASE(pressure_deflate_frees_and_holds_off),
	KUNIT_CASE(pressure_deflate_needs_host_permission),
	KUNIT_CASE(pressure_deflate_huge_page_whole),
	KUNIT_CASE(managed_count_follows_balloon),
	KUNIT_CASE(migrate_tells_host_old_then_new),
	KUNIT_CASE(migrate_busy_balloon_retries_later),
	KUNIT_CASE(migrate_new_page_refused),
	KUNIT_CASE(migrate_host_enough_still_takes_new_page),
	KUNIT_CASE(migrate_keeps_page_isolated_until_done),
	KUNIT_CASE(migrate_old_page_kept_changes_nothing),
	KUNIT_CASE(migrate_old_page_command_failed),
	KUNIT_CASE(unregister_waits_for_isolated_page),
	KUNIT_CASE(pressure_deflate_with_reset_pending),
	KUNIT_CASE(kick_from_atomic_context),
	KUNIT_CASE(register_rejects_incomplete_ops),
	{ }
};

static struct kunit_suite balloon_core_loop_suite = {
	.name = "balloon_core_loop",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_loop_cases,
};

kunit_test_suite(balloon_core_loop_suite);
