// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_core_floor: the guest floor and the back-off while
 * the guest reclaims hard (core/floor.c), through the fake transport of
 * core_fake.h.
 */
#include <kunit/test.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/moduleparam.h>
#include <linux/nodemask.h>

#include "core_fake.h"

#define MIB_PAGES(mib)	((unsigned long)(mib) << (20 - PAGE_SHIFT))

/* The balloon may keep this many pages below a floor set for the test. */
#define ROOM		512UL

static u64 ram_units(void)
{
	return (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;
}

/* Write the "floor" parameter as a user would; "auto" again at exit. */
static int floor_write(const char *val)
{
	return balloon_core_floor_ops.set(val, NULL);
}

static void floor_restore(void *unused)
{
	floor_write("auto");
}

static void floor_set(struct kunit *test, const char *val)
{
	KUNIT_ASSERT_EQ(test, floor_write(val), 0);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, floor_restore,
							NULL), 0);
}

/* A floor that leaves the balloon @room pages of the guest's memory. */
static void floor_leave(struct kunit *test, unsigned long room)
{
	char val[32];

	snprintf(val, sizeof(val), "%luK",
		 (totalram_pages() - room) << (PAGE_SHIFT - 10));
	floor_set(test, val);
}

/* Cycles until the balloon stops moving (at most @max). */
static void settle(struct fake_host *host, unsigned int max)
{
	while (max-- && balloon_core_run_cycle(&host->bdev))
		;
}

struct floor_anchor {
	unsigned long guest_mib;
	unsigned long floor_mib;
};

/* Hyper-V's table, and two sizes beyond it. */
static const struct floor_anchor floor_anchors[] = {
	{ 0, 8 }, { 64, 40 }, { 128, 72 }, { 512, 168 }, { 2048, 360 },
	{ 8192, 744 }, { 32768, 1512 }, { 1048576, 33256 },
};

static void floor_curve_anchors_and_monotone(struct kunit *test)
{
	unsigned long mib, prev = balloon_core_floor_curve(0);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(floor_anchors); i++)
		KUNIT_EXPECT_EQ_MSG(test,
				    balloon_core_floor_curve(MIB_PAGES(floor_anchors[i].guest_mib)),
				    MIB_PAGES(floor_anchors[i].floor_mib),
				    "guest of %lu MiB",
				    floor_anchors[i].guest_mib);
	/* Continuous: no step down where the slope changes, nor anywhere. */
	for (mib = 0; mib <= 40000; mib++) {
		unsigned long f = balloon_core_floor_curve(MIB_PAGES(mib));

		KUNIT_ASSERT_GE_MSG(test, f, prev, "at %lu MiB", mib);
		KUNIT_ASSERT_LE_MSG(test, f - prev, MIB_PAGES(1),
				    "at %lu MiB", mib);
		KUNIT_ASSERT_LE_MSG(test, f, MIB_PAGES(mib) + MIB_PAGES(8),
				    "at %lu MiB", mib);
		prev = f;
	}
}

static void floor_param_parses_and_reads_back(struct kunit *test)
{
	unsigned long pages;
	char want[16];
	char *buf;

	/* sysfs_emit() takes a page, as sysfs gives it. */
	buf = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);

	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("auto\n", &pages), 0);
	KUNIT_EXPECT_EQ(test, pages, ULONG_MAX);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("0", &pages), 0);
	KUNIT_EXPECT_EQ(test, pages, 0UL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("512M\n", &pages), 0);
	KUNIT_EXPECT_EQ(test, pages, MIB_PAGES(512));
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("1G", &pages), 0);
	KUNIT_EXPECT_EQ(test, pages, MIB_PAGES(1024));
	/* Bytes round up to whole pages. */
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("4097", &pages), 0);
	KUNIT_EXPECT_EQ(test, pages, DIV_ROUND_UP(4097UL, PAGE_SIZE));

	pages = 7;
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("-1", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("abc", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("12Mx", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("autox", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse(" 5", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("0x10", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("5P", &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("20000000T", &pages),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, balloon_core_floor_parse("99999999999999999999G",
						       &pages), -EINVAL);
	KUNIT_EXPECT_EQ(test, pages, 7UL);

	/* A live write is judged at once: a bad one changes nothing. */
	floor_set(test, "256M");
	KUNIT_EXPECT_EQ(test, floor_write("lots"), -EINVAL);
	balloon_core_floor_ops.get(buf, NULL);
	KUNIT_EXPECT_STREQ(test, buf, "256M\n");
	/* 4100 bytes are two 4 KiB pages, or one larger page. */
	KUNIT_EXPECT_EQ(test, floor_write("4100"), 0);
	balloon_core_floor_ops.get(buf, NULL);
	snprintf(want, sizeof(want), "%luK\n",
		 DIV_ROUND_UP(4100UL, PAGE_SIZE) * (PAGE_SIZE / SZ_1K));
	KUNIT_EXPECT_STREQ(test, buf, want);
	KUNIT_EXPECT_EQ(test, floor_write("auto"), 0);
	balloon_core_floor_ops.get(buf, NULL);
	KUNIT_EXPECT_STREQ(test, buf, "auto\n");
}

/* The high watermarks without boost, summed here from the zones. */
static unsigned long watermarks(void)
{
	unsigned long pages = 0;
	int nid, i;

	for_each_online_node(nid)
		for (i = 0; i < MAX_NR_ZONES; i++)
			if (populated_zone(&NODE_DATA(nid)->node_zones[i]))
				pages += high_wmark_pages(&NODE_DATA(nid)->node_zones[i]) -
					 NODE_DATA(nid)->node_zones[i].watermark_boost;
	return pages;
}

static void floor_auto_from_size_and_watermarks(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long floor = balloon_core_floor_curve(totalram_pages()) +
			      watermarks();

	fake_register(test, host);
	host->target = ram_units();
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_GT(test, watermarks(), 0UL);
	KUNIT_EXPECT_EQ(test, host->bdev.floor,
			(u64)floor * BALLOON_CORE_UNITS_PER_PAGE);
	KUNIT_EXPECT_EQ(test, host->bdev.target, ram_units() - host->bdev.floor);
	KUNIT_EXPECT_EQ(test, host->bdev.floor_refused, host->bdev.floor);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FLOOR), 1);
	KUNIT_EXPECT_LE(test, host->bdev.size, host->bdev.target);
	expect_consistent(test, host);
}

/* "0" is the in-tree drivers' behaviour: only the guest's size limits. */
static void floor_zero_is_no_floor(struct kunit *test)
{
	struct fake_host *host = test->priv;

	floor_set(test, "0");
	fake_register(test, host);
	host->target = ram_units();
	host->nosleep_ok = 100;
	host->sleep_ok = 0;
	balloon_core_run_cycle(&host->bdev);

	KUNIT_EXPECT_EQ(test, host->bdev.target, ram_units());
	KUNIT_EXPECT_EQ(test, host->bdev.floor, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.floor_refused, 0);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FLOOR), 0);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(100));
	expect_consistent(test, host);
}

/* A floor above the guest's memory: the balloon stays empty. */
static void floor_above_guest_keeps_balloon_empty(struct kunit *test)
{
	struct fake_host *host = test->priv;

	floor_set(test, "1048576G");
	fake_register(test, host);
	host->target = ram_units();
	settle(host, 10);

	KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.target, 0);
	KUNIT_EXPECT_EQ(test, host->bdev.floor, ram_units());
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], 0U);
	expect_consistent(test, host);
}

struct floor_target_case {
	const char *name;
	u64 target;	/* U64_MAX - 1: the guest's memory */
	bool flap;	/* every other cycle the target is 0 */
};

#define GUEST	(U64_MAX - 1)

static const struct floor_target_case floor_target_cases[] = {
	{ "zero", 0, false },
	{ "guest_ram", GUEST, false },
	{ "u64_max", U64_MAX, false },
	{ "flapping", GUEST, true },
};

static void floor_target_desc(const struct floor_target_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(floor_target, floor_target_cases, floor_target_desc);

static void floor_holds_for_any_target(struct kunit *test)
{
	const struct floor_target_case *c = test->param_value;
	struct fake_host *host = test->priv;
	u64 room = ROOM * BALLOON_CORE_UNITS_PER_PAGE, want;
	unsigned int i;

	floor_leave(test, ROOM);
	fake_register(test, host);
	want = c->target == GUEST ? ram_units() : c->target;

	for (i = 0; i < 12; i++) {
		host->target = c->flap && i % 2 ? 0 : want;
		balloon_core_run_cycle(&host->bdev);
		KUNIT_ASSERT_LE_MSG(test, host->bdev.size, room, "cycle %u", i);
		if (!host->target)
			KUNIT_EXPECT_EQ(test, host->bdev.size, 0);
		else
			KUNIT_EXPECT_EQ_MSG(test, host->bdev.size, room,
					    "cycle %u", i);
		expect_consistent(test, host);
	}
	if (!want) {
		KUNIT_EXPECT_EQ(test, host->bdev.floor_refused, 0);
		KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FLOOR), 0);
		return;
	}
	/* The host hears of the balloon stopping short of its target. */
	KUNIT_EXPECT_EQ(test, host->reported, c->flap ? 0 : room);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_FLOOR),
			c->flap ? 6 : 1);
	if (!c->flap)
		KUNIT_EXPECT_EQ(test, host->bdev.floor_refused,
				ram_units() - room);
}

/*
 * A floor raised at run time: the balloon goes back below it only where
 * the host lets the guest take pages back.
 */
static void floor_raised(struct kunit *test, bool allowed)
{
	struct fake_host *host = test->priv;
	u64 room = ROOM * BALLOON_CORE_UNITS_PER_PAGE;

	host->cap_flags = allowed ? BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE : 0;
	floor_leave(test, ROOM);
	fake_register(test, host);
	host->target = ram_units();
	settle(host, 10);
	KUNIT_ASSERT_EQ(test, host->bdev.size, room);

	floor_leave(test, ROOM / 2);
	settle(host, 10);
	KUNIT_EXPECT_EQ(test, host->bdev.size, allowed ? room / 2 : room);
	KUNIT_EXPECT_EQ(test, host->reported, host->bdev.size);
	expect_consistent(test, host);
}

static void floor_raised_gives_back_where_allowed(struct kunit *test)
{
	floor_raised(test, true);
}

static void floor_raised_keeps_what_host_holds(struct kunit *test)
{
	floor_raised(test, false);
}

/*
 * Refaults faster than the back-off's rate hold inflation off, and give
 * pages back where the host allows it; slow ones do not.
 */
static void floor_reclaim_holds_off_inflation(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned int calls;

	host->cap_flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	fake_register(test, host);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(1000));

	/* A trickle: a page or two over a second. */
	host->bdev.refaults_at = jiffies - HZ;
	host->refaults += 2;
	host->target = UNITS(2000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RECLAIMING), 0);

	/* 40 MiB refaulted in the last second: the guest is thrashing. */
	host->bdev.refaults_at = jiffies - HZ;
	host->refaults += MIB_PAGES(40);
	host->target = UNITS(3000);
	calls = host->calls[FAKE_INFLATE];
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RECLAIMING), 1);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], calls);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(2000 - 256));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_PRESSURE), 1);

	/* Quiet again, but the hold-off stands until it has passed. */
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->calls[FAKE_INFLATE], calls);
	KUNIT_EXPECT_GE(test, stat(host, BALLOON_CORE_STAT_HOLDOFF), 2);
	host->bdev.holdoff_until = jiffies - 1;
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(3000));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RECLAIMING), 1);
	expect_consistent(test, host);
}

/*
 * Cycles run back to back while the balloon moves: refaults over cycles
 * shorter than a tenth of a second add up, instead of each short cycle
 * being judged alone over a tenth of a second.
 */
static void floor_reclaim_rate_spans_short_cycles(struct kunit *test)
{
	struct fake_host *host = test->priv;
	unsigned long start;

	fake_register(test, host);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_ASSERT_EQ(test, host->bdev.size, UNITS(1000));

	/* 150 pages in 50 ms: too short a time to judge; nothing happens. */
	start = jiffies - HZ / 20;
	host->bdev.refaults_at = start;
	host->refaults += 150;
	host->target = UNITS(1100);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1100));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RECLAIMING), 0);

	/*
	 * 150 more, the first count half a second ago: 300 pages in 0.5 s
	 * is 600 a second, hard reclaim; judged alone, 150 would not be.
	 */
	host->bdev.refaults_at = jiffies - HZ / 2;
	host->refaults += 150;
	host->target = UNITS(1200);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RECLAIMING), 1);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1100));
	expect_consistent(test, host);
}

/* Without a floor there is no back-off either. */
static void floor_zero_no_reclaim_backoff(struct kunit *test)
{
	struct fake_host *host = test->priv;

	floor_set(test, "0");
	fake_register(test, host);
	host->bdev.refaults_at = jiffies - HZ;
	host->refaults += MIB_PAGES(40);
	host->target = UNITS(1000);
	balloon_core_run_cycle(&host->bdev);
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(1000));
	KUNIT_EXPECT_EQ(test, stat(host, BALLOON_CORE_STAT_RECLAIMING), 0);
	expect_consistent(test, host);
}

static struct kunit_case balloon_core_floor_cases[] = {
	KUNIT_CASE(floor_curve_anchors_and_monotone),
	KUNIT_CASE(floor_param_parses_and_reads_back),
	KUNIT_CASE(floor_auto_from_size_and_watermarks),
	KUNIT_CASE(floor_zero_is_no_floor),
	KUNIT_CASE(floor_above_guest_keeps_balloon_empty),
	KUNIT_CASE_PARAM(floor_holds_for_any_target, floor_target_gen_params),
	KUNIT_CASE(floor_raised_gives_back_where_allowed),
	KUNIT_CASE(floor_raised_keeps_what_host_holds),
	KUNIT_CASE(floor_reclaim_holds_off_inflation),
	KUNIT_CASE(floor_reclaim_rate_spans_short_cycles),
	KUNIT_CASE(floor_zero_no_reclaim_backoff),
	{ }
};

static struct kunit_suite balloon_core_floor_suite = {
	.name = "balloon_core_floor",
	.init = core_fake_init,
	.exit = core_fake_exit,
	.test_cases = balloon_core_floor_cases,
};

kunit_test_suite(balloon_core_floor_suite);
