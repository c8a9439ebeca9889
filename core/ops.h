/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one way balloon_core reaches a transport's methods.
 *
 * Every call holds &balloon_core_dev.ops_lock for reading, so that no
 * method runs or starts once balloon_core_unregister() has cleared
 * &balloon_core_dev.ops (the way drivers/char/tpm/tpm-chip.c guards
 * chip->ops).  balloon_core_ops_get() and balloon_core_ops_put() are that
 * guard; the small wrappers below are the only code that calls a method,
 * and each counts its calls by the one rule of balloon_core_ops_done().
 */
#ifndef _BALLOON_CORE_OPS_H
#define _BALLOON_CORE_OPS_H

#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/rwsem.h>
#include <linux/string.h>

#include "internal.h"

/**
 * balloon_core_ops_get() - hold the transport's methods for a call
 * @bdev: the balloon.
 *
 * Context: Process context; may sleep (takes @bdev->ops_lock).
 * Return: the ops, with @bdev->ops_lock held for reading, to be released
 * with balloon_core_ops_put(); or %NULL, with nothing held, once
 * unregister has cleared them.
 */
static inline const struct balloon_core_ops *
balloon_core_ops_get(struct balloon_core_dev *bdev)
{
	down_read(&bdev->ops_lock);
	if (bdev->ops)
		return bdev->ops;
	up_read(&bdev->ops_lock);
	return NULL;
}

/**
 * balloon_core_ops_put() - release what balloon_core_ops_get() returned
 * @bdev: the balloon.
 *
 * Context: After a successful balloon_core_ops_get().
 */
static inline void balloon_core_ops_put(struct balloon_core_dev *bdev)
{
	up_read(&bdev->ops_lock);
}

/**
 * balloon_core_ops_done() - end a counted method call
 * @bdev: the balloon.
 * @ops: what balloon_core_ops_get() returned.
 * @stat: the method's call counter; its failure counter is the next one.
 * @ret: what the method returned, or the caller's value for "not called"
 *	when @ops is %NULL.
 * @answer: an error the method's contract makes an answer rather than a
 *	failure (-%EAGAIN from @inflate), or 0.
 *
 * The one rule for the call counters: a call counts when the method ran,
 * and counts as failed when it returned an error other than @answer.  A
 * call that found the transport gone ran nothing and counts nothing.
 *
 * Context: Releases @bdev->ops_lock when @ops is not %NULL.
 * Return: @ret.
 */
static inline int balloon_core_ops_done(struct balloon_core_dev *bdev,
					const struct balloon_core_ops *ops,
					enum balloon_core_stat stat, int ret,
					int answer)
{
	if (!ops)
		return ret;
	balloon_core_ops_put(bdev);
	balloon_core_stat_inc(bdev, stat);
	if (ret && ret != answer)
		balloon_core_stat_inc(bdev, stat + 1);
	return ret;
}

/* balloon_core_ops_done() finds each failure counter after its call counter. */
static_assert(BALLOON_CORE_STAT_START_FAIL - BALLOON_CORE_STAT_START == 1);
static_assert(BALLOON_CORE_STAT_TARGET_FAIL - BALLOON_CORE_STAT_TARGET == 1);
static_assert(BALLOON_CORE_STAT_INFLATE_FAIL - BALLOON_CORE_STAT_INFLATE == 1);
static_assert(BALLOON_CORE_STAT_DEFLATE_FAIL - BALLOON_CORE_STAT_DEFLATE == 1);

/*
 * The wrappers: one per method.  Each returns what the method returned,
 * or, when the transport is gone, -ENODEV for a required method and the
 * "nothing to do" value for an optional one.
 */

static inline int balloon_core_call_start(struct balloon_core_dev *bdev,
					  struct balloon_core_caps *caps)
{
	const struct balloon_core_ops *ops = balloon_core_ops_get(bdev);

	return balloon_core_ops_done(bdev, ops, BALLOON_CORE_STAT_START,
				     ops ? ops->start(bdev, caps) : -ENODEV, 0);
}

static inline int balloon_core_call_target(struct balloon_core_dev *bdev,
					   u64 *target)
{
	const struct balloon_core_ops *ops = balloon_core_ops_get(bdev);

	return balloon_core_ops_done(bdev, ops, BALLOON_CORE_STAT_TARGET,
				     ops ? ops->get_target(bdev, target) :
					   -ENODEV, 0);
}

/* Start filling @bdev's batch with pages of @order. */
static inline void balloon_core_batch_init(struct balloon_core_dev *bdev,
					   unsigned int order)
{
	bdev->batch.order = order;
	bdev->batch.count = 0;
}

/* The core clears the batch's results; the transport writes them. */
static inline void balloon_core_batch_clear(struct balloon_core_batch *batch)
{
	memset(batch->status, 0, batch->count * sizeof(*batch->status));
}

static inline int balloon_core_call_inflate(struct balloon_core_dev *bdev,
					    struct balloon_core_batch *batch)
{
	const struct balloon_core_ops *ops;

	balloon_core_batch_clear(batch);
	ops = balloon_core_ops_get(bdev);
	return balloon_core_ops_done(bdev, ops, BALLOON_CORE_STAT_INFLATE,
				     ops ? ops->inflate(bdev, batch) : -ENODEV,
				     -EAGAIN);
}

/* Without @deflate (or a transport), pages leave without telling the host. */
static inline int balloon_core_call_deflate(struct balloon_core_dev *bdev,
					    struct balloon_core_batch *batch)
{
	const struct balloon_core_ops *ops;

	balloon_core_batch_clear(batch);
	ops = balloon_core_ops_get(bdev);
	if (ops && !ops->deflate) {
		balloon_core_ops_put(bdev);
		return 0;
	}
	return balloon_core_ops_done(bdev, ops, BALLOON_CORE_STAT_DEFLATE,
				     ops ? ops->deflate(bdev, batch) : 0, 0);
}

static inline int balloon_core_call_detach(struct balloon_core_dev *bdev)
{
	const struct balloon_core_ops *ops = balloon_core_ops_get(bdev);
	int ret = 0;

	if (!ops)
		return 0;
	if (ops->detach)
		ret = ops->detach(bdev);
	balloon_core_ops_put(bdev);
	return ret;
}

/* Reports the balloon's current size. */
static inline void balloon_core_call_size_changed(struct balloon_core_dev *bdev)
{
	const struct balloon_core_ops *ops = balloon_core_ops_get(bdev);

	if (!ops)
		return;
	if (ops->size_changed)
		ops->size_changed(bdev, bdev->size);
	balloon_core_ops_put(bdev);
}

#endif /* _BALLOON_CORE_OPS_H */
