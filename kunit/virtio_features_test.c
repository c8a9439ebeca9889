// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_virtio_features, against the fake device of
 * virtio_fake.h: the page poison and free page reporting rules, with a
 * static stub playing what the guest leaves in free pages, the queue
 * layout, and real reports from the page reporting worker.
 */
#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/page_reporting.h>
#include <linux/pageblock-flags.h>

#include "virtio_fake.h"

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
	fake_move(test, fb, PFNS(300));
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
	/* Runs of 2 MiB and more, on every page size (not a pageblock). */
	KUNIT_EXPECT_EQ(test, (long)fb->vb->pr_dev_info.order,
			(long)get_order(SZ_2M));

	/* The page reporting worker starts 2 s after registration. */
	reported = fake_wait_for(READ_ONCE(fb->reports) > 0);
	KUNIT_EXPECT_TRUE_MSG(test, reported, "no report; device error: \"%s\"",
			      fb->error);
	KUNIT_EXPECT_GE(test, fb->reported_pages, 1UL << FAKE_REPORT_ORDER);
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
	fake_move(test, fb, PFNS(300));
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

kunit_test_suite(balloon_virtio_features_suite);
