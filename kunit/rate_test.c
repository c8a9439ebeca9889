// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for balloon_core's adaptive rates and their parameters.
 *
 * The limits are those of vmw_balloon.c from Linux 2.6.34 to 3.18, which
 * are this driver's defaults.  They are spelled out here rather than read
 * from the module parameters, so that the expected progressions do not
 * move when someone tunes a live system.
 */
#include <kunit/test.h>

#include "../core/internal.h"

static const struct balloon_core_limits vmw_balloon_limits = {
	.nosleep_max = 16384,
	.alloc_min = 512,
	.alloc_max = 2048,
	.free_min = 512,
	.free_max = 16384,
	.rate_inc = 16,
	.slow_cycles = 4,
	.max_refused = 16,
};

static void rate_init_starts_at_max(struct kunit *test)
{
	struct balloon_core_rate r = { .slow_cycles = 7 };

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	KUNIT_EXPECT_EQ(test, r.alloc, 2048U);
	KUNIT_EXPECT_EQ(test, r.free, 16384U);
	KUNIT_EXPECT_EQ(test, r.slow_cycles, 0U);
}

static void rate_cycle_slow_after_nosleep_failure(struct kunit *test)
{
	struct balloon_core_rate r;
	unsigned int cycle;

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	KUNIT_ASSERT_FALSE(test, balloon_core_rate_cycle_slow(&r));
	KUNIT_ASSERT_TRUE(test,
			  balloon_core_rate_nosleep_failed(&r, &vmw_balloon_limits, 0));

	/* Exactly the next slow_cycles cycles are slow, then fast again. */
	for (cycle = 0; cycle < vmw_balloon_limits.slow_cycles; cycle++)
		KUNIT_EXPECT_TRUE_MSG(test, balloon_core_rate_cycle_slow(&r),
				      "cycle %u", cycle);
	KUNIT_EXPECT_FALSE(test, balloon_core_rate_cycle_slow(&r));
}

static void rate_inflate_budget_fast_and_slow(struct kunit *test)
{
	struct balloon_core_rate r;

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	KUNIT_EXPECT_EQ(test,
			balloon_core_rate_inflate_budget(&r, &vmw_balloon_limits, false),
			16384U);
	KUNIT_EXPECT_EQ(test,
			balloon_core_rate_inflate_budget(&r, &vmw_balloon_limits, true),
			2048U);
	r.alloc = 0;
	KUNIT_EXPECT_EQ(test,
			balloon_core_rate_inflate_budget(&r, &vmw_balloon_limits, true),
			1U);
}

static void rate_nosleep_failed_continues_below_rate(struct kunit *test)
{
	struct balloon_core_rate r;

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	KUNIT_EXPECT_TRUE(test,
			  balloon_core_rate_nosleep_failed(&r, &vmw_balloon_limits,
							   2047));
	KUNIT_EXPECT_EQ(test, r.slow_cycles, 4U);
}

static void rate_nosleep_failed_stops_at_rate(struct kunit *test)
{
	struct balloon_core_rate r;

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	KUNIT_EXPECT_FALSE(test,
			   balloon_core_rate_nosleep_failed(&r, &vmw_balloon_limits,
							    2048));
	KUNIT_EXPECT_EQ(test, r.slow_cycles, 4U);
}

static void rate_sleep_failed_halves_to_min(struct kunit *test)
{
	static const unsigned int expect[] = { 1024, 512, 512 };
	struct balloon_core_rate r;
	unsigned int i;

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	for (i = 0; i < ARRAY_SIZE(expect); i++) {
		balloon_core_rate_sleep_failed(&r, &vmw_balloon_limits);
		KUNIT_EXPECT_EQ_MSG(test, r.alloc, expect[i], "step %u", i);
	}
}

/* One cycle's pages done -> the sleeping rate after the cycle. */
struct rate_inflated_case {
	unsigned int before;
	unsigned int done;
	unsigned int after;
};

static const struct rate_inflated_case rate_inflated_cases[] = {
	{ 512, 0, 512 },	/* short cycle: no growth */
	{ 512, 511, 512 },
	{ 512, 512, 528 },	/* one full rate: +16 */
	{ 512, 1600, 560 },	/* three full rates: +48 */
	{ 2040, 2040, 2048 },	/* capped at alloc_max */
	{ 2048, 16384, 2048 },
};

static void rate_inflated_case_desc(const struct rate_inflated_case *c,
				    char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%u + %u done -> %u",
		 c->before, c->done, c->after);
}

KUNIT_ARRAY_PARAM(rate_inflated, rate_inflated_cases, rate_inflated_case_desc);

static void rate_inflated_grows_per_full_rate(struct kunit *test)
{
	const struct rate_inflated_case *c = test->param_value;
	struct balloon_core_rate r = { .alloc = c->before };

	balloon_core_rate_inflated(&r, &vmw_balloon_limits, c->done);
	KUNIT_EXPECT_EQ(test, r.alloc, c->after);
}

static void rate_sleep_progression_recovers(struct kunit *test)
{
	struct balloon_core_rate r;
	unsigned int cycles = 0;

	/* Two failures take 2048 down to 512 ... */
	balloon_core_rate_init(&r, &vmw_balloon_limits);
	balloon_core_rate_sleep_failed(&r, &vmw_balloon_limits);
	balloon_core_rate_sleep_failed(&r, &vmw_balloon_limits);
	KUNIT_ASSERT_EQ(test, r.alloc, 512U);

	/* ... and full cycles climb back by 16 each, to exactly 2048. */
	while (r.alloc < vmw_balloon_limits.alloc_max) {
		unsigned int before = r.alloc;

		balloon_core_rate_inflated(&r, &vmw_balloon_limits, r.alloc);
		KUNIT_ASSERT_EQ(test, r.alloc, before + 16);
		cycles++;
	}
	KUNIT_EXPECT_EQ(test, cycles, (2048U - 512U) / 16U);
	KUNIT_EXPECT_EQ(test, r.alloc, 2048U);
}

static void rate_deflate_failed_halves_to_min(struct kunit *test)
{
	static const unsigned int expect[] = {
		8192, 4096, 2048, 1024, 512, 512,
	};
	struct balloon_core_rate r;
	unsigned int i;

	balloon_core_rate_init(&r, &vmw_balloon_limits);
	for (i = 0; i < ARRAY_SIZE(expect); i++) {
		balloon_core_rate_deflate_failed(&r, &vmw_balloon_limits);
		KUNIT_EXPECT_EQ_MSG(test, r.free, expect[i], "step %u", i);
	}
}

static void rate_deflated_grows_to_max(struct kunit *test)
{
	struct balloon_core_rate r = { .free = 512 };

	balloon_core_rate_deflated(&r, &vmw_balloon_limits);
	KUNIT_EXPECT_EQ(test, r.free, 528U);
	r.free = 16380;
	balloon_core_rate_deflated(&r, &vmw_balloon_limits);
	KUNIT_EXPECT_EQ(test, r.free, 16384U);
}

static void rate_limit_brings_rates_within_bounds(struct kunit *test)
{
	struct balloon_core_limits l = vmw_balloon_limits;
	struct balloon_core_rate r = { .alloc = 2048, .free = 16384 };

	/* Lower maxima bound the next cycle... */
	l.alloc_max = 1000;
	l.free_max = 4000;
	balloon_core_rate_limit(&r, &l);
	KUNIT_EXPECT_EQ(test, r.alloc, 1000U);
	KUNIT_EXPECT_EQ(test, r.free, 4000U);
	/* ...and so do higher minima. */
	l.alloc_min = 1500;
	l.alloc_max = 2048;
	l.free_min = 5000;
	l.free_max = 8000;
	balloon_core_rate_limit(&r, &l);
	KUNIT_EXPECT_EQ(test, r.alloc, 1500U);
	KUNIT_EXPECT_EQ(test, r.free, 5000U);
	/* A rate within the bounds stays where it is. */
	r.free = 6000;
	balloon_core_rate_limit(&r, &l);
	KUNIT_EXPECT_EQ(test, r.free, 6000U);
}

static struct kunit_case balloon_core_rate_cases[] = {
	KUNIT_CASE(rate_init_starts_at_max),
	KUNIT_CASE(rate_cycle_slow_after_nosleep_failure),
	KUNIT_CASE(rate_inflate_budget_fast_and_slow),
	KUNIT_CASE(rate_nosleep_failed_continues_below_rate),
	KUNIT_CASE(rate_nosleep_failed_stops_at_rate),
	KUNIT_CASE(rate_sleep_failed_halves_to_min),
	KUNIT_CASE_PARAM(rate_inflated_grows_per_full_rate,
			 rate_inflated_gen_params),
	KUNIT_CASE(rate_sleep_progression_recovers),
	KUNIT_CASE(rate_deflate_failed_halves_to_min),
	KUNIT_CASE(rate_deflated_grows_to_max),
	KUNIT_CASE(rate_limit_brings_rates_within_bounds),
	{ }
};

static struct kunit_suite balloon_core_rate_suite = {
	.name = "balloon_core_rate",
	.test_cases = balloon_core_rate_cases,
};

/* Parameter name, value, expected verdict against the default settings. */
struct param_case {
	const char *name;
	unsigned int val;
	int ret;
};

static const struct param_case param_cases[] = {
	{ "nosleep_max", 16384, 0 },
	{ "nosleep_max", 0, -ERANGE },
	{ "nosleep_max", 65537, -ERANGE },
	{ "alloc_min", 2048, 0 },
	{ "alloc_min", 2049, -EINVAL },		/* above alloc_max */
	{ "alloc_max", 511, -EINVAL },		/* below alloc_min */
	{ "alloc_max", 65536, 0 },
	{ "free_min", 16385, -EINVAL },
	{ "free_max", 262145, -ERANGE },
	{ "rate_inc", 0, 0 },
	{ "rate_inc", 4097, -ERANGE },
	{ "slow_cycles", 101, -ERANGE },
	{ "max_refused", 0, -ERANGE },
	{ "no_such_param", 1, -ENOENT },
};

static void param_case_desc(const struct param_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s=%u", c->name, c->val);
}

KUNIT_ARRAY_PARAM(param, param_cases, param_case_desc);

static void param_check_ranges(struct kunit *test)
{
	const struct param_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, balloon_core_param_check(c->name, c->val),
			c->ret);
}

/* The parameters default to vmw_balloon.c's limits. */
static void param_limits_default_to_vmw_balloon(struct kunit *test)
{
	struct balloon_core_limits l;

	balloon_core_limits_get(&l);
	KUNIT_EXPECT_EQ(test, l.nosleep_max, vmw_balloon_limits.nosleep_max);
	KUNIT_EXPECT_EQ(test, l.alloc_min, vmw_balloon_limits.alloc_min);
	KUNIT_EXPECT_EQ(test, l.alloc_max, vmw_balloon_limits.alloc_max);
	KUNIT_EXPECT_EQ(test, l.free_min, vmw_balloon_limits.free_min);
	KUNIT_EXPECT_EQ(test, l.free_max, vmw_balloon_limits.free_max);
	KUNIT_EXPECT_EQ(test, l.rate_inc, vmw_balloon_limits.rate_inc);
	KUNIT_EXPECT_EQ(test, l.slow_cycles, vmw_balloon_limits.slow_cycles);
	KUNIT_EXPECT_EQ(test, l.max_refused, vmw_balloon_limits.max_refused);
}

static struct kunit_case balloon_core_param_cases[] = {
	KUNIT_CASE_PARAM(param_check_ranges, param_gen_params),
	KUNIT_CASE(param_limits_default_to_vmw_balloon),
	{ }
};

static struct kunit_suite balloon_core_param_suite = {
	.name = "balloon_core_param",
	.test_cases = balloon_core_param_cases,
};

kunit_test_suites(&balloon_core_rate_suite, &balloon_core_param_suite);

MODULE_DESCRIPTION("KUnit tests for balloon_core rates and parameters");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(BALLOON_KUNIT_NS);
