// SPDX-License-Identifier: GPL-2.0
/*
 * debugfs views of every balloon: /sys/kernel/debug/balloon/<name>/.
 *
 * "vmmemctl" keeps the line names and columns of the vmmemctl file of
 * vmw_balloon.c before Linux 4.20, for tools that read them; "stats" lists
 * every counter as "name value" lines for scripts.  Both are root-only.
 */
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "internal.h"

static struct dentry *balloon_core_debugfs_root;

static const char * const balloon_core_stat_names[BALLOON_CORE_STAT_NR] = {
	[BALLOON_CORE_STAT_TIMER] = "timer",
	[BALLOON_CORE_STAT_KICK] = "kick",
	[BALLOON_CORE_STAT_START] = "start",
	[BALLOON_CORE_STAT_START_FAIL] = "start_fail",
	[BALLOON_CORE_STAT_TARGET] = "target",
	[BALLOON_CORE_STAT_TARGET_FAIL] = "target_fail",
	[BALLOON_CORE_STAT_INFLATE] = "inflate",
	[BALLOON_CORE_STAT_INFLATE_FAIL] = "inflate_fail",
	[BALLOON_CORE_STAT_DEFLATE] = "deflate",
	[BALLOON_CORE_STAT_DEFLATE_FAIL] = "deflate_fail",
	[BALLOON_CORE_STAT_ALLOC] = "alloc",
	[BALLOON_CORE_STAT_ALLOC_FAIL] = "alloc_fail",
	[BALLOON_CORE_STAT_SLEEP_ALLOC] = "sleep_alloc",
	[BALLOON_CORE_STAT_SLEEP_ALLOC_FAIL] = "sleep_alloc_fail",
	[BALLOON_CORE_STAT_REFUSED_ALLOC] = "refused_alloc",
	[BALLOON_CORE_STAT_REFUSED_FREE] = "refused_free",
	[BALLOON_CORE_STAT_FREE] = "free",
	[BALLOON_CORE_STAT_RESET] = "reset",
	[BALLOON_CORE_STAT_CLAMPED] = "target_clamped",
	[BALLOON_CORE_STAT_HUGE_ALLOC] = "huge_alloc",
	[BALLOON_CORE_STAT_HUGE_ALLOC_FAIL] = "huge_alloc_fail",
	[BALLOON_CORE_STAT_HUGE_FREE] = "huge_free",
	[BALLOON_CORE_STAT_HUGE_SPLIT] = "huge_split",
	[BALLOON_CORE_STAT_PRESSURE] = "pressure",
	[BALLOON_CORE_STAT_PRESSURE_FREE] = "pressure_free",
	[BALLOON_CORE_STAT_HOLDOFF] = "holdoff",
	[BALLOON_CORE_STAT_MIGRATE] = "migrate",
	[BALLOON_CORE_STAT_MIGRATE_FAIL] = "migrate_fail",
	[BALLOON_CORE_STAT_BLOCK_ALLOC] = "block_alloc",
	[BALLOON_CORE_STAT_FLOOR] = "floor",
	[BALLOON_CORE_STAT_RECLAIMING] = "reclaiming",
	[BALLOON_CORE_STAT_OOM] = "oom",
};

static int balloon_core_vmmemctl_show(struct seq_file *f, void *unused)
{
	struct balloon_core_dev *bdev = f->private;
	struct balloon_core_limits l;

#define S(x) balloon_core_stat_read(bdev, BALLOON_CORE_STAT_##x)
	balloon_core_limits_get(&l);
	seq_printf(f,
		   "target:             %8llu pages\n"
		   "current:            %8llu pages\n",
		   READ_ONCE(bdev->target), READ_ONCE(bdev->size));
	seq_printf(f,
		   "rateNoSleepAlloc:   %8u pages/cycle (limit)\n"
		   "rateSleepAlloc:     %8u pages/cycle\n"
		   "rateFree:           %8u pages/cycle\n",
		   l.nosleep_max, READ_ONCE(bdev->rate.alloc),
		   READ_ONCE(bdev->rate.free));
	/* guestType: the guest identification is part of the start handshake. */
	seq_printf(f,
		   "\n"
		   "timer:              %8llu\n"
		   "start:              %8llu (%4llu failed)\n"
		   "guestType:          %8llu (%4llu failed)\n"
		   "lock:               %8llu (%4llu failed)\n"
		   "unlock:             %8llu (%4llu failed)\n"
		   "target:             %8llu (%4llu failed)\n"
		   "primNoSleepAlloc:   %8llu (%4llu failed)\n"
		   "primCanSleepAlloc:  %8llu (%4llu failed)\n"
		   "primFree:           %8llu\n"
		   "errAlloc:           %8llu\n"
		   "errFree:            %8llu\n",
		   S(TIMER), S(START), S(START_FAIL), S(START), S(START_FAIL),
		   S(INFLATE), S(INFLATE_FAIL), S(DEFLATE), S(DEFLATE_FAIL),
		   S(TARGET), S(TARGET_FAIL), S(ALLOC), S(ALLOC_FAIL),
		   S(SLEEP_ALLOC), S(SLEEP_ALLOC_FAIL), S(FREE),
		   S(REFUSED_ALLOC), S(REFUSED_FREE));
#undef S
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(balloon_core_vmmemctl);

static int balloon_core_stats_show(struct seq_file *f, void *unused)
{
	struct balloon_core_dev *bdev = f->private;
	unsigned int i;

	seq_printf(f, "size_kib %llu\n", READ_ONCE(bdev->size) * 4);
	seq_printf(f, "target_kib %llu\n", READ_ONCE(bdev->target) * 4);
	seq_printf(f, "floor_kib %llu\n", READ_ONCE(bdev->floor) * 4);
	seq_printf(f, "floor_refused_kib %llu\n",
		   READ_ONCE(bdev->floor_refused) * 4);
	/* Base pages in 4 KiB units, as every size here: 16 KiB pages too. */
	seq_printf(f, "pages_4k %lu\n",
		   READ_ONCE(bdev->nr_pages[0]) * BALLOON_CORE_UNITS_PER_PAGE);
	seq_printf(f, "pages_2m %lu\n",
		   READ_ONCE(bdev->nr_pages[BALLOON_CORE_MAX_ORDER]));
	for (i = 0; i < BALLOON_CORE_STAT_NR; i++)
		seq_printf(f, "%s %llu\n", balloon_core_stat_names[i],
			   balloon_core_stat_read(bdev, i));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(balloon_core_stats);

/**
 * balloon_core_debugfs_add() - create a balloon's debugfs directory
 * @bdev: the balloon.
 *
 * debugfs failures are not errors: the balloon works without its views.
 *
 * Context: Process context.
 */
void balloon_core_debugfs_add(struct balloon_core_dev *bdev)
{
	bdev->debugfs = debugfs_create_dir(bdev->name,
					   balloon_core_debugfs_root);
	debugfs_create_file("vmmemctl", 0400, bdev->debugfs, bdev,
			    &balloon_core_vmmemctl_fops);
	debugfs_create_file("stats", 0400, bdev->debugfs, bdev,
			    &balloon_core_stats_fops);
}

/**
 * balloon_core_debugfs_remove() - remove a balloon's debugfs directory
 * @bdev: the balloon.
 *
 * Context: Process context; waits for open readers to finish.
 */
void balloon_core_debugfs_remove(struct balloon_core_dev *bdev)
{
	debugfs_remove(bdev->debugfs);
	bdev->debugfs = NULL;
}

/**
 * balloon_core_debugfs_dir() - a balloon's debugfs directory
 * @bdev: the balloon, registered.
 *
 * For a transport's own files, next to the core's.  They go when
 * balloon_core_unregister() removes the directory with all it holds.
 *
 * Context: Process context, between balloon_core_register() and
 * balloon_core_unregister().
 * Return: the directory; an error pointer when debugfs is unavailable,
 * which debugfs_create_file() and friends accept and ignore.
 */
struct dentry *balloon_core_debugfs_dir(struct balloon_core_dev *bdev)
{
	return bdev->debugfs;
}
EXPORT_SYMBOL_NS_GPL(balloon_core_debugfs_dir, BALLOON_CORE_NS);

/**
 * balloon_core_debugfs_init() - create /sys/kernel/debug/balloon
 *
 * Context: Module init.
 * Return: 0; debugfs failures are not fatal.
 */
int balloon_core_debugfs_init(void)
{
	balloon_core_debugfs_root = debugfs_create_dir("balloon", NULL);
	return 0;
}

/**
 * balloon_core_debugfs_exit() - remove /sys/kernel/debug/balloon
 *
 * Context: Module exit.
 */
void balloon_core_debugfs_exit(void)
{
	debugfs_remove(balloon_core_debugfs_root);
}
