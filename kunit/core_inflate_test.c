// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_core_inflate: inflation (core/inflate.c) through the
 * fake transport of core_fake.h.  The allocation policy and its rates,
 * pages the host refuses, 2 MiB pages and split blocks, and the target:
 * clamped to memory, changed by a reply, bounded per cycle.
 */
#include <kunit/test.h>
#include <linux/mm.h>

#include "core_fake.h"

static void inflate_reaches_target_across_cycles(struct kunit *test)
{
	struct fake_host *host = test->priv;
	static const u64 expect[] = { 16384, 32768, 40000, 40000 };
	unsigned int i;

	fake_register(test, host);
	host->target = UNITS(40000);
	for (i = 0; i < ARRAY_SIZE(expect); i++) {
		balloon_core_run_cycle(&host->bdev);
		KUNIT_EXPECT_EQ_MSG(test, host->bdev.size, UNITS(expect[i]),
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
	host->target = UNITS(100000);
	for (i = 0; i < ARRAY_SIZE(grow); i++) {
		balloon_core_run_cycle(&host->bdev);
		size += grow[i];
		KUNIT_EXPECT_EQ_MSG(test, host->bdev.size, UNITS(size),
				    "cycle %u", i);
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
	host->target = UNITS(10000);
	balloon_core_run_cycle(&host->bdev);

	/* 100 non-sleeping pages, one failure, then sleeping up to 2048. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2048));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC), 101);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC_FAIL), 1);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_SLEEP_ALLOC), 1948);
	KUNIT_EXPECT_EQ(test, host->bdev.rate.slow_cycles, 4U);

	/* The next cycle is slow: sleeping allocations only. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_ALLOC), 101);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2048 + 2048));
	expect_consistent(test, host);
}

static void inflate_sleep_failure_halves_rate(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->nosleep_ok = 0;
	host->sleep_ok = 10;
	host->target = UNITS(10000);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(10));
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
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);

	/* Every other page refused: the 16th refusal ends the cycle. */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_ALLOC), 16);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE), 16);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(16));
	expect_consistent(test, host);
}

static void inflate_refused_beyond_cap_freed_at_once(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->refuse_every = 1;
	host->target = UNITS(1000);
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
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);

	/* The third batch is taken, then the cycle ends. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 3U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(3 * 64));
	expect_consistent(test, host);
}

static void target_beyond_memory_clamped(struct kunit *test)
{
	struct fake_host *host = test->priv;
	u64 ram = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;

	fake_register(test, host);
	host->target = U64_MAX / 2;
	balloon_core_run_cycle(&host->bdev);

	/* What the guest floor does not refuse of it is the target. */
	KUNIT_EXPECT_EQ(test, host->bdev.target + host->bdev.floor_refused,
			ram);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_CLAMPED), 1);
	/* One cycle's worth. */
	KUNIT_EXPECT_LE(test, host->bdev.size, UNITS(16384));
	expect_consistent(test, host);
}

static void target_flapping_bounded_per_cycle(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int i;

	fake_register(test, host);
	for (i = 0; i < 8; i++) {
		u64 before = host->bdev.size;

		host->target = UNITS((i % 2) ? 0 : 30000);
		balloon_core_run_cycle(&host->bdev);
		KUNIT_EXPECT_LE_MSG(test,
				    max(host->bdev.size, before) -
				    min(host->bdev.size, before), UNITS(16384),
				    "cycle %u", i);
	}
	expect_consistent(test, host);
}

/*
 * A target in 4 KiB units need not be whole guest pages (with 64 KiB
 * pages, 16 units make a page): the balloon stops within a page of it,
 * below it on the way up and above it on the way down, and stays there
 * instead of going back and forth.
 */
static void target_between_pages_settles(struct kunit *test)
{
	struct fake_host *host = test->priv;
	u64 half = BALLOON_CORE_UNITS_PER_PAGE / 2;
	unsigned int calls, i;

	fake_register(test, host);
	host->target = UNITS(1000) + half;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1000));

	host->target = UNITS(500) + half;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(half ? 501 : 500));

	calls = host->calls[FAKE_INFLATE] + host->calls[FAKE_DEFLATE];
	for (i = 0; i < 3; i++)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE] +
			host->calls[FAKE_DEFLATE], calls);
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
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(n - 1));
	KUNIT_EXPECT_EQ(test, host->bdev.rate.alloc, 1024U);
	expect_consistent(test, host);

	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), n - 1);
}

static void inflate_stops_at_target_from_reply(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = UNITS(1000);
	host->retarget_at = 2;
	host->retarget = UNITS(100);
	balloon_core_run_cycle(&host->bdev);

	/* Two batches of 64 went before the host said 100 is enough. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 2U);
	KUNIT_EXPECT_EQ(test, host->bdev.target, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(128));
	expect_consistent(test, host);

	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	expect_consistent(test, host);
}

static void huge_inflate_prefers_2m_pages(struct kunit *test)
{
	struct fake_host *host = test->priv;
	/* Less than a huge page on top: 100 base pages, 31 with 64 KiB. */
	unsigned long rest = min(100UL, HUGE_PAGES - 1);

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	fake_register(test, host);
	host->target = UNITS(4 * HUGE_PAGES + rest);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(4 * HUGE_PAGES + rest));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 4);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], rest);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_ALLOC), 4);
	/* One batch of four huge pages, then base pages 64 a batch. */
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE],
			1 + DIV_ROUND_UP(rest, 64));
	expect_consistent(test, host);
}

/*
 * A huge page with no room in the core's array (which the inflation makes
 * without reclaim, before it takes the work lock) counts as one the guest
 * could not spare: it is freed, and 4 KiB pages make up the target.
 */
static void huge_without_slot_freed_4k_instead(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->slot_ok = 1;
	fake_register(test, host);
	host->target = UNITS(4 * HUGE_PAGES);
	balloon_core_run_cycle(&host->bdev);
	while (host->bdev.size < host->target &&
	       host->calls[FAKE_INFLATE] < 100)
		balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(4 * HUGE_PAGES));
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], 1);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 3 * HUGE_PAGES);
	KUNIT_EXPECT_GE(test, stat(host, BALLOON_CORE_STAT_HUGE_ALLOC_FAIL), 1);
	expect_consistent(test, host);

	host->target = 0;
	while (host->bdev.size && host->calls[FAKE_DEFLATE] < 100)
		balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_FREE), 1);
	KUNIT_EXPECT_TRUE(test, xa_empty(&host->bdev.own[HUGE_ORDER]));
	expect_consistent(test, host);
}

static void block_alloc_splits_whole_blocks(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/*
	 * 2 MiB + 2 MiB + 1 MiB + 8 pages: four blocks, none above 2 MiB on
	 * any page size, and no single page.
	 */
	unsigned long pages = 2 * PAGES_2M + PAGES_2M / 2 + 8;

	host->block_ok = FAKE_NEVER;
	host->max_batch = 512;
	fake_register(test, host);
	host->target = UNITS(pages);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(pages));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_BLOCK_ALLOC), 4);
	KUNIT_EXPECT_EQ(test, host->nosleep_allocs, 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], pages);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	expect_consistent(test, host);

	/* The pieces are ordinary balloon pages: they all come back. */
	host->target = 0;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), pages);
	expect_consistent(test, host);
}

static void block_alloc_failure_takes_single_pages(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->block_ok = 1;
	fake_register(test, host);
	host->target = UNITS(PAGES_2M + 188);
	balloon_core_run_cycle(&host->bdev);

	/* One block of 2 MiB, then no block to spare: 188 single pages. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(PAGES_2M + 188));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_BLOCK_ALLOC), 1);
	KUNIT_EXPECT_EQ(test, host->nosleep_allocs, 188U);
	expect_consistent(test, host);
}

static void block_pieces_not_needed_are_freed(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/* One 2 MiB block; the host says its first batch is enough. */
	unsigned long batch = PAGES_2M / 8;

	host->block_ok = FAKE_NEVER;
	host->max_batch = batch;
	host->retarget_at = 1;
	host->retarget = UNITS(batch);
	fake_register(test, host);
	host->target = UNITS(PAGES_2M);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(batch));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_BLOCK_ALLOC), 1);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE),
			PAGES_2M - batch);
	expect_consistent(test, host);
}

static void huge_page_costs_one_allocation(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/* 64 huge pages: with 4 KiB pages, twice nosleep_max. */
	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->max_batch = 512;
	fake_register(test, host);
	host->target = UNITS(64 * HUGE_PAGES);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(64 * HUGE_PAGES));
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 1U);
	expect_consistent(test, host);
}

static void huge_alloc_failure_falls_back_to_4k(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->huge_ok = 1;
	fake_register(test, host);
	host->target = UNITS(4 * HUGE_PAGES);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(4 * HUGE_PAGES));
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
	host->target = UNITS(2 * HUGE_PAGES);
	balloon_core_run_cycle(&host->bdev);

	/* Both huge pages refused, split, and every piece taken as 4 KiB. */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_SPLIT), 2);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2 * HUGE_PAGES));
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
	host->target = UNITS(HUGE_PAGES);
	balloon_core_run_cycle(&host->bdev);

	/*
	 * The first batch of 64 pieces (32 with 64 KiB pages, whose huge page
	 * has no more) has half refused, past the cap of 16 (at it with
	 * 64 KiB): the cycle ends with the other half taken, and every other
	 * piece freed.
	 */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HUGE_SPLIT), 1);
	KUNIT_EXPECT_EQ(test, host->bdev.size,
			UNITS(min(HUGE_PAGES, 64UL) / 2));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE),
			HUGE_PAGES - host->bdev.size /
			BALLOON_CORE_UNITS_PER_PAGE);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.prealloc));
	expect_consistent(test, host);
}

static struct kunit_case balloon_core_inflate_cases[] = {
	KUNIT_CASE(inflate_reaches_target_across_cycles),
	KUNIT_CASE(inflate_sleeping_rate_progression),
	KUNIT_CASE(inflate_nosleep_failure_falls_back_to_sleep),
	KUNIT_CASE(inflate_sleep_failure_halves_rate),
	KUNIT_CASE(inflate_refused_pages_capped_and_released),
	KUNIT_CASE(inflate_refused_beyond_cap_freed_at_once),
	KUNIT_CASE(inflate_host_says_enough),
	KUNIT_CASE_PARAM(inflate_alloc_failure_at_every_step,
			 alloc_fail_gen_params),
	KUNIT_CASE(inflate_stops_at_target_from_reply),
	KUNIT_CASE(target_beyond_memory_clamped),
	KUNIT_CASE(target_flapping_bounded_per_cycle),
	KUNIT_CASE(target_between_pages_settles),
	KUNIT_CASE(huge_inflate_prefers_2m_pages),
	KUNIT_CASE(huge_without_slot_freed_4k_instead),
	KUNIT_CASE(huge_page_costs_one_allocation),
	KUNIT_CASE(block_alloc_splits_whole_blocks),
	KUNIT_CASE(block_alloc_failure_takes_single_pages),
	KUNIT_CASE(block_pieces_not_needed_are_freed),
	KUNIT_CASE(huge_alloc_failure_falls_back_to_4k),
	KUNIT_CASE(huge_refused_split_and_offered_again),
	KUNIT_CASE(huge_refused_pieces_not_needed_are_freed),
	{ }
};

static struct kunit_suite balloon_core_inflate_suite = {
	.name = "balloon_core_inflate",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_inflate_cases,
};

kunit_test_suite(balloon_core_inflate_suite);
