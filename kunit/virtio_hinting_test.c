// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_virtio_hinting, against the fake device of
 * virtio_fake.h: free page hinting as QEMU plays it, a run's wire format,
 * stalled hosts, removal and freeze, and the shrinker.
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/mm.h>
#include <linux/vmstat.h>

#include "virtio_fake.h"

#define FAKE_HINT_ID	0x80000000U	/* QEMU's first command id */

/* The host moves to @state (with @id when requesting); with @irq, says so. */
static void fake_hint_host(struct fake_balloon *fb, enum fake_hint_state state,
			   u32 id, bool irq)
{
	mutex_lock(&fb->lock);
	fb->hint_state = state;
	if (state == FAKE_HINT_S_REQUESTED)
		fb->hint_id = id;
	fake_hint_config(fb);
	mutex_unlock(&fb->lock);
	if (irq)
		fake_config_irq(fb);
}

/* The host hands back every hint buffer it kept. */
static void fake_hint_release(struct fake_balloon *fb)
{
	struct fake_queue *fq = fake_queue(fb, FAKE_HINT);
	struct virtqueue *vq = fq ? fq->vq : NULL;
	unsigned int i;

	mutex_lock(&fb->lock);
	for (i = 0; vq && i < fb->nr_hint_held; i++)
		fake_use(fb, vq, fb->hint_held[i]);
	fb->nr_hint_held = 0;
	mutex_unlock(&fb->lock);
	if (vq)
		fake_interrupt(vq);
}

static unsigned long fake_hint_held(struct fake_balloon *fb)
{
	return READ_ONCE(fb->vb->hint.nr_blocks);
}

/* Blocks of the last run that are free again, as seen from their pages. */
static unsigned int fake_hint_freed(struct fake_balloon *fb)
{
	unsigned int i, n = 0;

	for (i = 0; i < fb->nr_hint_pages; i++)
		n += !page_ref_count(fb->hint_pages[i]);
	return n;
}

/* Plug a hinting device whose host stops each run after @stop_after blocks. */
static void fake_plug_hinting(struct kunit *test, struct fake_balloon *fb,
			      unsigned int stop_after)
{
	fb->offered |= FAKE_F(FREE_PAGE_HINT);
	fb->hint_stop_after = stop_after;
	virtio_fake_plug(test, fb);
	KUNIT_ASSERT_TRUE(test, fb->features & FAKE_F(FREE_PAGE_HINT));
	KUNIT_ASSERT_NOT_NULL(test, fb->vb->hint.wq);
	/* start() reads the config once, for a request made before probe. */
	flush_work(&fb->vb->hint.work);
}

/* Request a run with @id and wait until the driver has stopped it. */
static void fake_hint_run(struct kunit *test, struct fake_balloon *fb, u32 id)
{
	unsigned int ids = fb->nr_hint_ids;
	bool ended;

	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, id, true);
	/* The driver echoes the id, then ends with STOP. */
	ended = fake_wait_for(READ_ONCE(fb->nr_hint_ids) >= ids + 2);
	flush_work(&fb->vb->hint.work);
	KUNIT_ASSERT_TRUE_MSG(test, ended, "%u ids sent; device error: \"%s\"",
			      fb->nr_hint_ids - ids, fb->error);
	KUNIT_EXPECT_EQ(test, fb->hint_ids[ids], id);
	KUNIT_EXPECT_EQ(test, fb->hint_ids[ids + 1],
			(u32)VIRTIO_BALLOON_CMD_ID_STOP);
}

static void hint_run_sends_id_blocks_then_stop(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long free;

	fake_plug_hinting(test, fb, 12);
	/* inflate, deflate, stats, free page: as QEMU lays them out. */
	KUNIT_EXPECT_EQ(test, fb->nq, 4U);
	fake_hint_run(test, fb, FAKE_HINT_ID);

	KUNIT_EXPECT_EQ(test, fb->hinted, 12U);
	KUNIT_EXPECT_EQ(test, fb->hint_ignored, 0U);
	KUNIT_EXPECT_EQ(test, fb->hint_state, FAKE_HINT_S_STOP);
	/* Held, still allocated, until the host is done with them. */
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 12UL);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 0U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 1UL);

	/* Whole blocks go back: the free page count says so, not just heads. */
	free = global_zone_page_state(NR_FREE_PAGES);
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	KUNIT_EXPECT_TRUE(test, fake_wait_for(fake_hint_held(fb) == 0));
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 12U);
	KUNIT_EXPECT_GE(test, global_zone_page_state(NR_FREE_PAGES),
			free + 11 * BALLOON_VIRTIO_HINT_PAGES);
	/* The balloon itself is untouched by all this. */
	fake_move(test, fb, PFNS(300));
	expect_clean(test, fb);
}

static void hint_same_id_once_new_id_again(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int ids;

	fake_plug_hinting(test, fb, 4);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	/* The same id again (any config change can show it): no new run. */
	ids = fb->nr_hint_ids;
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, ids);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 1UL);
	/* A stopped host, and one done before any run, change nothing. */
	fake_hint_host(fb, FAKE_HINT_S_STOP, 0, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, ids);

	/* A new pass: a new run; the blocks of both stay held. */
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 2UL);
	KUNIT_EXPECT_EQ(test, fb->hinted, 8U);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 8UL);
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	KUNIT_EXPECT_TRUE(test, fake_wait_for(fake_hint_held(fb) == 0));
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 8U);
	expect_clean(test, fb);
}

static void hint_requested_before_probe(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	bool ended;

	/* The host asked before the driver came: it is answered at once. */
	fb->hint_state = FAKE_HINT_S_REQUESTED;
	fb->hint_id = FAKE_HINT_ID + 7;
	fake_hint_config(fb);
	fake_plug_hinting(test, fb, 3);

	ended = fake_wait_for(READ_ONCE(fb->nr_hint_ids) >= 2);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_TRUE(test, ended);
	KUNIT_EXPECT_EQ(test, fb->hint_ids[0], FAKE_HINT_ID + 7);
	KUNIT_EXPECT_EQ(test, fb->hinted, 3U);
	expect_clean(test, fb);
}

static void hint_stalled_host_ends_run(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	/* The host never stops the run, and never hands buffers back. */
	fb->hint_ring = 8;
	fb->hint_hold = true;
	fake_plug_hinting(test, fb, 0);
	fake_hint_run(test, fb, FAKE_HINT_ID);

	/* All descriptors but the one kept for STOP, then one stall. */
	KUNIT_EXPECT_EQ(test, fb->hinted, 7U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 1UL);
	KUNIT_EXPECT_EQ(test, fb->hint_state, FAKE_HINT_S_STOP);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 7UL);

	/* Once the host catches up, the next run has room again. */
	fake_hint_release(fb);
	fb->hint_hold = false;
	fb->hint_stop_after = 2;
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->hinted, 9U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 1UL);
	expect_clean(test, fb);
}

static struct page *fake_hint_alloc(void)
{
	struct fake_balloon *fb = kunit_get_current_test()->priv;

	if (!fb->allocs_left)
		return NULL;
	fb->allocs_left--;
	return alloc_pages(GFP_KERNEL, BALLOON_VIRTIO_HINT_ORDER);
}

static void hint_run_ends_without_free_blocks(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct balloon_virtio *vb;

	fake_plug_hinting(test, fb, 0);
	vb = fb->vb;
	/*
	 * Only 5 free blocks: the test runs the hinting work itself, so that
	 * the allocation stub applies, and raises no interrupt.
	 */
	kunit_activate_static_stub(test, balloon_virtio_hint_alloc,
				   fake_hint_alloc);
	fb->allocs_left = 5;
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID, false);
	set_bit(0, &vb->hint.changed);
	vb->hint.work.func(&vb->hint.work);

	KUNIT_EXPECT_EQ(test, fb->hinted, 5U);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, 2U);
	KUNIT_EXPECT_EQ(test, fb->hint_state, FAKE_HINT_S_STOP);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 5UL);
	expect_clean(test, fb);
}

static void hint_shrinker_gives_blocks_back(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct shrink_control sc = { .gfp_mask = GFP_KERNEL };
	struct shrinker *shrinker;

	fake_plug_hinting(test, fb, 10);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	KUNIT_ASSERT_EQ(test, fake_hint_held(fb), 10UL);
	/* The shrinker the kernel calls, with the data it was given. */
#ifdef BALLOON_COMPAT_SHRINKER_ALLOC
	shrinker = fb->vb->hint.shrinker.shrinker;
#else
	shrinker = &fb->vb->hint.shrinker.shrinker;
#endif

	/* Counted in pages; taken in whole blocks, rounded up. */
	KUNIT_EXPECT_EQ(test, shrinker->count_objects(shrinker, &sc),
			10UL * BALLOON_VIRTIO_HINT_PAGES);
	sc.nr_to_scan = 1;
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			(unsigned long)BALLOON_VIRTIO_HINT_PAGES);
	sc.nr_to_scan = 3UL * BALLOON_VIRTIO_HINT_PAGES + 1;
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			4UL * BALLOON_VIRTIO_HINT_PAGES);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 5UL);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 5U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.shrunk, 5UL);
	/* More than is held: what is left, then nothing to do. */
	sc.nr_to_scan = 100UL * BALLOON_VIRTIO_HINT_PAGES;
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			5UL * BALLOON_VIRTIO_HINT_PAGES);
	KUNIT_EXPECT_EQ(test, shrinker->count_objects(shrinker, &sc), 0UL);
	KUNIT_EXPECT_EQ(test, shrinker->scan_objects(shrinker, &sc),
			SHRINK_STOP);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 10U);

	/* DONE finds nothing left to give back. */
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 0UL);
	expect_clean(test, fb);
}

static void hint_pressure_ends_run(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	/* The host would take 40 blocks; the guest shrinks after the 3rd. */
	fb->hint_pressure_at = 3;
	fake_plug_hinting(test, fb, 40);
	fake_hint_run(test, fb, FAKE_HINT_ID);

	/* No block taken again after the shrinker ran: the run ended. */
	KUNIT_EXPECT_EQ(test, fb->hinted, 3U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.shrunk, 1UL);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 2UL);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 1U);
	/* The next pass hints again. */
	fb->hint_pressure_at = 0;
	fb->hint_stop_after = 2;
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->hinted, 5U);
	expect_clean(test, fb);
}

/* Start a run on a host that keeps every buffer; wait until it is full. */
static void fake_hint_fill_ring(struct kunit *test, struct fake_balloon *fb)
{
	bool full;

	fb->hint_ring = 8;
	fb->hint_hold = true;
	fake_plug_hinting(test, fb, 0);
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID, true);
	full = fake_wait_for(READ_ONCE(fb->hinted) == 7);
	KUNIT_ASSERT_TRUE_MSG(test, full, "hinted %u; device error: \"%s\"",
			      fb->hinted, fb->error);
}

static void hint_remove_while_waiting_on_host(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long t0;

	fake_hint_fill_ring(test, fb);
	/* The run waits for room; removal ends it at once, not after 1 s. */
	t0 = jiffies;
	fake_unplug(fb);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 500U);
	KUNIT_EXPECT_EQ(test, fb->hint_live_at_reset, 7U);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 7U);
	/* It still ended with STOP, in the descriptor kept for it. */
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, 2U);
	expect_clean(test, fb);
}

static void hint_done_while_waiting_on_host(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long t0;
	bool back;

	fake_hint_fill_ring(test, fb);
	/* The migration ends while the run waits: no stall, blocks back. */
	t0 = jiffies;
	fake_hint_host(fb, FAKE_HINT_S_DONE, 0, true);
	back = fake_wait_for(fake_hint_held(fb) == 0);
	KUNIT_EXPECT_TRUE(test, back);
	KUNIT_EXPECT_LT(test, jiffies_to_msecs(jiffies - t0), 500U);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 0UL);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, 2U);
	fake_hint_release(fb);
	expect_clean(test, fb);
}

static void hint_id_buffer_not_rewritten_while_queued(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int ids;

	/* The host keeps the id buffer of the first run. */
	fb->hint_hold_ids = true;
	fake_plug_hinting(test, fb, 2);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	KUNIT_ASSERT_EQ(test, fb->hinted, 2U);

	/* A new pass cannot start until the host hands the old id back. */
	ids = fb->nr_hint_ids;
	fake_hint_host(fb, FAKE_HINT_S_REQUESTED, FAKE_HINT_ID + 1, true);
	flush_work(&fb->vb->hint.work);
	KUNIT_EXPECT_EQ(test, fb->nr_hint_ids, ids);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 1UL);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.stalls, 1UL);

	/* Once it has, the next request runs. */
	fb->hint_hold_ids = false;
	fake_hint_release(fb);
	fake_hint_run(test, fb, FAKE_HINT_ID + 2);
	KUNIT_EXPECT_EQ(test, fb->vb->hint.runs, 2UL);
	KUNIT_EXPECT_EQ(test, fb->hinted, 4U);
	expect_clean(test, fb);
}

static void hint_remove_frees_blocks_after_reset(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fake_plug_hinting(test, fb, 6);
	fake_hint_run(test, fb, FAKE_HINT_ID);
	KUNIT_ASSERT_EQ(test, fake_hint_held(fb), 6UL);
	fake_unplug(fb);

	/* The device could write them until its reset; then they are free. */
	KUNIT_EXPECT_EQ(test, fb->hint_live_at_reset, 6U);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 6U);
	expect_clean(test, fb);
}

static void hint_freeze_restore(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	fake_plug_hinting(test, fb, 6);
	vdev = &fb->v->vdev;
	fake_hint_run(test, fb, FAKE_HINT_ID);

	KUNIT_ASSERT_EQ(test, virtio_device_freeze(vdev), 0);
	KUNIT_EXPECT_EQ(test, fb->hint_live_at_reset, 6U);
	KUNIT_EXPECT_EQ(test, fake_hint_freed(fb), 6U);
	KUNIT_EXPECT_NULL(test, fb->vb->hint.wq);

	KUNIT_ASSERT_EQ(test, virtio_device_restore(vdev), 0);
	flush_work(&fb->vb->hint.work);
	/* A restored device hints afresh, under its next command id. */
	fb->nr_hint_pages = 0;
	fake_hint_run(test, fb, FAKE_HINT_ID + 1);
	KUNIT_EXPECT_EQ(test, fb->hinted, 12U);
	KUNIT_EXPECT_EQ(test, fake_hint_held(fb), 6UL);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_hinting_cases[] = {
	KUNIT_CASE(hint_run_sends_id_blocks_then_stop),
	KUNIT_CASE(hint_same_id_once_new_id_again),
	KUNIT_CASE(hint_requested_before_probe),
	KUNIT_CASE_SLOW(hint_stalled_host_ends_run),
	KUNIT_CASE(hint_run_ends_without_free_blocks),
	KUNIT_CASE(hint_shrinker_gives_blocks_back),
	KUNIT_CASE(hint_pressure_ends_run),
	KUNIT_CASE(hint_remove_while_waiting_on_host),
	KUNIT_CASE(hint_done_while_waiting_on_host),
	KUNIT_CASE_SLOW(hint_id_buffer_not_rewritten_while_queued),
	KUNIT_CASE(hint_remove_frees_blocks_after_reset),
	KUNIT_CASE(hint_freeze_restore),
	{ }
};

static struct kunit_suite balloon_virtio_hinting_suite = {
	.name = "balloon_virtio_hinting",
	.init = virtio_fake_init,
	.exit = virtio_fake_exit,
	.test_cases = balloon_virtio_hinting_cases,
};

kunit_test_suite(balloon_virtio_hinting_suite);
