// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for balloon_virtio against the fake virtio balloon device
 * of virtio_fake.h.
 *
 * Suites: balloon_virtio_wire (PFN arrays, ordering, actual, legacy and
 * modern devices), balloon_virtio_stats, balloon_virtio_features (page
 * poison, free page reporting, queue layout), balloon_virtio_life
 * (removal, freeze and restore, untrusted and flapping targets) and
 * balloon_virtio_hinting (free page hinting and its shrinker).
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/page_reporting.h>
#include <linux/pageblock-flags.h>
#include <linux/sizes.h>
#include <linux/vmalloc.h>
#include <linux/vmstat.h>

#include "virtio_fake.h"

/* -- balloon_virtio_wire --------------------------------------------------- */

static void probe_binds_and_negotiates(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	fb->offered |= FAKE_F(DEFLATE_ON_OOM);
	virtio_fake_plug(test, fb);

	KUNIT_EXPECT_TRUE(test, fb->status & VIRTIO_CONFIG_S_DRIVER_OK);
	KUNIT_EXPECT_TRUE(test, fb->status & VIRTIO_CONFIG_S_FEATURES_OK);
	/* Indirect descriptors are refused: a report must not allocate. */
	KUNIT_EXPECT_EQ(test, fb->features,
			BIT_ULL(VIRTIO_F_VERSION_1) | FAKE_F(MUST_TELL_HOST) |
			FAKE_F(STATS_VQ) | FAKE_F(DEFLATE_ON_OOM));
	KUNIT_EXPECT_EQ(test, fb->nq, 3U);
	KUNIT_EXPECT_EQ(test, fb->readies, 1U);
	expect_clean(test, fb);
}

static void inflate_sends_4k_pfns_of_balloon_pages(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned long pfn;
	void *entry;
	unsigned int offline = 0;

	fake_target(fb, 3000, false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, 3000);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 3000UL);
	KUNIT_EXPECT_EQ(test, fb->inflated, 3000UL);
	KUNIT_EXPECT_EQ(test, fb->deflated, 0UL);
	KUNIT_EXPECT_LE(test, fb->max_request, BALLOON_VIRTIO_PFNS);
	KUNIT_EXPECT_GE(test, fb->inflates, DIV_ROUND_UP(3000, BALLOON_VIRTIO_PFNS));
	/* Every PFN the device holds is a page the balloon owns. */
	xa_for_each(&fb->held, pfn, entry)
		offline += PageOffline(pfn_to_page(pfn / BALLOON_CORE_UNITS_PER_PAGE));
	KUNIT_EXPECT_EQ(test, offline, 3000U);
	expect_clean(test, fb);
}

static void deflate_tells_host_before_free(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int i, deflate_at = 0, actual_at = 0;

	fake_target(fb, 3000, false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, 3000);
	fb->nlog = 0;
	fake_move(test, fb, 1000);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 1000UL);
	KUNIT_EXPECT_EQ(test, fb->deflated, 2000UL);
	/* The device heard of each page while it was allocated (fake_pfns). */
	for (i = 0; i < fb->nlog; i++) {
		if (fb->log[i].ev == FAKE_EV_DEFLATE && !deflate_at)
			deflate_at = i + 1;
		if (fb->log[i].ev == FAKE_EV_ACTUAL && !actual_at)
			actual_at = i + 1;
	}
	/* Told first, then the new size reported. */
	KUNIT_EXPECT_GT(test, deflate_at, 0U);
	KUNIT_EXPECT_GT(test, actual_at, deflate_at);
	expect_clean(test, fb);
}

static void actual_follows_every_change(struct kunit *test)
{
	static const u32 targets[] = { 500, 2000, 100, 1234, 0 };
	struct fake_balloon *fb = test->priv;
	unsigned int i;

	virtio_fake_plug(test, fb);
	for (i = 0; i < ARRAY_SIZE(targets); i++) {
		unsigned int writes = fb->actual_writes;

		fake_move(test, fb, targets[i]);
		KUNIT_EXPECT_GT_MSG(test, fb->actual_writes, writes,
				    "target %u", targets[i]);
		KUNIT_EXPECT_EQ(test, fb->nr_held, (unsigned long)targets[i]);
	}
	KUNIT_EXPECT_EQ(test, fb->inflated - fb->deflated, 0UL);
	expect_clean(test, fb);
}

struct fake_transport_case {
	const char *name;
	bool modern;
};

static const struct fake_transport_case transport_cases[] = {
	{ "modern (VERSION_1)", true },
	{ "legacy", false },
};

static void transport_case_desc(const struct fake_transport_case *c,
				char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(transport, transport_cases, transport_case_desc);

static void config_le_on_legacy_and_modern(struct kunit *test)
{
	const struct fake_transport_case *c = test->param_value;
	struct fake_balloon *fb = test->priv;
	u8 raw[4];

	if (!c->modern)
		fb->offered &= ~BIT_ULL(VIRTIO_F_VERSION_1);
	fake_target(fb, 0x304, false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, 0x304);

	KUNIT_EXPECT_EQ(test, !!(fb->features & BIT_ULL(VIRTIO_F_VERSION_1)),
			c->modern);
	/* Only a modern device has FEATURES_OK. */
	KUNIT_EXPECT_EQ(test, !!(fb->status & VIRTIO_CONFIG_S_FEATURES_OK),
			c->modern);
	/* The balloon's config is little-endian on legacy devices too. */
	memcpy(raw, &fb->config.actual, sizeof(raw));
	KUNIT_EXPECT_EQ(test, raw[0], 0x04);
	KUNIT_EXPECT_EQ(test, raw[1], 0x03);
	KUNIT_EXPECT_EQ(test, raw[2], 0);
	KUNIT_EXPECT_EQ(test, raw[3], 0);
	/* Stats tags and values decode in the device's byte order. */
	KUNIT_EXPECT_EQ(test, fb->stats_bufs, 1U);
	fake_move(test, fb, 0);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_wire_cases[] = {
	KUNIT_CASE(probe_binds_and_negotiates),
	KUNIT_CASE(inflate_sends_4k_pfns_of_balloon_pages),
	KUNIT_CASE(deflate_tells_host_before_free),
	KUNIT_CASE(actual_follows_every_change),
	KUNIT_CASE_PARAM(config_le_on_legacy_and_modern, transport_gen_params),
	{ }
};

static struct kunit_suite balloon_virtio_wire_suite = {
	.name = "balloon_virtio_wire",
	.init = virtio_fake_init,
	.exit = virtio_fake_exit,
	.test_cases = balloon_virtio_wire_cases,
};

/* -- balloon_virtio_stats -------------------------------------------------- */

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
	fake_move(test, fb, 700);
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

/* -- balloon_virtio_features ----------------------------------------------- */

struct fake_feature_case {
	const char *name;
	u64 offered;
	enum fake_content content;
	u64 accepted;
	bool poison_written;
	u32 poison_val;
};

static const struct fake_feature_case feature_cases[] = {
	{ "free pages unused, device has poison and reporting",
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), FAKE_FREE_ANY,
	  FAKE_F(REPORTING), false, 0 },
	{ "init_on_free, device has poison and reporting",
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), FAKE_FREE_ZEROED,
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), true, 0 },
	{ "page_poison, device has poison and reporting",
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), FAKE_FREE_POISONED,
	  FAKE_F(PAGE_POISON) | FAKE_F(REPORTING), true, 0xaaaaaaaa },
	{ "page_poison, device without poison",
	  FAKE_F(REPORTING), FAKE_FREE_POISONED, 0, false, 0 },
	{ "init_on_free, device without poison",
	  FAKE_F(REPORTING), FAKE_FREE_ZEROED, 0, false, 0 },
	{ "free pages unused, device has reporting only",
	  FAKE_F(REPORTING), FAKE_FREE_ANY, FAKE_F(REPORTING), false, 0 },
	{ "device has hinting and reporting",
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(REPORTING), FAKE_FREE_ANY,
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(REPORTING), false, 0 },
	{ "device has hinting only",
	  FAKE_F(FREE_PAGE_HINT), FAKE_FREE_ANY, FAKE_F(FREE_PAGE_HINT),
	  false, 0 },
	{ "page_poison, device has hinting, poison and reporting",
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(PAGE_POISON) | FAKE_F(REPORTING),
	  FAKE_FREE_POISONED,
	  FAKE_F(FREE_PAGE_HINT) | FAKE_F(PAGE_POISON) | FAKE_F(REPORTING),
	  true, 0xaaaaaaaa },
};

static void feature_case_desc(const struct fake_feature_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(feature, feature_cases, feature_case_desc);

static void features_follow_free_page_rules(struct kunit *test)
{
	const struct fake_feature_case *c = test->param_value;
	const u64 mask = FAKE_F(PAGE_POISON) | FAKE_F(REPORTING) |
			 FAKE_F(FREE_PAGE_HINT);
	struct fake_balloon *fb = test->priv;

	virtio_fake_guest_content(test, c->content);
	fb->offered |= c->offered;
	virtio_fake_plug(test, fb);

	KUNIT_EXPECT_EQ(test, fb->features & mask, c->accepted);
	KUNIT_EXPECT_EQ(test, fb->poison_writes > 0, c->poison_written);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(fb->config.poison_val), c->poison_val);
	KUNIT_EXPECT_EQ(test, fb->vb->reporting,
			!!(c->accepted & FAKE_F(REPORTING)));
	KUNIT_EXPECT_EQ(test, !!fb->vb->vqs[BALLOON_VIRTIO_VQ_REPORTING],
			!!(c->accepted & FAKE_F(REPORTING)));
	KUNIT_EXPECT_EQ(test, !!fb->vb->vqs[BALLOON_VIRTIO_VQ_FREE_PAGE],
			!!(c->accepted & FAKE_F(FREE_PAGE_HINT)));
	/* The balloon itself works whatever was negotiated. */
	fake_move(test, fb, 300);
	expect_clean(test, fb);
}

static void reporting_sends_free_runs(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int reports;
	bool reported;

	virtio_fake_guest_content(test, FAKE_FREE_ANY);
	fb->offered |= FAKE_F(REPORTING);
	virtio_fake_plug(test, fb);
	KUNIT_ASSERT_TRUE(test, fb->vb->reporting);

	/* The page reporting worker starts 2 s after registration. */
	reported = fake_wait_for(READ_ONCE(fb->reports) > 0);
	KUNIT_EXPECT_TRUE_MSG(test, reported, "no report; device error: \"%s\"",
			      fb->error);
	KUNIT_EXPECT_GE(test, fb->reported_pages, 1UL << pageblock_order);
	fake_unplug(fb);
	reports = fb->reports;
	msleep(100);
	KUNIT_EXPECT_EQ(test, fb->reports, reports);
	expect_clean(test, fb);
}

static void reporting_short_ring_goes_without(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;

	virtio_fake_guest_content(test, FAKE_FREE_ANY);
	fb->offered |= FAKE_F(REPORTING);
	fb->report_ring = PAGE_REPORTING_CAPACITY / 2;
	virtio_fake_plug(test, fb);

	KUNIT_EXPECT_TRUE(test, fb->features & FAKE_F(REPORTING));
	KUNIT_EXPECT_FALSE(test, fb->vb->reporting);
	fake_move(test, fb, 300);
	expect_clean(test, fb);
}

static struct kunit_case balloon_virtio_features_cases[] = {
	KUNIT_CASE_PARAM(features_follow_free_page_rules, feature_gen_params),
	KUNIT_CASE_SLOW(reporting_sends_free_runs),
	KUNIT_CASE(reporting_short_ring_goes_without),
	{ }
};

static struct kunit_suite balloon_virtio_features_suite = {
	.name = "balloon_virtio_features",
	.init = virtio_fake_init,
	.exit = virtio_fake_exit,
	.test_cases = balloon_virtio_features_cases,
};

/* -- balloon_virtio_life ---------------------------------------------------- */

static void remove_returns_every_page_then_resets(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int resets, i, last_deflate = 0, reset_at = 0;

	fake_target(fb, 2000, false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, 2000);
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
	fake_target(fb, 1000, false);
	virtio_fake_plug(test, fb);
	vdev = &fb->v->vdev;
	fake_wait_actual(test, fb, 1000);

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
	fake_wait_actual(test, fb, 1000);
	KUNIT_EXPECT_EQ(test, fb->nr_held, 1000UL);
	expect_clean(test, fb);
}

static void failed_restore_then_remove(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	struct virtio_device *vdev;

	if (!IS_ENABLED(CONFIG_PM_SLEEP))
		kunit_skip(test, "no CONFIG_PM_SLEEP");
	fake_target(fb, 300, false);
	virtio_fake_plug(test, fb);
	vdev = &fb->v->vdev;
	fake_wait_actual(test, fb, 300);

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
	fake_target(fb, 3000, true);
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
	KUNIT_EXPECT_EQ(test, bdev->size, 300);
	KUNIT_EXPECT_EQ(test, fake_actual(fb), 300U);
	/* Out of memory: the next cycle does nothing, and ends. */
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, 300);

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
	fake_move(test, fb, 1500);

	KUNIT_EXPECT_EQ(test, fb->nr_held, 1500UL);
	/* One cycle moves the balloon by at most its budget. */
	KUNIT_EXPECT_LE(test, fb->max_jump, 16384U);
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

/* -- balloon_virtio_hinting ------------------------------------------------ */

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
	fake_move(test, fb, 300);
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

kunit_test_suites(&balloon_virtio_wire_suite, &balloon_virtio_stats_suite,
		  &balloon_virtio_features_suite, &balloon_virtio_life_suite,
		  &balloon_virtio_hinting_suite);
