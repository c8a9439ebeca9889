// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_virtio_stats, against the fake device of
 * virtio_fake.h: the stats queue, every tag, values refreshed on each
 * request and never in the interrupt, and their units.
 */
#include <kunit/test.h>
#include <linux/mm.h>
#include <linux/sizes.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>

#include "virtio_fake.h"

/* The tags this kernel can answer. */
static unsigned long fake_expected_tags(void)
{
	unsigned long tags = GENMASK(VIRTIO_BALLOON_S_CACHES,
				     VIRTIO_BALLOON_S_MEMFREE);

	if (IS_ENABLED(CONFIG_VM_EVENT_COUNTERS)) {
		tags |= GENMASK(VIRTIO_BALLOON_S_MINFLT,
				VIRTIO_BALLOON_S_SWAP_IN);
		tags |= GENMASK(VIRTIO_BALLOON_S_DIRECT_RECLAIM,
				VIRTIO_BALLOON_S_OOM_KILL);
		if (IS_ENABLED(CONFIG_HUGETLB_PAGE))
			tags |= BIT(VIRTIO_BALLOON_S_HTLB_PGALLOC) |
				BIT(VIRTIO_BALLOON_S_HTLB_PGFAIL);
	}
	return tags;
}

/* The value of @tag in the last stats buffer, or U64_MAX. */
static u64 fake_stat(struct fake_balloon *fb, unsigned int tag)
{
	struct virtio_device *vdev = &fb->v->vdev;
	unsigned int i;

	for (i = 0; i < fb->nr_stats; i++)
		if (virtio16_to_cpu(vdev, fb->stats[i].tag) == tag)
			return virtio64_to_cpu(vdev, fb->stats[i].val);
	return U64_MAX;
}

static unsigned long fake_stat_tags(struct fake_balloon *fb)
{
	unsigned long tags = 0;
	unsigned int i;

	for (i = 0; i < fb->nr_stats; i++)
		tags |= BIT(virtio16_to_cpu(&fb->v->vdev, fb->stats[i].tag));
	return tags;
}

/* Wait for the @n-th stats buffer. */
static void fake_wait_stats(struct kunit *test, struct fake_balloon *fb,
			    unsigned int n)
{
	bool arrived = fake_wait_for(READ_ONCE(fb->stats_bufs) == n);

	KUNIT_ASSERT_TRUE_MSG(test, arrived, "%u stats buffers, not %u",
			      fb->stats_bufs, n);
}

/*
 * The device asks for fresh stats: it hands the buffer back, from its
 * interrupt.  Returns whether the new buffer was already there when the
 * interrupt returned (it must not be: stats are not built in interrupt
 * context).
 */
static bool fake_request_stats(struct fake_balloon *fb)
{
	struct fake_queue *fq = fake_queue(fb, FAKE_STATS);
	unsigned int before = fb->stats_bufs;
	unsigned long flags;
	bool early;

	mutex_lock(&fb->lock);
	if (!fq || !fq->holding) {
		fake_error(fb, "no stats buffer to hand back");
		mutex_unlock(&fb->lock);
		return false;
	}
	fq->holding = false;
	fake_use(fb, fq->vq, fq->held_head);
	mutex_unlock(&fb->lock);

	local_irq_save(flags);
	vring_interrupt(0, fq->vq);
	early = READ_ONCE(fb->stats_bufs) != before;
	local_irq_restore(flags);
	return early;
}

static void stats_queued_before_driver_ok_sent_after(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	u64 total = (u64)totalram_pages() << PAGE_SHIFT;

	virtio_fake_plug(test, fb);

	/* fake_notify fails the test if the kick came before DRIVER_OK. */
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 1U);
	KUNIT_EXPECT_TRUE(test, fake_queue(fb, FAKE_STATS)->holding);
	KUNIT_EXPECT_EQ(test, fake_stat_tags(fb), fake_expected_tags());
	KUNIT_EXPECT_EQ(test, fake_stat(fb, VIRTIO_BALLOON_S_MEMTOT), total);
	KUNIT_EXPECT_LE(test, fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE), total);
	KUNIT_EXPECT_GT(test, fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE), 0);
	KUNIT_EXPECT_LE(test, fake_stat(fb, VIRTIO_BALLOON_S_AVAIL), total);
	expect_clean(test, fb);
}

static void stats_refreshed_on_each_request(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	u64 free0, free1;
	void *hog;
	unsigned int i;

	virtio_fake_plug(test, fb);
	for (i = 0; i < 3; i++) {
		unsigned int before = fb->stats_bufs;

		KUNIT_EXPECT_FALSE_MSG(test, fake_request_stats(fb),
				       "stats built in interrupt context");
		fake_wait_stats(test, fb, before + 1);
		KUNIT_EXPECT_TRUE(test, fake_queue(fb, FAKE_STATS)->holding);
	}
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 4U);

	/* Fresh values: 8 MiB taken between two requests shows. */
	free0 = fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE);
	hog = vmalloc(SZ_8M);
	KUNIT_ASSERT_NOT_NULL(test, hog);
	fake_request_stats(fb);
	fake_wait_stats(test, fb, 5);
	free1 = fake_stat(fb, VIRTIO_BALLOON_S_MEMFREE);
	vfree(hog);
	KUNIT_EXPECT_GE(test, free0 - free1, 6ULL << 20);
	expect_clean(test, fb);
}

static void stats_event_counters_in_units(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long *before, *after;
	u64 scan;

	if (!IS_ENABLED(CONFIG_VM_EVENT_COUNTERS))
		kunit_skip(test, "no VM event counters");
	before = kunit_kcalloc(test, NR_VM_EVENT_ITEMS, sizeof(*before),
			       GFP_KERNEL);
	after = kunit_kcalloc(test, NR_VM_EVENT_ITEMS, sizeof(*after),
			      GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, before);
	KUNIT_ASSERT_NOT_NULL(test, after);

	virtio_fake_plug(test, fb);
	all_vm_events(before);
	fake_request_stats(fb);
	fake_wait_stats(test, fb, 2);
	all_vm_events(after);

	/* Counts as counts, amounts of memory in bytes. */
	KUNIT_EXPECT_GE(test, fake_stat(fb, VIRTIO_BALLOON_S_MINFLT),
			(u64)before[PGFAULT]);
	KUNIT_EXPECT_LE(test, fake_stat(fb, VIRTIO_BALLOON_S_MINFLT),
			(u64)after[PGFAULT]);
	KUNIT_EXPECT_EQ(test, fake_stat(fb, VIRTIO_BALLOON_S_OOM_KILL),
			(u64)after[OOM_KILL]);
	scan = fake_stat(fb, VIRTIO_BALLOON_S_ASYNC_SCAN);
	KUNIT_EXPECT_GE(test, scan, (u64)before[PGSCAN_KSWAPD] << PAGE_SHIFT);
	KUNIT_EXPECT_LE(test, scan, (u64)after[PGSCAN_KSWAPD] << PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, fake_stat(fb, VIRTIO_BALLOON_S_SWAP_OUT),
			(u64)after[PSWPOUT] << PAGE_SHIFT);
	expect_clean(test, fb);
}

static void stats_absent_without_feature(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fb->offered &= ~FAKE_F(STATS_VQ);
	virtio_fake_plug(test, fb);
	KUNIT_EXPECT_EQ(test, fb->nq, 2U);
	KUNIT_EXPECT_NULL(test, fb->vb->vqs[BALLOON_VIRTIO_VQ_STATS]);
	fake_move(test, fb, PFNS(700));
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 0U);
	expect_clean(test, fb);
}

static void stats_request_racing_removal(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	virtio_fake_plug(test, fb);
	fake_request_stats(fb);
	fake_unplug(fb);
	/* Removal waited for the refill or cancelled it; nothing after reset. */
	KUNIT_EXPECT_LE(test, fb->stats_bufs, 2U);
	KUNIT_EXPECT_EQ(test, fb->status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_stats_cases[] = {
	KUNIT_CASE(stats_queued_before_driver_ok_sent_after),
	KUNIT_CASE(stats_refreshed_on_each_request),
	KUNIT_CASE(stats_event_counters_in_units),
	KUNIT_CASE(stats_absent_without_feature),
	KUNIT_CASE(stats_request_racing_removal),
	{ }
};

static struct kunit_suite balloon_virtio_stats_suite = {
	.name = "balloon_virtio_stats",
	.init = virtio_fake_init,
	.exit = virtio_fake_exit,
	.test_cases = balloon_virtio_stats_cases,
};

kunit_test_suite(balloon_virtio_stats_suite);
