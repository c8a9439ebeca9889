// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_core_pressure: the OOM notifier and its hold-off
 * (core/pressure.c), and the managed page count, through the fake
 * transport of core_fake.h.
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/workqueue.h>

#include "core_fake.h"

static unsigned long fake_oom(struct fake_host *host)
{
	unsigned long freed = 0;

	host->bdev.oom_nb.notifier_call(&host->bdev.oom_nb, 0, &freed);
	return freed;
}

/* A registered balloon of 2000 pages on a host that allows deflate on OOM. */
static void fake_pressure_balloon(struct kunit *test, struct fake_host *host)
{
	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = UNITS(2000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(2000));
}

static void pressure_deflate_frees_and_holds_off(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int calls;

	fake_pressure_balloon(test, host);

	/* An OOM notification takes oom_pages back, telling the host. */
	KUNIT_EXPECT_EQ(test, fake_oom(host), 256UL);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000 - 256));
	KUNIT_EXPECT_EQ(test, host->pages_out, 256U);
	KUNIT_EXPECT_EQ(test, host->reported, UNITS(2000 - 256));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 1);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE_FREE),
			UNITS(256));

	/* The host still wants 2000, but the next cycles must not ping-pong. */
	calls = host->calls[FAKE_INFLATE];
	balloon_core_run_cycle(&host->bdev);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], calls);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000 - 256));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_HOLDOFF), 2);

	/* Once the hold-off has passed, inflation resumes. */
	host->bdev.holdoff_until = jiffies - 1;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000));
	expect_consistent(test, host);
}

static void pressure_deflate_needs_host_permission(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_register(test, host);
	host->target = UNITS(2000);
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, fake_oom(host), 0UL);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000));
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 0);
	expect_consistent(test, host);
}

static void pressure_deflate_huge_page_whole(struct kunit *test)
{
	struct fake_host *host = test->priv;

	/*
	 * oom_pages (256) wanted, only 2 MiB pages in the balloon: whole ones
	 * go, the last one whole too (one of 512 pages with 4 KiB pages, two
	 * of 128 with 16 KiB), and one more stays.
	 */
	unsigned long whole = DIV_ROUND_UP(256, PAGES_2M) * PAGES_2M;
	unsigned long n = whole / PAGES_2M + 1;

	host->orders = BIT(0) | BIT(HUGE_ORDER);
	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = UNITS(n * PAGES_2M);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.nr_pages[HUGE_ORDER], n);

	KUNIT_EXPECT_EQ(test, fake_oom(host), whole);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(PAGES_2M));
	expect_consistent(test, host);
}

static void managed_count_follows_balloon(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long ram = totalram_pages();

	host->cap_flags = BALLOON_CORE_CAP_ADJUST_MANAGED;
	fake_register(test, host);
	host->target = UNITS(3000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(3000));
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram - 3000);

	/* The clamp still counts the ballooned pages as the guest's. */
	host->target = U64_MAX;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.target + host->bdev.floor_refused,
			UNITS(ram));

	/* That cycle inflated up to 16384 more; deflating takes two. */
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(1000));
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram - 1000);
	fake_unregister(host);
	KUNIT_EXPECT_EQ(test, totalram_pages(), ram);
}

static void pressure_deflate_with_reset_pending(struct kunit *test)
{
	struct fake_host *host = test->priv;

	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);

	/* The host reset and forgot; the work loop has not run yet. */
	fake_forget(host);
	set_bit(BALLOON_CORE_F_RESET, &host->bdev.flags);
	KUNIT_EXPECT_EQ(test, fake_oom(host), 1000UL);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_DEFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	expect_consistent(test, host);
}

/* The kernel's OOM path calling the notifier, from a task of its own. */
struct oom_call {
	struct work_struct work;
	struct fake_host *host;
	unsigned long freed;
	struct completion done;
};

static void oom_call_fn(struct work_struct *work)
{
	struct oom_call *call = container_of(work, struct oom_call, work);
	struct balloon_core_dev *bdev = &call->host->bdev;

	bdev->oom_nb.notifier_call(&bdev->oom_nb, 0, &call->freed);
	complete(&call->done);
}

/*
 * A cycle holds the work lock while the host does not answer: the OOM
 * notifier must return at once, not wait behind it, and the next cycle
 * deflates in its place.
 */
static void pressure_never_waits_behind_a_cycle(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct oom_call call = { .host = host };
	struct completion *release;
	bool stalled, returned = false;
	int i;

	fake_pressure_balloon(test, host);

	/*
	 * The next cycle's first inflate call waits for the test.  The
	 * completion outlives this function (a late cycle may still look
	 * at it), and from here on nothing returns before it is completed.
	 */
	release = kunit_kzalloc(test, sizeof(*release), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, release);
	init_completion(release);
	WRITE_ONCE(host->stall, release);
	host->target = UNITS(4000);
	balloon_core_kick(&host->bdev);
	for (i = 0; i < 100 && !READ_ONCE(host->stalled); i++)
		msleep(50);
	stalled = READ_ONCE(host->stalled);

	init_completion(&call.done);
	INIT_WORK(&call.work, oom_call_fn);
	if (stalled) {
		queue_work(system_unbound_wq, &call.work);
		returned = wait_for_completion_timeout(&call.done, 2 * HZ);
	}

	/* Let the host answer, whatever happened, so that nothing hangs. */
	complete_all(release);
	if (stalled)
		flush_work(&call.work);
	/* The stalled cycle, then the one the notifier queued. */
	flush_delayed_work(&host->bdev.work);
	flush_delayed_work(&host->bdev.work);

	KUNIT_EXPECT_TRUE(test, stalled);
	KUNIT_EXPECT_TRUE(test, returned);
	/* Nothing was freed at once; the next cycle gave oom_pages back. */
	KUNIT_EXPECT_EQ(test, call.freed, 0UL);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 1);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE_FREE),
			UNITS(256));
	KUNIT_EXPECT_TRUE(test, test_bit(BALLOON_CORE_F_HOLDOFF,
					 &host->bdev.flags));
	KUNIT_EXPECT_FALSE(test, test_bit(BALLOON_CORE_F_PRESSURE,
					  &host->bdev.flags));
	/* The stalled cycle stopped inflating after its batch. */
	KUNIT_EXPECT_LE(test, host->bdev.size, UNITS(2000 + 64 - 256));
	expect_consistent(test, host);
}

/* The OOM path runs while a sleeping allocation of the cycle is blocked. */
static struct oom_call *blocked_call;
static bool blocked_returned;

static struct page *blocking_alloc_page(gfp_t gfp, unsigned int order)
{
	struct oom_call *call = blocked_call;

	/* Non-sleeping allocations fail: the cycle goes on sleeping. */
	if (!gfpflags_allow_blocking(gfp))
		return NULL;
	if (call) {
		blocked_call = NULL;
		queue_work(system_unbound_wq, &call->work);
		blocked_returned = wait_for_completion_timeout(&call->done,
							       2 * HZ);
	}
	return alloc_pages(gfp, order);
}

/* The next sleeping allocation of a cycle in this task runs @call. */
static struct oom_call *oom_during_sleeping_alloc(struct kunit *test,
						  struct fake_host *host)
{
	struct oom_call *call = kunit_kzalloc(test, sizeof(*call), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, call);
	call->host = host;
	init_completion(&call->done);
	INIT_WORK(&call->work, oom_call_fn);
	blocked_call = call;
	blocked_returned = false;
	kunit_activate_static_stub(test, balloon_core_alloc_page,
				   blocking_alloc_page);
	return call;
}

/* One cycle; whatever happened, @call is over before the test's memory. */
static void oom_cycle(struct fake_host *host, struct oom_call *call)
{
	balloon_core_run_cycle(&host->bdev);
	if (!blocked_returned)
		flush_work(&call->work);
}

/*
 * A cycle's sleeping allocation blocks (in reclaim, say) while the kernel
 * runs out of memory: the allocation runs without the work lock, so the
 * OOM notifier takes it at once and gives pages back there and then; the
 * cycle, back with the lock, sees the hold-off and inflates no further.
 */
static void pressure_not_blocked_by_sleeping_alloc(struct kunit *test)
{
	struct fake_host *host = test->priv;
	struct oom_call *call;
	unsigned int calls;

	fake_pressure_balloon(test, host);
	call = oom_during_sleeping_alloc(test, host);

	host->target = UNITS(4000);
	calls = host->calls[FAKE_INFLATE];
	oom_cycle(host, call);

	KUNIT_EXPECT_NULL(test, blocked_call);
	KUNIT_EXPECT_TRUE(test, blocked_returned);
	KUNIT_EXPECT_EQ(test, call->freed, 256UL);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 1);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], calls);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000 - 256));
	KUNIT_EXPECT_TRUE(test, test_bit(BALLOON_CORE_F_HOLDOFF,
					 &host->bdev.flags));
	expect_consistent(test, host);
}

/*
 * The same with nothing in the balloon yet (the first batches of an
 * inflation): the notifier finds nothing to give back, but the cycle, back
 * with the lock, must still see that the guest ran out of memory, drop
 * what it allocated and inflate no further.
 */
static void oom_during_first_batch(struct kunit *test, bool allowed)
{
	struct fake_host *host = test->priv;
	struct oom_call *call;

	host->cap_flags = allowed ? BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE : 0;
	fake_register(test, host);
	call = oom_during_sleeping_alloc(test, host);

	host->target = UNITS(2000);
	oom_cycle(host, call);

	KUNIT_EXPECT_TRUE(test, blocked_returned);
	KUNIT_EXPECT_EQ(test, call->freed, 0UL);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_OOM), 1);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 0U);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	/* What it had allocated went back to the guest. */
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_REFUSED_FREE),
			stat(host, BALLOON_CORE_STAT_SLEEP_ALLOC));
	/* Inflation waits after an OOM the host lets the balloon act on. */
	KUNIT_EXPECT_EQ(test, test_bit(BALLOON_CORE_F_HOLDOFF,
				       &host->bdev.flags), allowed);
	expect_consistent(test, host);
}

static void pressure_with_empty_balloon_stops_inflation(struct kunit *test)
{
	oom_during_first_batch(test, true);
}

/*
 * A host that does not let the guest take pages back: the notifier stays
 * off the work lock, but the cycle still stops taking memory.
 */
static void oom_without_permission_stops_inflation(struct kunit *test)
{
	oom_during_first_batch(test, false);
}

/*
 * A notifier that got the lock deflated itself: a request left by an
 * earlier one that found the lock busy is answered, and the next cycle
 * gives nothing back a second time.
 */
static void pressure_deflates_once_per_request(struct kunit *test)
{
	struct fake_host *host = test->priv;

	fake_pressure_balloon(test, host);

	/* An earlier notification left its request; this one gets the lock. */
	set_bit(BALLOON_CORE_F_PRESSURE, &host->bdev.flags);
	KUNIT_EXPECT_EQ(test, fake_oom(host), 256UL);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000 - 256));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 1);
	expect_consistent(test, host);
}

/*
 * The host answers the cycle's deferred pressure deflate with a reset: no
 * other method runs in that cycle (the host wants a new handshake first).
 */
static void pressure_deferred_deflate_reset_ends_cycle(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int targets;

	fake_pressure_balloon(test, host);

	set_bit(BALLOON_CORE_F_PRESSURE, &host->bdev.flags);
	host->script[0] = (struct fake_script){ FAKE_DEFLATE,
		host->calls[FAKE_DEFLATE] + 1, -BALLOON_CORE_ERESET };
	targets = host->calls[FAKE_TARGET];
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_TARGET], targets);
	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RESET), 1);
	expect_consistent(test, host);
}

static struct kunit_case balloon_core_pressure_cases[] = {
	KUNIT_CASE(pressure_never_waits_behind_a_cycle),
	KUNIT_CASE(pressure_not_blocked_by_sleeping_alloc),
	KUNIT_CASE(pressure_with_empty_balloon_stops_inflation),
	KUNIT_CASE(oom_without_permission_stops_inflation),
	KUNIT_CASE(pressure_deflates_once_per_request),
	KUNIT_CASE(pressure_deferred_deflate_reset_ends_cycle),
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
