// SPDX-License-Identifier: GPL-2.0
/*
 * Memory pressure: each balloon's OOM notifier, and the hold-off it sets.
 *
 * Where the host allows it (%BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE), the
 * kernel's OOM notifier chain makes the balloon give pages back before the
 * OOM killer picks a process, as the in-tree virtio_balloon driver does
 * with VIRTIO_BALLOON_F_DEFLATE_ON_OOM.  Inflation then waits for a while,
 * so that the next cycle does not take the pages straight back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/minmax.h>
#include <linux/notifier.h>
#include <linux/oom.h>

#include "internal.h"
#include "ops.h"
#include "trace.h"

/*
 * How long the OOM notifier tries the work lock before it leaves the
 * deflate to the next cycle: at most 20 tries 5-10 ms apart.
 */
#define BALLOON_CORE_OOM_TRIES		20
#define BALLOON_CORE_OOM_WAIT_US	5000

/**
 * balloon_core_held_off() - is inflation held off after a pressure deflate?
 * @bdev: the balloon.
 *
 * Clears the hold-off once it is over.
 *
 * Context: Work lock held.
 * Return: true while inflation must wait.
 */
bool balloon_core_held_off(struct balloon_core_dev *bdev)
{
	if (!test_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags))
		return false;
	if (time_before(jiffies, bdev->holdoff_until))
		return true;
	clear_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags);
	return false;
}

/**
 * balloon_core_hold_off() - hold inflation off for a while
 * @bdev: the balloon.
 * @ms: for how long, from now.
 *
 * Only ever extends a hold-off already running.
 *
 * Context: Work lock held.
 */
void balloon_core_hold_off(struct balloon_core_dev *bdev, unsigned int ms)
{
	unsigned long until = jiffies + msecs_to_jiffies(ms);

	if (!test_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags) ||
	    time_after(until, bdev->holdoff_until))
		bdev->holdoff_until = until;
	set_bit(BALLOON_CORE_F_HOLDOFF, &bdev->flags);
}

/**
 * balloon_core_pressure_deflate() - give pages back under memory pressure
 * @bdev: the balloon.
 * @l: the limits.
 *
 * Where the host allows it, give back up to @oom_pages pages (telling the
 * host first), and hold inflation off for a while, whether or not there
 * was anything to give, so that the next cycle does not take memory
 * straight back from a guest that is short of it.
 *
 * Context: Process context, work lock held; may sleep.
 * Return: how many base pages were given back.
 */
unsigned long balloon_core_pressure_deflate(struct balloon_core_dev *bdev,
					    const struct balloon_core_limits *l)
{
	u64 before = bdev->size;

	if (!test_bit(BALLOON_CORE_F_STARTED, &bdev->flags) ||
	    !(bdev->caps.flags & BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE))
		return 0;
	balloon_core_hold_off(bdev, l->holdoff_ms);
	if (!bdev->size)
		return 0;

	/* A host that demanded a reset has forgotten every page: take all. */
	if (test_bit(BALLOON_CORE_F_RESET, &bdev->flags))
		balloon_core_reset(bdev);
	else
		balloon_core_deflate(bdev, l,
				     min_t(u64, bdev->size, (u64)l->oom_pages *
					   BALLOON_CORE_UNITS_PER_PAGE), false);
	if (bdev->size == before)
		return 0;

	trace_balloon_core_pressure(bdev, before - bdev->size);
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_PRESSURE);
	atomic64_add(before - bdev->size,
		     &bdev->stats[BALLOON_CORE_STAT_PRESSURE_FREE]);
	balloon_core_call_size_changed(bdev);
	return (before - bdev->size) / BALLOON_CORE_UNITS_PER_PAGE;
}

/*
 * The kernel is about to kill a process for memory.  The OOM killer stands
 * down when anything was freed.  The notifier never waits long for the
 * work lock.  No cycle holds it while it allocates (direct reclaim may
 * wait on the very task that is out of memory), but one may hold it for
 * long with a host that does not answer, and waiting there would stop
 * every OOM kill in the guest.  It
 * first asks a running cycle to stop inflating (BALLOON_CORE_F_PRESSURE)
 * and tries the lock for a moment, which is enough for short holders (a
 * migration, a host round trip, an inflate pass ending); after that, the
 * next cycle, queued now, does the pressure deflate.
 */
static int balloon_core_oom_notify(struct notifier_block *nb,
				   unsigned long unused, void *arg)
{
	struct balloon_core_dev *bdev =
		container_of(nb, struct balloon_core_dev, oom_nb);
	unsigned long *freed = arg;
	struct balloon_core_limits l;
	unsigned int tries;

	/*
	 * A cycle allocating without the work lock sees this count move when
	 * it takes the lock again, and inflates no further.
	 */
	balloon_core_stat_inc(bdev, BALLOON_CORE_STAT_OOM);

	/*
	 * Only a host that allows it gets a pressure deflate; any other
	 * balloon stays out of the OOM path, and off its work lock.
	 */
	if (!(READ_ONCE(bdev->caps.flags) & BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE))
		return NOTIFY_OK;

	set_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags);
	for (tries = 0; !mutex_trylock(&bdev->lock); tries++) {
		if (tries == BALLOON_CORE_OOM_TRIES) {
			balloon_core_kick(bdev);
			return NOTIFY_OK;
		}
		usleep_range(BALLOON_CORE_OOM_WAIT_US,
			     2 * BALLOON_CORE_OOM_WAIT_US);
	}
	/* Deflating here: the next cycle need not. */
	clear_bit(BALLOON_CORE_F_PRESSURE, &bdev->flags);
	balloon_core_limits_get(&l);
	*freed += balloon_core_pressure_deflate(bdev, &l);
	mutex_unlock(&bdev->lock);
	/* After a host reset the work loop must redo the handshake. */
	if (balloon_core_needs_start(bdev))
		balloon_core_kick(bdev);
	return NOTIFY_OK;
}

/**
 * balloon_core_pressure_register() - start hearing of memory pressure
 * @bdev: the balloon, being registered.
 *
 * Context: Process context; may sleep.
 * Return: 0 or the error from register_oom_notifier().
 */
int balloon_core_pressure_register(struct balloon_core_dev *bdev)
{
	bdev->oom_nb.notifier_call = balloon_core_oom_notify;
	return register_oom_notifier(&bdev->oom_nb);
}

/**
 * balloon_core_pressure_unregister() - stop hearing of memory pressure
 * @bdev: the balloon, being unregistered.
 *
 * Waits for a notifier that is running: none can start after this.
 *
 * Context: Process context; may sleep.
 */
void balloon_core_pressure_unregister(struct balloon_core_dev *bdev)
{
	unregister_oom_notifier(&bdev->oom_nb);
}
