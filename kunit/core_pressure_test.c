// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_core_pressure: the OOM notifier and its hold-off
 * (core/pressure.c), and the managed page count, through the fake
 * transport of core_fake.h.
 */
#include <kunit/test.h>
#include <linux/mm.h>

#include "core_fake.h"

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

static struct kunit_case balloon_core_pressure_cases[] = {
	KUNIT_CASE(pressure_deflate_frees_and_holds_off),
	KUNIT_CASE(pressure_deflate_needs_host_permission),
	KUNIT_CASE(pressure_deflate_huge_page_whole),
	KUNIT_CASE(managed_count_follows_balloon),
	KUNIT_CASE(pressure_deflate_with_reset_pending),
	{ }
};

static struct kunit_suite balloon_core_pressure_suite = {
	.name = "balloon_core_pressure",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_pressure_cases,
};

kunit_test_suite(balloon_core_pressure_suite);
