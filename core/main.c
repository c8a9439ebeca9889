// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_core: registration, the work loop and reset.
 *
 * One delayed work item per balloon does everything that touches pages or
 * talks to the host, on the freezable system workqueue so that nothing
 * moves while the guest suspends.  Transports only kick it.  The work lock
 * (&balloon_core_dev.lock) serialises the loop against unregister; the ops
 * rwsem makes "no method runs after unregister" hold for every caller.
 *
 * The cycle's work is done elsewhere: inflate.c, deflate.c, pages.c (the
 * kernel's balloon page API), pressure.c (the OOM notifier) and, for
 * calls to the transport, ops.h.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/gfp.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timer.h>

#include "internal.h"
#include "ops.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

/*
 * Unregister retries a host that gives no page back this many times, this
 * far apart, before it frees the pages all the same.
 */
#define BALLOON_CORE_UNLOAD_TRIES	10
#define BALLOON_CORE_UNLOAD_WAIT_MS	100

/*
 * Delay before retrying a failed handshake, or a push-style host's cycle
 * that made no progress.
 */
#define BALLOON_CORE_RETRY_MS	1000

/**
 * balloon_core_reset() - drop the balloon after the host forgot it
 * @bdev: the balloon.
 *
 * Frees every page without telling the host and makes the next cycle run
 * @start again.
 *
 * Context: Process context, work lock held; may sleep.
 */
void balloon_core_reset(struct balloon_core_dev *bdev)
{
	trace_balloon_core_reset(bdev);
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_RESET);
	balloon_core_release_refused(bdev);
	balloon_core_drop_all(bdev);
	clear_bit(BALLOON_CORE_F_STARTED, &bdev->flags);
	clear_bit(BALLOON_CORE_F_RESET, &bdev->flags);
}

/*
 * The capabilities a transport's @start filled in must make sense before
 * the core relies on them; within those rules, the core trims what it does
 * not support (orders above its largest, batches above its arrays).
 */
static int balloon_core_caps_check(struct balloon_core_dev *bdev,
				   struct balloon_core_caps *caps)
{
	if (!(caps->orders & BIT(0)) || !caps->max_batch ||
	    ((caps->flags & BALLOON_CORE_CAP_POLL) && !caps->poll_ms)) {
		dev_err_once(bdev->parent,
			     "%s: start gave no usable page order, batch size or poll interval\n",
			     bdev->name);
		return -EPROTO;
	}
	caps->orders &= GENMASK(BALLOON_CORE_MAX_ORDER, 0);
	if (caps->max_batch > BALLOON_CORE_MAX_BATCH) {
		dev_info_once(bdev->parent,
			      "%s: host batch of %u pages capped at %u\n",
			      bdev->name, caps->max_batch,
			      BALLOON_CORE_MAX_BATCH);
		caps->max_batch = BALLOON_CORE_MAX_BATCH;
	}
	return 0;
}

/* The handshake; capabilities that make no sense make it a failed one. */
static int balloon_core_start(struct balloon_core_dev *bdev)
{
	struct balloon_core_caps caps = { };
	int ret;

	ret = balloon_core_call_start(bdev, &caps);
	if (ret)
		return ret;
	ret = balloon_core_caps_check(bdev, &caps);
	if (ret) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_START_FAIL);
		return ret;
	}
	bdev->caps = caps;
	balloon_core_pages_start(bdev);
	return 0;
}

/*
 * Host-supplied targets are untrusted: never more than the guest has, and
 * never below the guest's floor (core/floor.c).
 */
static u64 balloon_core_clamp_target(struct balloon_core_dev *bdev, u64 target)
{
	u64 limit = balloon_core_guest_units(bdev);

	if (target > limit) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_CLAMPED);
		dev_warn_once(bdev->parent,
			      "%s: host target %llu above guest memory, clamped to %llu\n",
			      bdev->name, target, limit);
		target = limit;
	}
	return balloon_core_floor_target(bdev, target);
}

/*
 * Which way the balloon must move: 1 inflate, -1 deflate, 0 at target.
 * Above a target other than 0, by less than the largest page the host
 * takes, the balloon stays where it is (the in-tree VMware driver's 2 MiB
 * slack): a small dip must not cost a 2 MiB page.
 */
static int balloon_core_direction(struct balloon_core_dev *bdev)
{
	u64 slack = BALLOON_CORE_UNITS_PER_PAGE;

	if (bdev->target && bdev->caps.orders)
		slack <<= __fls(bdev->caps.orders);
	if (bdev->size + BALLOON_CORE_UNITS_PER_PAGE <= bdev->target)
		return 1;
	if (bdev->size >= bdev->target + slack)
		return -1;
	return 0;
}

/*
 * One cycle: reset if asked, handshake if needed, read the target and move
 * towards it within this cycle's budget.  Returns true when there is more
 * to do right away.
 */
static bool balloon_core_cycle(struct balloon_core_dev *bdev)
{
	struct balloon_core_limits l;
	u64 old_size = bdev->size, target;
	bool slow, clean = true;
	int dir, ret;

	balloon_core_limits_get(&l);
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_TIMER);

	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
		balloon_core_reset(bdev);
	if (!test_bit(BALLOON_CORE_F_STARTED, &bdev->flags)) {
		if (balloon_core_start(bdev))
			goto out;
		set_bit(BALLOON_CORE_F_STARTED, &bdev->flags);
	}

	/* The OOM notifier found the lock busy: deflate for it now. */
	if (test_and_clear_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags)) {
		balloon_core_pressure_deflate(bdev, &l);
		/* No method runs after a reset the host asked for. */
		if (balloon_core_needs_start(bdev))
			goto out;
	}

	balloon_core_rate_limit(&bdev->rate, &l);
	slow = balloon_core_rate_cycle_slow(&bdev->rate);
	ret = balloon_core_call_target(bdev, &target);
	if (ret == -BALLOON_CORE_ERESET) {
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
		goto out;
	}
	if (ret)
		goto out;

	bdev->target = balloon_core_clamp_target(bdev, target);
	trace_balloon_core_target(bdev, target, bdev->target);
	/* A guest reclaiming hard holds inflation off, and may deflate. */
	if (balloon_core_floor_reclaiming(bdev, &l) &&
	    balloon_core_needs_start(bdev))
		goto out;
	dir = balloon_core_direction(bdev);
	if (dir < 0)
		clean = balloon_core_deflate(bdev, &l, 0, true);
	else if (dir > 0 && balloon_core_held_off(bdev))
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_HOLDOFF);
	else if (dir > 0)
		clean = balloon_core_inflate(bdev, &l, slow);

out:
	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags)) {
		balloon_core_reset(bdev);
		old_size = ~0ULL;	/* report the empty balloon */
	}
	if (bdev->size != old_size)
		balloon_core_call_size_changed(bdev);
	/* After a failure the next cycle waits: slow cycles are slow. */
	return clean && bdev->size != old_size &&
	       !test_bit(BALLOON_CORE_F_RESET, &bdev->flags) &&
	       balloon_core_direction(bdev);
}

/**
 * balloon_core_run_cycle() - run one work cycle under the work lock
 * @bdev: the balloon.
 *
 * What the work item does each time it runs; the KUnit suites call it to
 * step the balloon one cycle at a time.
 *
 * Context: Process context; may sleep.  Takes the work lock.
 * Return: true when there is more to do right away.
 */
VISIBLE_IF_KUNIT bool balloon_core_run_cycle(struct balloon_core_dev *bdev)
{
	bool more;

	mutex_lock(&bdev->cycle_lock);
	mutex_lock(&bdev->lock);
	more = balloon_core_cycle(bdev);
	mutex_unlock(&bdev->lock);
	mutex_unlock(&bdev->cycle_lock);
	return more;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_core_run_cycle);

static void balloon_core_work(struct work_struct *work)
{
	struct balloon_core_dev *bdev =
		container_of(to_delayed_work(work), struct balloon_core_dev,
			     work);
	unsigned long delay;
	bool more = balloon_core_run_cycle(bdev);

	/*
	 * A cycle's budget only bounds how long the work lock is held: when
	 * the balloon moved and has further to go, go on at once, polled
	 * host or not.
	 */
	if (!test_bit(BALLOON_CORE_F_STARTED, &bdev->flags))
		delay = msecs_to_jiffies(BALLOON_CORE_RETRY_MS);
	else if (more || test_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags))
		delay = 0;
	else if (bdev->caps.flags & BALLOON_CORE_CAP_POLL)
		delay = round_jiffies_relative(msecs_to_jiffies(bdev->caps.poll_ms));
	else if (balloon_core_direction(bdev))
		delay = msecs_to_jiffies(BALLOON_CORE_RETRY_MS);
	else
		return;

	spin_lock_irq(&bdev->kick_lock);
	if (test_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags))
		queue_delayed_work(system_freezable_wq, &bdev->work, delay);
	spin_unlock_irq(&bdev->kick_lock);
}

/**
 * balloon_core_kick() - tell the core the host has a new target
 * @bdev: the balloon.
 *
 * Schedules the work loop at once.  Safe from interrupt context; does
 * nothing once unregister has begun.
 *
 * Context: Any context.
 */
void balloon_core_kick(struct balloon_core_dev *bdev)
{
	unsigned long flags;

	spin_lock_irqsave(&bdev->kick_lock, flags);
	if (test_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags)) {
		balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_KICK);
		mod_delayed_work(system_freezable_wq, &bdev->work, 0);
	}
	spin_unlock_irqrestore(&bdev->kick_lock, flags);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_kick, BALLOON_CORE_NS);

/**
 * balloon_core_request_reset() - drop the balloon and redo the handshake
 * @bdev: the balloon.
 *
 * For a transport whose device was reset or resumed: on its next cycle
 * the core frees every page without telling the host, then calls @start.
 *
 * Context: Any context.
 */
void balloon_core_request_reset(struct balloon_core_dev *bdev)
{
	set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	balloon_core_kick(bdev);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_request_reset, BALLOON_CORE_NS);

/**
 * balloon_core_update_target() - take a target the host sent unasked
 * @bdev: the balloon.
 * @target: the host's target, in 4 KiB units; untrusted, clamped here.
 *
 * For hosts that piggyback their current target on other replies (VMware
 * returns it with every lock and unlock): an inflate in progress stops
 * as soon as the target says so, instead of at the end of the cycle.
 *
 * Context: Only from a transport method (the work lock is held).
 */
void balloon_core_update_target(struct balloon_core_dev *bdev, u64 target)
{
	u64 clamped;

	lockdep_assert_held(&bdev->lock);
	clamped = balloon_core_clamp_target(bdev, target);
	if (clamped != bdev->target)
		trace_balloon_core_target(bdev, target, clamped);
	bdev->target = clamped;
}
EXPORT_SYMBOL_NS_GPL(balloon_core_update_target, BALLOON_CORE_NS);

/**
 * balloon_core_size() - current balloon size
 * @bdev: the balloon.
 *
 * Context: Any context; the value may be stale by the time it is used.
 * Return: the size in 4 KiB units.
 */
u64 balloon_core_size(struct balloon_core_dev *bdev)
{
	return READ_ONCE(bdev->size);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_size, BALLOON_CORE_NS);

/* The batch arrays, for the largest batch; register and unregister only. */
static void balloon_core_batch_free(struct balloon_core_dev *bdev)
{
	kvfree(bdev->batch.pages);
	kvfree(bdev->batch.status);
	bdev->batch.pages = NULL;
	bdev->batch.status = NULL;
}

/* Allocated at registration, outside every lock; all or nothing. */
static int balloon_core_batch_alloc(struct balloon_core_dev *bdev)
{
	bdev->batch.pages = kvmalloc_array(BALLOON_CORE_MAX_BATCH,
					   sizeof(*bdev->batch.pages),
					   GFP_KERNEL);
	bdev->batch.status = kvmalloc_array(BALLOON_CORE_MAX_BATCH,
					    sizeof(*bdev->batch.status),
					    GFP_KERNEL);
	if (!bdev->batch.pages || !bdev->batch.status) {
		balloon_core_batch_free(bdev);
		return -ENOMEM;
	}
	return 0;
}

/**
 * balloon_core_register() - bring a balloon to life
 * @bdev: the balloon, embedded in the transport's device structure.
 * @ops: the transport's methods; must outlive the registration.
 * @parent: the transport's device, for logs; may be %NULL.
 * @name: instance name, unique among registered balloons (debugfs).
 *
 * Initialises @bdev and schedules the first cycle, which runs @start.
 * The transport must be ready to take calls before it registers.
 *
 * Context: Process context; may sleep.
 * Return: 0, -EINVAL for an ops table missing a required method, -ENOMEM,
 * or the error from registering the OOM notifier.
 */
int balloon_core_register(struct balloon_core_dev *bdev,
			  const struct balloon_core_ops *ops,
			  struct device *parent, const char *name)
{
	struct balloon_core_limits l;
	int ret;

	if (!ops || !ops->start || !ops->get_target || !ops->inflate || !name)
		return -EINVAL;

	memset(bdev, 0, sizeof(*bdev));
	init_rwsem(&bdev->ops_lock);
	mutex_init(&bdev->lock);
	mutex_init(&bdev->cycle_lock);
	spin_lock_init(&bdev->kick_lock);
	INIT_DELAYED_WORK(&bdev->work, balloon_core_work);
	balloon_core_pages_init(bdev);
	balloon_core_floor_init(bdev);
	balloon_core_limits_get(&l);
	balloon_core_rate_init(&bdev->rate, &l);
	bdev->parent = parent;
	strscpy(bdev->name, name, sizeof(bdev->name));
	bdev->ops = ops;

	ret = balloon_core_batch_alloc(bdev);
	if (ret)
		goto err_ops;

	ret = balloon_core_pressure_register(bdev);
	if (ret)
		goto err_batch;

	balloon_core_debugfs_add(bdev);
	set_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags);
	balloon_core_kick(bdev);
	dev_info(parent, "balloon %s registered (transport %s)\n",
		 bdev->name, ops->name);
	return 0;

err_batch:
	balloon_core_batch_free(bdev);
err_ops:
	bdev->ops = NULL;	/* unregister will see nothing to undo */
	return ret;
}
EXPORT_SYMBOL_NS_GPL(balloon_core_register, BALLOON_CORE_NS);

/**
 * balloon_core_unregister() - stop a balloon and give every page back
 * @bdev: the balloon.
 *
 * Stops the work loop, returns every ballooned page to the guest (telling
 * the host through @deflate while it is there, unless @detach says the
 * host let go of them all; a page the host will not release after a second
 * of retries is freed all the same, since the guest owns it), and
 * detaches the transport.  Once this returns no transport method runs or
 * can start.
 *
 * Does nothing for a balloon that is not registered (never, or not any
 * more), so that a transport's teardown may call it unconditionally.
 *
 * Context: Process context; may sleep.  Must not be called from a
 * transport method.
 */
void balloon_core_unregister(struct balloon_core_dev *bdev)
{
	unsigned long warn_at = jiffies +
				msecs_to_jiffies(BALLOON_CORE_ISOLATED_WAIT_MS);
	struct balloon_core_limits l;
	unsigned int tries = 0;

	/* Never registered, or unregistered already: nothing to do. */
	if (!bdev->ops)
		return;

	/* Waits for a running notifier: none can start after this. */
	balloon_core_pressure_unregister(bdev);
	spin_lock_irq(&bdev->kick_lock);
	clear_bit(BALLOON_CORE_F_REGISTERED, &bdev->flags);
	spin_unlock_irq(&bdev->kick_lock);
	cancel_delayed_work_sync(&bdev->work);

	mutex_lock(&bdev->lock);
	balloon_core_limits_get(&l);
	/*
	 * The host hears of the unload even when the balloon is not started
	 * (a failing host, or a reset pending): it may still hold pages or a
	 * doorbell of ours.  One that lets go of everything at once needs no
	 * page by page.
	 */
	if (balloon_core_call_detach(bdev) == -BALLOON_CORE_ERESET)
		set_bit(BALLOON_CORE_F_RESET, &bdev->flags);
	while (bdev->size && test_bit(BALLOON_CORE_F_STARTED, &bdev->flags) &&
	       !test_bit(BALLOON_CORE_F_RESET, &bdev->flags)) {
		u64 before = bdev->size;

		balloon_core_deflate(bdev, &l, bdev->size, false);
		if (bdev->size != before) {
			tries = 0;
			continue;
		}
		if (balloon_core_isolated(bdev)) {
			balloon_core_wait_isolated(bdev, &warn_at);
			continue;
		}
		if (++tries > BALLOON_CORE_UNLOAD_TRIES)
			break;	/* the host will not release them */
		msleep(BALLOON_CORE_UNLOAD_WAIT_MS);
	}
	if (bdev->size && !test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
		dev_warn(bdev->parent,
			 "%s: host did not release %llu KiB; freeing them anyway\n",
			 bdev->name, bdev->size * 4);
	balloon_core_release_refused(bdev);
	balloon_core_drop_all(bdev);
	balloon_core_call_size_changed(bdev);
	clear_bit(BALLOON_CORE_F_STARTED, &bdev->flags);

	down_write(&bdev->ops_lock);
	bdev->ops = NULL;
	up_write(&bdev->ops_lock);
	mutex_unlock(&bdev->lock);

	balloon_core_debugfs_remove(bdev);
	balloon_core_batch_free(bdev);
	balloon_core_pages_exit(bdev);
}
EXPORT_SYMBOL_NS_GPL(balloon_core_unregister, BALLOON_CORE_NS);

static int __init balloon_core_init(void)
{
	balloon_core_params_settle();
	return balloon_core_debugfs_init();
}
module_init(balloon_core_init);

static void __exit balloon_core_exit(void)
{
	balloon_core_debugfs_exit();
}
module_exit(balloon_core_exit);

MODULE_DESCRIPTION("Hypervisor-neutral memory balloon core");
MODULE_AUTHOR("The balloon driver authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(BALLOON_VERSION);
