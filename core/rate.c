// SPDX-License-Identifier: GPL-2.0
/*
 * Adaptive inflate and deflate rates, and the module parameters bounding
 * them.
 *
 * The policy is the one VMware's balloon has used since 2010: inflate with
 * non-sleeping allocations at up to @nosleep_max pages a cycle while the
 * guest has memory to spare; when one fails, the guest is under pressure,
 * so continue with sleeping allocations at the adaptive rate and keep to
 * that rate for the next @slow_cycles cycles.  Rates halve on failure and
 * grow by @rate_inc after a cycle that used its whole budget.
 *
 * The rate steps are pure functions of their arguments, so that the KUnit
 * suites can walk the rate progressions exactly; the parameters' state
 * and its locking are below, with the parameters.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/string.h>

#include "internal.h"

/**
 * struct balloon_core_tunable - a module parameter with a validated range
 * @name: the parameter's name, for the log.
 * @val: the current value.
 * @min: lowest accepted value.
 * @max: highest accepted value.
 * @le: a tunable this one must not exceed, or %NULL.
 * @ge: a tunable this one must not fall below, or %NULL.
 */
struct balloon_core_tunable {
	const char *name;
	unsigned int val;
	unsigned int min;
	unsigned int max;
	struct balloon_core_tunable *le;
	struct balloon_core_tunable *ge;
};

#define BALLOON_CORE_TUNABLE(_name, _val, _min, _max)			\
	.name = #_name, .val = (_val), .min = (_min), .max = (_max)

static struct balloon_core_tunable alloc_min, free_min;

static struct balloon_core_tunable nosleep_max = {
	BALLOON_CORE_TUNABLE(nosleep_max, 16384, 1, 65536),
};

static struct balloon_core_tunable alloc_max = {
	BALLOON_CORE_TUNABLE(alloc_max, 2048, 1, 65536), .ge = &alloc_min,
};

static struct balloon_core_tunable alloc_min = {
	BALLOON_CORE_TUNABLE(alloc_min, 512, 1, 65536), .le = &alloc_max,
};

static struct balloon_core_tunable free_max = {
	BALLOON_CORE_TUNABLE(free_max, 16384, 1, 262144), .ge = &free_min,
};

static struct balloon_core_tunable free_min = {
	BALLOON_CORE_TUNABLE(free_min, 512, 1, 262144), .le = &free_max,
};

static struct balloon_core_tunable rate_inc = {
	BALLOON_CORE_TUNABLE(rate_inc, 16, 0, 4096),
};

static struct balloon_core_tunable slow_cycles = {
	BALLOON_CORE_TUNABLE(slow_cycles, 4, 0, 100),
};

static struct balloon_core_tunable max_refused = {
	BALLOON_CORE_TUNABLE(max_refused, 16, 1, 1024),
};

static struct balloon_core_tunable oom_pages = {
	BALLOON_CORE_TUNABLE(oom_pages, 256, 1, 65536),
};

static struct balloon_core_tunable pressure_holdoff_ms = {
	BALLOON_CORE_TUNABLE(pressure_holdoff_ms, 30000, 0, 3600000),
};

static struct balloon_core_tunable * const balloon_core_tunables[] = {
	&nosleep_max, &alloc_min, &alloc_max, &free_min, &free_max,
	&rate_inc, &slow_cycles, &max_refused, &oom_pages,
	&pressure_holdoff_ms,
};

/*
 * Values given at load time (modprobe.d, the modprobe command line, the
 * kernel command line for a built-in core) arrive one at a time, in the
 * order they were written, before the module's init runs.  Until then a
 * value is only brought into its own range, and balloon_core_params_settle()
 * judges each _min/_max pair once both are in, so that the order does not
 * matter and no value can make the module fail to load.  After it, a write
 * (sysfs) is judged at once, against the current values, and a bad one is
 * refused.  Written under kernel_param_lock(), which sysfs writes hold.
 */
static bool balloon_core_params_live;

/* Returns 0 if @v is acceptable for @t, else the errno a write gets. */
static int balloon_core_tunable_check(const struct balloon_core_tunable *t,
				      unsigned int v)
{
	if (v < t->min || v > t->max)
		return -ERANGE;
	if ((t->le && v > READ_ONCE(t->le->val)) ||
	    (t->ge && v < READ_ONCE(t->ge->val)))
		return -EINVAL;
	return 0;
}

/* A value given at load time: clamp it or ignore it, never fail. */
static void balloon_core_tunable_load(struct balloon_core_tunable *t,
				      const char *val)
{
	unsigned int v;

	if (kstrtouint(val, 0, &v)) {
		pr_warn("%s: ignored \"%.*s\", not a number from 0 to %u: keeping %u\n",
			t->name, (int)strcspn(val, "\n"), val, UINT_MAX, t->val);
		return;
	}
	if (v < t->min || v > t->max) {
		unsigned int c = clamp(v, t->min, t->max);

		pr_warn("%s=%u is outside %u..%u: using %u\n", t->name, v,
			t->min, t->max, c);
		v = c;
	}
	WRITE_ONCE(t->val, v);
}

static int balloon_core_tunable_set(const char *val,
				    const struct kernel_param *kp)
{
	struct balloon_core_tunable *t = kp->arg;
	unsigned int v;
	int ret;

	if (!balloon_core_params_live) {
		balloon_core_tunable_load(t, val);
		return 0;
	}
	ret = kstrtouint(val, 0, &v);
	if (!ret)
		ret = balloon_core_tunable_check(t, v);
	if (ret) {
		pr_warn_ratelimited("%s: rejected \"%.*s\": range is %u..%u%s\n",
				    t->name, (int)strcspn(val, "\n"), val,
				    t->min, t->max,
				    t->le ? ", at most the matching _max" :
				    t->ge ? ", at least the matching _min" : "");
		return ret;
	}
	WRITE_ONCE(t->val, v);
	return 0;
}

static int balloon_core_tunable_get(char *buf, const struct kernel_param *kp)
{
	const struct balloon_core_tunable *t = kp->arg;

	return sysfs_emit(buf, "%u\n", READ_ONCE(t->val));
}

static const struct kernel_param_ops balloon_core_tunable_ops = {
	.set = balloon_core_tunable_set,
	.get = balloon_core_tunable_get,
};

module_param_cb(nosleep_max, &balloon_core_tunable_ops, &nosleep_max, 0644);
MODULE_PARM_DESC(nosleep_max,
		 "Non-sleeping allocations per inflate cycle (1..65536, default 16384)");
module_param_cb(alloc_min, &balloon_core_tunable_ops, &alloc_min, 0644);
MODULE_PARM_DESC(alloc_min,
		 "Lowest sleeping-allocation rate, pages/cycle (1..65536, <= alloc_max, default 512)");
module_param_cb(alloc_max, &balloon_core_tunable_ops, &alloc_max, 0644);
MODULE_PARM_DESC(alloc_max,
		 "Highest sleeping-allocation rate, pages/cycle (1..65536, >= alloc_min, default 2048)");
module_param_cb(free_min, &balloon_core_tunable_ops, &free_min, 0644);
MODULE_PARM_DESC(free_min,
		 "Lowest deflate rate, pages/cycle (1..262144, <= free_max, default 512)");
module_param_cb(free_max, &balloon_core_tunable_ops, &free_max, 0644);
MODULE_PARM_DESC(free_max,
		 "Highest deflate rate, pages/cycle (1..262144, >= free_min, default 16384)");
module_param_cb(rate_inc, &balloon_core_tunable_ops, &rate_inc, 0644);
MODULE_PARM_DESC(rate_inc,
		 "Rate increase after a cycle that used its budget (0..4096, default 16)");
module_param_cb(slow_cycles, &balloon_core_tunable_ops, &slow_cycles, 0644);
MODULE_PARM_DESC(slow_cycles,
		 "Sleeping-only inflate cycles after a non-sleeping failure (0..100, default 4)");
module_param_cb(max_refused, &balloon_core_tunable_ops, &max_refused, 0644);
MODULE_PARM_DESC(max_refused,
		 "Refused pages tolerated per inflate cycle (1..1024, default 16)");
module_param_cb(oom_pages, &balloon_core_tunable_ops, &oom_pages, 0644);
MODULE_PARM_DESC(oom_pages,
		 "Pages given back per OOM notification, where the host allows it (1..65536, default 256)");
module_param_cb(pressure_holdoff_ms, &balloon_core_tunable_ops,
		&pressure_holdoff_ms, 0644);
MODULE_PARM_DESC(pressure_holdoff_ms,
		 "No inflation for this long after a pressure deflate, ms (0..3600000, default 30000)");

#if IS_ENABLED(CONFIG_KUNIT)
/**
 * balloon_core_param_check() - validate a value for a rate parameter
 * @name: the parameter's name, as in /sys/module/balloon_core/parameters.
 * @val: the value.
 *
 * Runs the checks a write to the parameter runs, without storing @val.
 *
 * Context: Any context.
 * Return: 0 if @val would be accepted, -ERANGE or -EINVAL if not, -ENOENT
 * for an unknown @name.
 */
int balloon_core_param_check(const char *name, unsigned int val)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(balloon_core_tunables); i++)
		if (!strcmp(name, balloon_core_tunables[i]->name))
			return balloon_core_tunable_check(balloon_core_tunables[i],
							  val);
	return -ENOENT;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_param_check);
#endif

/**
 * balloon_core_params_settle() - judge the load-time parameters together
 *
 * A _min above its _max (whichever was given, in whatever order) is
 * lowered to the _max, with one line in the log.  From then on parameter
 * writes are checked one by one and refused when bad.
 *
 * Context: Module init, process context; takes kernel_param_lock().
 */
void balloon_core_params_settle(void)
{
	unsigned int i;

	kernel_param_lock(THIS_MODULE);
	for (i = 0; i < ARRAY_SIZE(balloon_core_tunables); i++) {
		struct balloon_core_tunable *t = balloon_core_tunables[i];

		if (t->le && t->val > t->le->val) {
			pr_warn("%s=%u is above %s=%u: using %s=%u\n", t->name,
				t->val, t->le->name, t->le->val, t->name,
				t->le->val);
			WRITE_ONCE(t->val, t->le->val);
		}
	}
	balloon_core_params_live = true;
	kernel_param_unlock(THIS_MODULE);
}

/**
 * balloon_core_params_are_live() - are parameter writes judged at once?
 *
 * For the parameters of other files (core/floor.c), which follow the same
 * rule: a bad value given at load time is ignored, a bad write refused.
 *
 * Context: A parameter's set method (kernel_param_lock() held).
 * Return: true once module init has settled the load-time values.
 */
bool balloon_core_params_are_live(void)
{
	return balloon_core_params_live;
}

/**
 * balloon_core_limits_get() - snapshot the rate parameters
 * @l: where to store them.
 *
 * Context: Any context.
 */
void balloon_core_limits_get(struct balloon_core_limits *l)
{
	l->nosleep_max = READ_ONCE(nosleep_max.val);
	l->alloc_min = READ_ONCE(alloc_min.val);
	l->alloc_max = max(READ_ONCE(alloc_max.val), l->alloc_min);
	l->free_min = READ_ONCE(free_min.val);
	l->free_max = max(READ_ONCE(free_max.val), l->free_min);
	l->rate_inc = READ_ONCE(rate_inc.val);
	l->slow_cycles = READ_ONCE(slow_cycles.val);
	l->max_refused = READ_ONCE(max_refused.val);
	l->oom_pages = READ_ONCE(oom_pages.val);
	l->holdoff_ms = READ_ONCE(pressure_holdoff_ms.val);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_limits_get);

/**
 * balloon_core_rate_init() - start both rates at their maximum
 * @r: the rate state.
 * @l: the limits.
 *
 * A fresh balloon assumes the guest has memory to spare, as vmw_balloon.c
 * did from Linux 2.6.34 to 3.18.
 *
 * Context: Any context.
 */
void balloon_core_rate_init(struct balloon_core_rate *r,
			    const struct balloon_core_limits *l)
{
	r->alloc = l->alloc_max;
	r->free = l->free_max;
	r->slow_cycles = 0;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_init);

/**
 * balloon_core_rate_limit() - bring both rates within the current limits
 * @r: the rate state.
 * @l: the limits, as this cycle read them.
 *
 * Called at the start of every cycle, so that a new _min or _max
 * parameter bounds the very next cycle.
 *
 * Context: Any context.
 */
void balloon_core_rate_limit(struct balloon_core_rate *r,
			     const struct balloon_core_limits *l)
{
	r->alloc = clamp(r->alloc, l->alloc_min, l->alloc_max);
	r->free = clamp(r->free, l->free_min, l->free_max);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_limit);

/**
 * balloon_core_rate_cycle_slow() - account one work cycle
 * @r: the rate state.
 *
 * Called once at the start of every cycle.  A non-sleeping failure makes
 * exactly the following @slow_cycles cycles slow (vmw_balloon.c, Linux
 * 2.6.34 to 3.18, decremented before testing, which made one fewer slow
 * cycle than it asked for).
 *
 * Context: Any context.
 * Return: true if this cycle must start with sleeping allocations.
 */
bool balloon_core_rate_cycle_slow(struct balloon_core_rate *r)
{
	if (!r->slow_cycles)
		return false;
	r->slow_cycles--;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_cycle_slow);

/**
 * balloon_core_rate_inflate_budget() - pages this cycle may allocate
 * @r: the rate state.
 * @l: the limits.
 * @slow: what balloon_core_rate_cycle_slow() said for this cycle.
 *
 * Context: Any context.
 * Return: the allocation budget in pages, at least 1.
 */
unsigned int balloon_core_rate_inflate_budget(const struct balloon_core_rate *r,
					      const struct balloon_core_limits *l,
					      bool slow)
{
	return max(slow ? r->alloc : l->nosleep_max, 1U);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_inflate_budget);

/**
 * balloon_core_rate_nosleep_failed() - a non-sleeping allocation failed
 * @r: the rate state.
 * @l: the limits.
 * @done: pages inflated so far in this cycle.
 *
 * The guest is short of free memory: slow the next cycles down and, unless
 * this cycle already did a sleeping cycle's worth, go on with sleeping
 * allocations.
 *
 * Context: Any context.
 * Return: true to go on with sleeping allocations, false to end the cycle.
 */
bool balloon_core_rate_nosleep_failed(struct balloon_core_rate *r,
				      const struct balloon_core_limits *l,
				      unsigned int done)
{
	r->slow_cycles = l->slow_cycles;
	return done < r->alloc;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_nosleep_failed);

/**
 * balloon_core_rate_sleep_failed() - a sleeping allocation failed
 * @r: the rate state.
 * @l: the limits.
 *
 * The guest is under severe pressure: halve the sleeping rate.
 *
 * Context: Any context.
 */
void balloon_core_rate_sleep_failed(struct balloon_core_rate *r,
				    const struct balloon_core_limits *l)
{
	r->alloc = clamp(r->alloc / 2, l->alloc_min, l->alloc_max);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_sleep_failed);

/**
 * balloon_core_rate_inflated() - an inflate cycle ended without failure
 * @r: the rate state.
 * @l: the limits.
 * @done: pages of any size inflated in the cycle (allocations, as the
 *	budget counts them: a 2 MiB page is one).
 *
 * Grows the sleeping rate by @rate_inc for every full @alloc worth of pages
 * the cycle managed.
 *
 * Context: Any context.
 */
void balloon_core_rate_inflated(struct balloon_core_rate *r,
				const struct balloon_core_limits *l,
				unsigned int done)
{
	unsigned int alloc = clamp(r->alloc, l->alloc_min, l->alloc_max);
	u64 grown = alloc + (u64)(done / alloc) * l->rate_inc;

	r->alloc = min_t(u64, grown, l->alloc_max);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_inflated);

/**
 * balloon_core_rate_deflate_failed() - the host failed a deflate
 * @r: the rate state.
 * @l: the limits.
 *
 * Context: Any context.
 */
void balloon_core_rate_deflate_failed(struct balloon_core_rate *r,
				      const struct balloon_core_limits *l)
{
	r->free = clamp(r->free / 2, l->free_min, l->free_max);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_deflate_failed);

/**
 * balloon_core_rate_deflated() - a deflate cycle ended without failure
 * @r: the rate state.
 * @l: the limits.
 *
 * Context: Any context.
 */
void balloon_core_rate_deflated(struct balloon_core_rate *r,
				const struct balloon_core_limits *l)
{
	r->free = clamp(r->free + l->rate_inc, l->free_min, l->free_max);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_rate_deflated);
