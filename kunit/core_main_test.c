// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for core/main.c through the fake transport of core_fake.h.
 *
 * balloon_core_register: registration, the start handshake, kicks, the work
 * item, and unregister giving every page back however the host answers.
 * balloon_core_reset: a reset in the middle of a batch or requested by the
 * transport, and the balloon dropped in bounded chunks.
 */
#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/irqflags.h>
#include <linux/mm.h>
#include <linux/workqueue.h>

#include "core_fake.h"

static void reset_mid_inflate(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->script[0] = (struct fake_script){ FAKE_INFLATE, 3,
						-BALLOON_CORE_ERESET };
	host->target = UNITS(1000);
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
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1000));
	expect_consistent(test, host);
}

static void reset_mid_deflate(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = UNITS(1000);
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
	host->target = UNITS(300);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(300));

	/* A device reset: the host forgot, and the core must too. */
	fake_forget(host);
	balloon_core_request_reset(&host->bdev);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 2U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RESET), 1);
	/* Re-inflated. */
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(300));
	expect_consistent(test, host);
}

/*
 * A balloon of any size is dropped in bounded chunks: interrupts are off
 * only while the balloon's page lock is held, for 256 pages at most, and
 * every chunk is followed by a reschedule point.  Over 4 GiB
 * (BALLOON_KUNIT_MANY_UNITS), as a VMware guest of 16 GiB holds: over a
 * million pages of 4 KiB.
 */
static void reset_drops_pages_in_bounded_chunks(struct kunit *test)
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
	 * The host forgets the balloon and asks for nothing any more.  The
	 * cycle runs here, in the test's task, where the static stub counts
	 * (so the reset is requested without a kick of the work).
	 */
	cancel_delayed_work_sync(&host->bdev.work);
	fake_forget(host);
	host->target = 0;
	host->dequeue_calls = 0;
	host->dequeue_max = 0;
	set_bit(BALLOON_CORE_F_RESET, &host->bdev.flags);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.nr_pages[0], 0);
	KUNIT_EXPECT_LE(test, host->dequeue_max, (size_t)256);
	KUNIT_EXPECT_GE(test, host->dequeue_calls,
			BALLOON_KUNIT_MANY_PAGES / 256);
}

static void unregister_full_balloon_returns_every_page(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = UNITS(5000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(5000));

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
	host->target = UNITS(500);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(500));

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
	host->target = UNITS(500);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(500));

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
	host->target = UNITS(500);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(500));

	host->detach_drops = true;
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DETACH], 1U);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FREE), 500);
	KUNIT_EXPECT_EQ(test, fake_held(host), 0);
}

static void work_goes_on_while_moving_on_polled_host(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int i;

	/*
	 * The fake is polled hourly: only the core's "more" can go on.  (No
	 * flush here: flushing would fire the hourly timer at once.)
	 */
	host->target = UNITS(40000);
	fake_register(test, host);
	for (i = 0; i < 250 && READ_ONCE(host->bdev.size) < UNITS(40000); i++)
		msleep(20);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(40000));
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

	host->target = UNITS(100);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_START], 2U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	expect_consistent(test, host);
}

static void start_batch_size_honoured_and_capped(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->max_batch = 512;		/* a VMware batch page */
	fake_register(test, host);
	host->target = UNITS(16384);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 16384U / 512);

	/* A host asking for more than the core's limit gets the limit. */
	host->max_batch = 1 << 20;
	host->target = 0;
	fake_forget(host);		/* the device was reset */
	balloon_core_request_reset(&host->bdev);
	flush_delayed_work(&host->bdev.work);
	KUNIT_EXPECT_EQ(test, host->bdev.caps.max_batch, BALLOON_CORE_MAX_BATCH);
	host->target = UNITS(2 * BALLOON_CORE_MAX_BATCH);
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
	host->target = UNITS(100);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_TARGET], 0U);
	host->max_batch = 16;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], DIV_ROUND_UP(100, 16));
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

static struct kunit_case balloon_core_register_cases[] = {
	KUNIT_CASE(work_goes_on_while_moving_on_polled_host),
	KUNIT_CASE(unregister_full_balloon_returns_every_page),
	KUNIT_CASE(unregister_host_refusing_release_frees_anyway),
	KUNIT_CASE(unregister_retries_a_busy_host),
	KUNIT_CASE(unregister_detach_lets_host_drop_all),
	KUNIT_CASE(start_failure_retried_next_cycle),
	KUNIT_CASE(start_batch_size_honoured_and_capped),
	KUNIT_CASE(start_without_usable_batch_fails),
	KUNIT_CASE(kick_from_atomic_context),
	KUNIT_CASE(register_rejects_incomplete_ops),
	{ }
};

static struct kunit_suite balloon_core_register_suite = {
	.name = "balloon_core_register",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_register_cases,
};

static struct kunit_case balloon_core_reset_cases[] = {
	KUNIT_CASE(reset_mid_inflate),
	KUNIT_CASE(reset_mid_deflate),
	KUNIT_CASE(reset_requested_by_transport),
	KUNIT_CASE(reset_drops_pages_in_bounded_chunks),
	{ }
};

static struct kunit_suite balloon_core_reset_suite = {
	.name = "balloon_core_reset",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_reset_cases,
};

kunit_test_suites(&balloon_core_register_suite, &balloon_core_reset_suite);
