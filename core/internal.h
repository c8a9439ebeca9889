/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Declarations shared between the files of balloon_core.ko and its KUnit
 * suites.  Nothing here is part of the transport contract.
 */
#ifndef _BALLOON_CORE_INTERNAL_H
#define _BALLOON_CORE_INTERNAL_H

#include <linux/atomic.h>
#include <linux/gfp.h>
#include <linux/moduleparam.h>

#include <balloon/core.h>

/**
 * struct balloon_core_limits - the tunable bounds of the adaptive rates
 * @nosleep_max: non-sleeping allocations per inflate cycle.
 * @alloc_min: lowest sleeping-allocation rate, pages per cycle.
 * @alloc_max: highest sleeping-allocation rate, pages per cycle.
 * @free_min: lowest deflate rate, pages per cycle.
 * @free_max: highest deflate rate, pages per cycle.
 * @rate_inc: step by which a rate grows after a good cycle.
 * @slow_cycles: cycles of sleeping-only inflation after a non-sleeping
 *	allocation failed.
 * @max_refused: refused pages tolerated in one inflate cycle.
 * @oom_pages: pages given back per OOM notification.
 * @holdoff_ms: how long inflation waits after a pressure deflate.
 *
 * The live values are module parameters; the work loop takes a snapshot
 * at the start of every cycle so that a concurrent parameter write never
 * changes a bound half-way through one.  A snapshot belongs to its taker
 * and needs no lock.
 */
struct balloon_core_limits {
	unsigned int nosleep_max;
	unsigned int alloc_min;
	unsigned int alloc_max;
	unsigned int free_min;
	unsigned int free_max;
	unsigned int rate_inc;
	unsigned int slow_cycles;
	unsigned int max_refused;
	unsigned int oom_pages;
	unsigned int holdoff_ms;
};

/*
 * Non-sleeping allocations never reclaim, never warn and never touch the
 * emergency reserves; sleeping ones may reclaim but give up before the OOM
 * killer would run (__GFP_NORETRY).  4 KiB pages are movable where balloon
 * compaction is built in (balloon_core_page_gfp()).
 */
#define BALLOON_CORE_GFP_NOSLEEP \
	((balloon_core_page_gfp() & ~__GFP_RECLAIM) | __GFP_NOWARN | \
	 __GFP_NOMEMALLOC)
#define BALLOON_CORE_GFP_SLEEP \
	(balloon_core_page_gfp() | __GFP_NOWARN | __GFP_NORETRY | \
	 __GFP_NOMEMALLOC)
/* Huge pages are a bonus: only take one the guest can spare right now. */
#define BALLOON_CORE_GFP_HUGE	(__GFP_HIGHMEM | __GFP_NOWARN | __GFP_NOMEMALLOC)
/* Blocks split into 4 KiB pages: the same, from movable memory. */
#define BALLOON_CORE_GFP_BLOCK	(BALLOON_CORE_GFP_NOSLEEP | __GFP_NORETRY)
/* Smallest block worth taking whole (8 pages). */
#define BALLOON_CORE_BLOCK_MIN_ORDER	3

/*
 * Allocations between two cond_resched() calls, as in vmw_balloon.c
 * (Linux 2.6.34 to 3.18).
 */
#define BALLOON_CORE_YIELD_EVERY	1024

/*
 * 4 KiB pages moved under one hold of the balloon's page lock, which keeps
 * interrupts off, and pages of any size handled between two reschedule
 * points wherever work grows with the balloon's size.
 */
#define BALLOON_CORE_LOCK_CHUNK	256

/* How often reset and unregister say they still wait for isolated pages. */
#define BALLOON_CORE_ISOLATED_WAIT_MS	10000

/*
 * Bits in &balloon_core_dev.flags, atomic bitops all; "@lock" is the work
 * lock.
 *
 * BALLOON_CORE_F_REGISTERED: kicks may queue the work.  Set by register
 *	before its first kick, without a lock; cleared by unregister under
 *	@kick_lock; tested under @kick_lock before @work is queued.
 * BALLOON_CORE_F_STARTED: @start succeeded since the last reset.  Set and
 *	cleared under @lock; tested under it, and without it by the work item
 *	choosing its next delay and by the OOM notifier deciding whether to
 *	kick, after they have dropped @lock.
 * BALLOON_CORE_F_RESET: a reset is pending.  Set from any context by
 *	balloon_core_request_reset(), with no lock; otherwise set and cleared
 *	under @lock.  Tested under @lock, and without it by migration and the
 *	OOM notifier deciding whether to kick, after they have dropped @lock.
 * BALLOON_CORE_F_HOLDOFF: no inflation before @holdoff_until.  Set, tested
 *	and cleared under @lock, with @holdoff_until.
 * BALLOON_CORE_F_PRESSURE: the OOM notifier asks for a pressure deflate.
 *	Set by the notifier without a lock, before it tries @lock; cleared
 *	under @lock by the notifier when it got the lock and deflates, else
 *	tested and cleared under @lock by the next cycle, which deflates.
 *	Tested without @lock by the inflate loop, which stops, and by the
 *	work item choosing its next delay.
 * BALLOON_CORE_F_FLOOR_SAID: the log has said once that the floor cut a
 *	host's target.  Set under @lock, never cleared.
 */
enum {
	BALLOON_CORE_F_REGISTERED,
	BALLOON_CORE_F_STARTED,
	BALLOON_CORE_F_RESET,
	BALLOON_CORE_F_HOLDOFF,
	BALLOON_CORE_F_PRESSURE,
	BALLOON_CORE_F_FLOOR_SAID,
};

/*
 * Until the next cycle's @start, no method but @size_changed may run: the
 * balloon is not started, or the host demanded a reset.
 */
static inline bool balloon_core_needs_start(struct balloon_core_dev *bdev)
{
	return test_bit(BALLOON_CORE_F_RESET, &bdev->flags) ||
	       !test_bit(BALLOON_CORE_F_STARTED, &bdev->flags);
}

static inline void balloon_core_stat_inc(struct balloon_core_dev *bdev,
					 enum balloon_core_stat stat)
{
	atomic64_inc(&bdev->stats[stat]);
}

static inline u64 balloon_core_stat_read(struct balloon_core_dev *bdev,
					 enum balloon_core_stat stat)
{
	return atomic64_read(&bdev->stats[stat]);
}

/* rate.c */
void balloon_core_params_settle(void);
bool balloon_core_params_are_live(void);
void balloon_core_limits_get(struct balloon_core_limits *l);
void balloon_core_rate_init(struct balloon_core_rate *r,
			    const struct balloon_core_limits *l);
void balloon_core_rate_limit(struct balloon_core_rate *r,
			     const struct balloon_core_limits *l);
bool balloon_core_rate_cycle_slow(struct balloon_core_rate *r);
unsigned int balloon_core_rate_inflate_budget(const struct balloon_core_rate *r,
					      const struct balloon_core_limits *l,
					      bool slow);
bool balloon_core_rate_nosleep_failed(struct balloon_core_rate *r,
				      const struct balloon_core_limits *l,
				      unsigned int done);
void balloon_core_rate_sleep_failed(struct balloon_core_rate *r,
				    const struct balloon_core_limits *l);
void balloon_core_rate_inflated(struct balloon_core_rate *r,
				const struct balloon_core_limits *l,
				unsigned int done);
void balloon_core_rate_deflate_failed(struct balloon_core_rate *r,
				      const struct balloon_core_limits *l);
void balloon_core_rate_deflated(struct balloon_core_rate *r,
				const struct balloon_core_limits *l);
#if IS_ENABLED(CONFIG_KUNIT)
int balloon_core_param_check(const char *name, unsigned int val);
struct page *balloon_core_alloc_page(gfp_t gfp, unsigned int order);
size_t balloon_core_dequeue_4k(struct balloon_core_dev *bdev,
			       struct list_head *list, size_t n);
bool balloon_core_run_cycle(struct balloon_core_dev *bdev);
unsigned long balloon_core_floor_curve(unsigned long guest);
int balloon_core_floor_parse(const char *val, unsigned long *pages);
extern const struct kernel_param_ops balloon_core_floor_ops;
unsigned long balloon_core_refaults(void);
#endif

/* deflate.c */
bool balloon_core_deflate(struct balloon_core_dev *bdev,
			  const struct balloon_core_limits *l,
			  u64 goal_units, bool to_target);

/* floor.c */
void balloon_core_floor_init(struct balloon_core_dev *bdev);
u64 balloon_core_guest_units(struct balloon_core_dev *bdev);
u64 balloon_core_floor_target(struct balloon_core_dev *bdev, u64 target);
bool balloon_core_floor_reclaiming(struct balloon_core_dev *bdev,
				   const struct balloon_core_limits *l);

/* main.c */
void balloon_core_reset(struct balloon_core_dev *bdev);

/* pressure.c */
int balloon_core_pressure_register(struct balloon_core_dev *bdev);
void balloon_core_pressure_unregister(struct balloon_core_dev *bdev);
bool balloon_core_held_off(struct balloon_core_dev *bdev);
void balloon_core_hold_off(struct balloon_core_dev *bdev, unsigned int ms);
unsigned long balloon_core_pressure_deflate(struct balloon_core_dev *bdev,
					    const struct balloon_core_limits *l);

/* inflate.c */
bool balloon_core_inflate(struct balloon_core_dev *bdev,
			  const struct balloon_core_limits *l, bool slow);

/* pages.c */
/* The marks of a ballooned page in &balloon_core_dev.own (pages.c). */
#define BALLOON_CORE_OWN_READY	XA_MARK_0	/* taken first */
#define BALLOON_CORE_OWN_KEPT	XA_MARK_1	/* the host kept it: last */
void balloon_core_pages_init(struct balloon_core_dev *bdev);
void balloon_core_pages_exit(struct balloon_core_dev *bdev);
int balloon_core_reserve(struct balloon_core_dev *bdev, struct page *page,
			 unsigned int order);
void balloon_core_unreserve(struct balloon_core_dev *bdev, struct page *page,
			    unsigned int order);
void balloon_core_free_page(struct balloon_core_dev *bdev, struct page *page,
			    unsigned int order, enum balloon_core_stat stat);
void balloon_core_pages_start(struct balloon_core_dev *bdev);
void balloon_core_enqueue(struct balloon_core_dev *bdev, struct page *page,
			  unsigned int order);
void balloon_core_enqueue_list(struct balloon_core_dev *bdev,
			       struct list_head *list);
unsigned int balloon_core_dequeue(struct balloon_core_dev *bdev,
				  unsigned int order, struct list_head *list,
				  unsigned int n);
void balloon_core_requeue(struct balloon_core_dev *bdev, unsigned int order,
			  struct list_head *list);
void balloon_core_requeue_kept(struct balloon_core_dev *bdev,
			       unsigned int order, struct list_head *list);
void balloon_core_free_list(struct balloon_core_dev *bdev,
			    struct list_head *list, unsigned int order);
gfp_t balloon_core_page_gfp(void);
unsigned long balloon_core_isolated(struct balloon_core_dev *bdev);
void balloon_core_wait_isolated(struct balloon_core_dev *bdev,
				unsigned long *warn_at);
void balloon_core_drop_all(struct balloon_core_dev *bdev);
void balloon_core_release_refused(struct balloon_core_dev *bdev);

/* debugfs.c */
int balloon_core_debugfs_init(void);
void balloon_core_debugfs_exit(void);
void balloon_core_debugfs_add(struct balloon_core_dev *bdev);
void balloon_core_debugfs_remove(struct balloon_core_dev *bdev);

#endif /* _BALLOON_CORE_INTERNAL_H */
