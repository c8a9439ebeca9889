// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_virtio_life, against the fake device of
 * virtio_fake.h: removal, freeze and restore, a device that breaks with a
 * request in flight, and untrusted and flapping targets.
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/mm.h>

#include "virtio_fake.h"

static void remove_returns_every_page_then_resets(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int resets, i, last_deflate = 0, reset_at = 0;

	fake_target(fb, PFNS(2000), false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, PFNS(2000));
	resets = fb->resets;
	fb->nlog = 0;
	fake_unplug(fb);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 0U);
	KUNIT_EXPECT_EQ(test, fb->resets, resets + 1);
	KUNIT_EXPECT_EQ(test, fb->held_at_reset, 0UL);
	/* The virtio core acknowledges the device again after removal. */
	KUNIT_EXPECT_EQ(test, fb->status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	for (i = 0; i < fb->nlog; i++) {
		if (fb->log[i].ev == FAKE_EV_DEFLATE)
			last_deflate = i + 1;
		if (fb->log[i].ev == FAKE_EV_RESET)
			reset_at = i + 1;
	}
	KUNIT_EXPECT_GT(test, last_deflate, 0U);
	KUNIT_EXPECT_GT(test, reset_at, last_deflate);
	expect_clean(test, fb);
}

static void freeze_restore_starts_afresh(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;
	unsigned int stats;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	virtio_fake_guest_content(test, FAKE_FREE_POISONED);
	fb->offered |= FAKE_F(PAGE_POISON) | FAKE_F(REPORTING);
	fake_target(fb, PFNS(1000), false);
	virtio_fake_plug(test, fb);
	vdev = &fb->v->vdev;
	fake_wait_actual(test, fb, PFNS(1000));

	KUNIT_ASSERT_EQ(test, virtio_device_freeze(vdev), 0);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 0U);
	KUNIT_EXPECT_EQ(test, fb->status, 0);
	KUNIT_EXPECT_FALSE(test, fb->vb->reporting);
	stats = fb->stats_bufs;

	KUNIT_ASSERT_EQ(test, virtio_device_restore(vdev), 0);
	/* The reset forgot poison_val: restore tells it again. */
	KUNIT_EXPECT_EQ(test, le32_to_cpu(fb->config.poison_val), 0xaaaaaaaaU);
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, stats + 1);
	KUNIT_EXPECT_TRUE(test, fb->vb->reporting);
	KUNIT_EXPECT_EQ(test, fb->readies, 2U);
	fake_wait_actual(test, fb, PFNS(1000));
	KUNIT_EXPECT_EQ(test, fb->nr_held, (unsigned long)PFNS(1000));
	expect_clean(test, fb);
}

static void failed_restore_then_remove(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	fake_target(fb, PFNS(300), false);
	virtio_fake_plug(test, fb);
	vdev = &fb->v->vdev;
	fake_wait_actual(test, fb, PFNS(300));

	KUNIT_ASSERT_EQ(test, virtio_device_freeze(vdev), 0);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	/* The queues cannot be set up again: the device stays bound, dead. */
	fb->no_vqs = true;
	KUNIT_EXPECT_NE(test, virtio_device_restore(vdev), 0);
	KUNIT_EXPECT_FALSE(test, fb->vb->live);

	/* Removal then finds nothing to stop, and frees nothing twice. */
	fake_unplug(fb);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
}

static void broken_device_ends_waits(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct balloon_core_dev *bdev;
	unsigned long t0;
	bool queued;

	/* A device that takes requests and never answers, then breaks. */
	virtio_fake_plug(test, fb);
	bdev = &fb->vb->bdev;
	fb->hold_pfns = true;
	fake_target(fb, PFNS(3000), true);
	queued = fake_wait_for(READ_ONCE(fb->inflates) > 0);
	KUNIT_ASSERT_TRUE(test, queued);
	/* Gone: what it held is moot, and it hears of nothing any more. */
	mutex_lock(&fb->lock);
	xa_destroy(&fb->held);
	fb->nr_held = 0;
	mutex_unlock(&fb->lock);
	virtio_break_device(&fb->v->vdev);

	/* The work loop's wait ends within its one-second look. */
	t0 = jiffies;
	flush_delayed_work(&bdev->work);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 2500U);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_GE(test, balloon_core_stat_read(bdev,
						     BALLOON_CORE_STAT_INFLATE_FAIL), 1);

	/* Removal does not hang on the dead device either. */
	t0 = jiffies;
	fake_unplug(fb);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 5000U);
	KUNIT_EXPECT_STREQ(test, fb->error, "");
}

static struct page *fake_alloc_page(gfp_t gfp, unsigned int order)
{
	struct fake_balloon *fb = kunit_get_current_test()->priv;

	/* Single pages only: the core's split blocks would not count. */
	if (order || !fb->allocs_left)
		return NULL;
	fb->allocs_left--;
	return alloc_pages(gfp, order);
}

static void target_all_ones_clamped_and_bounded(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct balloon_core_dev *bdev;
	u64 ram = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;

	virtio_fake_plug(test, fb);
	bdev = &fb->vb->bdev;
	/* No interrupt: the test steps the core itself, allocations capped. */
	kunit_activate_static_stub(test, balloon_core_alloc_page,
				   fake_alloc_page);
	fb->allocs_left = 300;
	fake_target(fb, U32_MAX, false);
	balloon_core_run_cycle(bdev);

	KUNIT_EXPECT_LE(test, bdev->target, ram);
	KUNIT_EXPECT_GE(test, balloon_core_stat_read(bdev,
						     BALLOON_CORE_STAT_CLAMPED), 1);
	KUNIT_EXPECT_EQ(test, bdev->size, PFNS(300));
	KUNIT_EXPECT_EQ(test, fake_actual(fb), PFNS(300));
	/* Out of memory: the next cycle does nothing, and ends. */
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, PFNS(300));

	fake_target(fb, 0, false);
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 0UL);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 0U);
	expect_clean(test, fb);
}

static void target_flapping_settles(struct kunit *test)
{
	static const u32 targets[] = { 4000, 0, U32_MAX, 100, 2500, 0, 7000 };
	struct fake_balloon *fb = test->priv;
	unsigned int i;

	virtio_fake_plug(test, fb);
	for (i = 0; i < 60; i++) {
		fake_target(fb, targets[i % ARRAY_SIZE(targets)], true);
		usleep_range(500, 1500);
	}
	fake_move(test, fb, PFNS(1500));

	KUNIT_EXPECT_EQ(test, fb->nr_held, (unsigned long)PFNS(1500));
	/* One cycle moves the balloon by at most its budget. */
	KUNIT_EXPECT_LE(test, fb->max_jump, PFNS(16384));
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_life_cases[] = {
	KUNIT_CASE(remove_returns_every_page_then_resets),
	KUNIT_CASE(freeze_restore_starts_afresh),
	KUNIT_CASE(failed_restore_then_remove),
	KUNIT_CASE_SLOW(broken_device_ends_waits),
	KUNIT_CASE(target_all_ones_clamped_and_bounded),
	KUNIT_CASE(target_flapping_settles),
	{ }
};

static struct kunit_suite balloon_virtio_life_suite = {
	.name = "balloon_virtio_life",
	.init = virtio_fake_init,
	.exit = virtio_fake_exit,
	.test_cases = balloon_virtio_life_cases,
};

kunit_test_suite(balloon_virtio_life_suite);
