// SPDX-License-Identifier: GPL-2.0
/*
 * The guest floor: memory the balloon always leaves the guest, whatever
 * the host asks, and the back-off while the guest is reclaiming hard.
 *
 * A host may set any target, up to all of the guest's memory.  Taken at
 * its word it drains the zones, and the guest OOM-kills its processes and
 * then panics; the in-tree virtio and VMware drivers do just that.  Here
 * the balloon never grows beyond the guest's size less the floor:
 *
 *	floor = curve(guest) + the zones' high watermarks
 *
 * "guest" is the memory the guest was given, ballooned pages included
 * (Hyper-V's driver, whose curve this follows, measures totalram_pages(),
 * which shrinks as its balloon grows, so its floor sinks as the balloon
 * inflates).  The curve is continuous and piecewise linear:
 *
 *	guest (MiB)  floor (MiB)  slope above
 *	       0           8          1/2
 *	     128          72          1/4
 *	     512         168          1/8
 *	    2048         360          1/16
 *	    8192         744          1/32
 *	   32768        1512          1/32
 *
 * The watermarks are what kswapd keeps free; a balloon that took them
 * would keep it, and direct reclaim, running for good.
 *
 * The host sees the balloon stop short of its target, which both
 * protocols allow.  Above the floor, the balloon still stops inflating
 * while the guest is reclaiming hard: while pages it evicted recently are
 * being faulted back in (workingset activations, the kernel's thrashing
 * signal) faster than %BALLOON_CORE_THRASH_PAGES a second.  Where the
 * host allows deflate under pressure, the balloon then gives pages back,
 * as the OOM notifier does, and a floor raised at run time takes the
 * balloon back below it at its next work cycle.
 *
 * The module parameter "floor" is "auto" (the above), 0 (no floor and no
 * back-off: the in-tree drivers' behaviour) or a size ("512M"), which
 * replaces the curve but never goes below the watermarks.  The size is
 * what the guest keeps, ballooned pages aside, of the memory it was given.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/moduleparam.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/string.h>
#include <linux/vmstat.h>

#include "internal.h"
#include "trace.h"

/* The parameter's "auto": no page count can be this large. */
#define BALLOON_CORE_FLOOR_AUTO		ULONG_MAX

/*
 * Refaults a second, in pages, above which the guest counts as reclaiming
 * hard, and how long inflation then waits.
 */
#define BALLOON_CORE_THRASH_PAGES	256
#define BALLOON_CORE_THRASH_HOLDOFF_MS	5000

/* In pages; written under kernel_param_lock(), read with READ_ONCE(). */
static unsigned long balloon_core_floor_param = BALLOON_CORE_FLOOR_AUTO;

/*
 * "auto", or a decimal size in bytes with an optional K, M, G or T suffix
 * ("0", "536870912", "512M"), rounded up to whole pages.  Anything else,
 * or a size too large to count in pages, is -EINVAL.
 */
VISIBLE_IF_KUNIT int balloon_core_floor_parse(const char *val,
					      unsigned long *pages)
{
	static const char suffixes[] = "KMGT";
	size_t len = strcspn(val, "\n"), digits = strspn(val, "0123456789");
	unsigned long long n, bytes, count;
	unsigned int shift = 0;
	const char *suffix;
	char num[24];

	/* Nothing may follow a newline (sysfs writes end in one). */
	if (val[len] && val[len + 1])
		return -EINVAL;
	if (len == 4 && !strncmp(val, "auto", 4)) {
		*pages = BALLOON_CORE_FLOOR_AUTO;
		return 0;
	}
	if (!digits || digits >= sizeof(num))
		return -EINVAL;
	if (len == digits + 1) {
		suffix = strchr(suffixes, toupper(val[digits]));
		if (!suffix)
			return -EINVAL;
		shift = 10 * (suffix - suffixes + 1);
	} else if (len != digits) {
		return -EINVAL;
	}
	memcpy(num, val, digits);
	num[digits] = '\0';
	if (kstrtoull(num, 10, &n) || check_shl_overflow(n, shift, &bytes))
		return -EINVAL;
	count = (bytes >> PAGE_SHIFT) + !!(bytes & ~PAGE_MASK);
	if (count >= BALLOON_CORE_FLOOR_AUTO)
		return -EINVAL;
	*pages = count;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_floor_parse);

static int balloon_core_floor_set(const char *val,
				  const struct kernel_param *kp)
{
	unsigned long pages;
	int ret;

	ret = balloon_core_floor_parse(val, &pages);
	if (ret) {
		/* At load time a bad value must not stop the module loading. */
		if (!balloon_core_params_are_live()) {
			pr_warn("floor: ignored \"%.*s\", not \"auto\" or a size: keeping auto\n",
				(int)strcspn(val, "\n"), val);
			return 0;
		}
		pr_warn_ratelimited("floor: rejected \"%.*s\": \"auto\", 0 or a size such as 512M\n",
				    (int)strcspn(val, "\n"), val);
		return ret;
	}
	WRITE_ONCE(balloon_core_floor_param, pages);
	return 0;
}

static int balloon_core_floor_get(char *buf, const struct kernel_param *kp)
{
	unsigned long pages = READ_ONCE(balloon_core_floor_param);
	unsigned long long kib = (unsigned long long)pages << (PAGE_SHIFT - 10);

	if (pages == BALLOON_CORE_FLOOR_AUTO)
		return sysfs_emit(buf, "auto\n");
	if (!pages)
		return sysfs_emit(buf, "0\n");
	if (kib % 1024)
		return sysfs_emit(buf, "%lluK\n", kib);
	return sysfs_emit(buf, "%lluM\n", kib / 1024);
}

VISIBLE_IF_KUNIT const struct kernel_param_ops balloon_core_floor_ops = {
	.set = balloon_core_floor_set,
	.get = balloon_core_floor_get,
};
EXPORT_SYMBOL_IF_KUNIT(balloon_core_floor_ops);

module_param_cb(floor, &balloon_core_floor_ops, NULL, 0644);
MODULE_PARM_DESC(floor,
		 "Memory the balloon always leaves the guest: auto (from its size and watermarks), 0 (none), or a size such as 512M (default auto)");

/**
 * balloon_core_floor_curve() - the automatic floor for a guest's size
 * @guest: the guest's memory, in pages.
 *
 * Return: the floor, in pages, before the watermarks are added.
 */
VISIBLE_IF_KUNIT unsigned long balloon_core_floor_curve(unsigned long guest)
{
	unsigned long mib = guest >> (20 - PAGE_SHIFT), floor;

	if (mib < 128)
		floor = 8 + mib / 2;
	else if (mib < 512)
		floor = 40 + mib / 4;
	else if (mib < 2048)
		floor = 104 + mib / 8;
	else if (mib < 8192)
		floor = 232 + mib / 16;
	else
		floor = 488 + mib / 32;
	return floor << (20 - PAGE_SHIFT);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_floor_curve);

/*
 * What kswapd keeps free: the high watermarks of every populated zone,
 * without the boost that fragmentation adds for a while
 * (high_wmark_pages() counts it), so that the floor holds still.  On a
 * kernel with transparent huge pages these are larger than
 * min_free_kbytes alone would make them: khugepaged raises it.
 */
static unsigned long balloon_core_watermarks(void)
{
	unsigned long pages = 0;
	int nid, i;

	for_each_online_node(nid) {
		pg_data_t *pgdat = NODE_DATA(nid);

		for (i = 0; i < MAX_NR_ZONES; i++) {
			struct zone *zone = &pgdat->node_zones[i];

			if (populated_zone(zone))
				pages += READ_ONCE(zone->_watermark[WMARK_HIGH]);
		}
	}
	return pages;
}

/* The guest's memory in pages, ballooned pages included. */
static unsigned long balloon_core_guest_pages(struct balloon_core_dev *bdev)
{
	unsigned long pages = totalram_pages();

	/* Pages taken out of the managed count are still the guest's. */
	if (bdev->caps.flags & BALLOON_CORE_CAP_ADJUST_MANAGED)
		pages += bdev->size / BALLOON_CORE_UNITS_PER_PAGE;
	return pages;
}

/**
 * balloon_core_guest_units() - the guest's memory, ballooned pages included
 * @bdev: the balloon.
 *
 * Context: Work lock held.
 * Return: the guest's memory in 4 KiB units.
 */
u64 balloon_core_guest_units(struct balloon_core_dev *bdev)
{
	return (u64)balloon_core_guest_pages(bdev) * BALLOON_CORE_UNITS_PER_PAGE;
}

/*
 * The floor now, in pages, for a guest of @guest pages: never more than
 * the guest, 0 when there is none.
 */
static unsigned long balloon_core_floor_pages(unsigned long guest)
{
	unsigned long set = READ_ONCE(balloon_core_floor_param);
	unsigned long floor;

	if (!set)
		return 0;
	if (set == BALLOON_CORE_FLOOR_AUTO)
		floor = balloon_core_floor_curve(guest) +
			balloon_core_watermarks();
	else
		floor = max(set, balloon_core_watermarks());
	return min(floor, guest);
}

/**
 * balloon_core_floor_target() - the target the floor leaves of the host's
 * @bdev: the balloon.
 * @target: the host's target; more than the guest's memory is cut too.
 *
 * Records the floor and how much of @target it refused, for debugfs.  A
 * balloon above the floor (the floor rose) goes back below it only where
 * the host allows the guest to take pages back.
 *
 * Context: Work lock held.
 * Return: the target the balloon moves towards, in 4 KiB units.
 */
u64 balloon_core_floor_target(struct balloon_core_dev *bdev, u64 target)
{
	unsigned long guest = balloon_core_guest_pages(bdev);
	u64 floor = (u64)balloon_core_floor_pages(guest) *
		    BALLOON_CORE_UNITS_PER_PAGE;
	u64 guest_units = (u64)guest * BALLOON_CORE_UNITS_PER_PAGE;
	/* One reading of the guest's size: floor <= guest, no wrap. */
	u64 limit = guest_units - floor;

	WRITE_ONCE(bdev->floor, floor);
	if (target <= limit) {
		WRITE_ONCE(bdev->floor_refused, 0);
		return target;
	}
	if (!bdev->floor_refused)
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_FLOOR);
	WRITE_ONCE(bdev->floor_refused, target - limit);
	if (!test_and_set_bit(BALLOON_CORE_F_FLOOR_SAID, &bdev->flags))
		dev_info(bdev->parent,
			 "%s: host target of %llu MiB left the guest below its floor of %llu MiB: the balloon stops at %llu MiB\n",
			 bdev->name, target >> 8, floor >> 8, limit >> 8);
	if (bdev->caps.flags & BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE)
		return limit;
	/* Stay above the floor rather than take back what the host holds. */
	return max(limit, min(bdev->size, target));
}

/**
 * balloon_core_refaults() - pages the guest evicted and soon needed again
 *
 * The kernel's workingset detection counts a refault as an activation
 * when the page was evicted recently enough that a little more memory
 * would have kept it: thrashing, not streaming I/O, which refaults too.
 * A static stub point for the KUnit suites.
 *
 * Return: the running count of workingset activations, anonymous and file.
 */
VISIBLE_IF_KUNIT unsigned long balloon_core_refaults(void)
{
	KUNIT_STATIC_STUB_REDIRECT(balloon_core_refaults);
	return global_node_page_state(WORKINGSET_ACTIVATE_ANON) +
	       global_node_page_state(WORKINGSET_ACTIVATE_FILE);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_refaults);

/**
 * balloon_core_floor_init() - start watching the guest's reclaim
 * @bdev: the balloon, being registered.
 */
void balloon_core_floor_init(struct balloon_core_dev *bdev)
{
	bdev->refaults = balloon_core_refaults();
	bdev->refaults_at = jiffies;
}

/**
 * balloon_core_floor_reclaiming() - is the guest reclaiming hard?
 * @bdev: the balloon.
 * @l: the cycle's limits.
 *
 * Called once a cycle.  When refaults came faster than
 * %BALLOON_CORE_THRASH_PAGES a second since the last call, inflation is
 * held off for %BALLOON_CORE_THRASH_HOLDOFF_MS and, where the host allows
 * it, the balloon gives pages back as under memory pressure.
 *
 * Context: Process context, work lock held; may sleep.
 * Return: true when the guest is reclaiming hard.
 */
bool balloon_core_floor_reclaiming(struct balloon_core_dev *bdev,
				   const struct balloon_core_limits *l)
{
	unsigned long now = jiffies, refaults = balloon_core_refaults();
	unsigned long span = now - bdev->refaults_at;
	unsigned long delta = refaults - bdev->refaults;

	/*
	 * Cycles run back to back while the balloon moves: judge the rate
	 * over a tenth of a second at least, not over one short cycle.
	 */
	if (span < HZ / 10)
		return false;
	bdev->refaults = refaults;
	bdev->refaults_at = now;
	if (!READ_ONCE(balloon_core_floor_param) ||
	    (u64)delta * HZ <= (u64)BALLOON_CORE_THRASH_PAGES * span)
		return false;

	trace_balloon_core_reclaiming(bdev, delta, jiffies_to_msecs(span));
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_RECLAIMING);
	balloon_core_hold_off(bdev, BALLOON_CORE_THRASH_HOLDOFF_MS);
	balloon_core_pressure_deflate(bdev, l);
	return true;
}
