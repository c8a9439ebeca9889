// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite balloon_virtio_wire, against the fake device of
 * virtio_fake.h: the PFN arrays, the host told before a page is freed,
 * "actual", and the config of legacy and modern devices.
 */
#include <kunit/test.h>
#include <linux/mm.h>

#include "virtio_fake.h"

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

	fake_target(fb, PFNS(3000), false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, PFNS(3000));

	KUNIT_EXPECT_EQ(test, fb->nr_held, (unsigned long)PFNS(3000));
	KUNIT_EXPECT_EQ(test, fb->inflated, (unsigned long)PFNS(3000));
	KUNIT_EXPECT_EQ(test, fb->deflated, 0UL);
	KUNIT_EXPECT_LE(test, fb->max_request, BALLOON_VIRTIO_PFNS);
	KUNIT_EXPECT_GE(test, fb->inflates,
			DIV_ROUND_UP(PFNS(3000), BALLOON_VIRTIO_PFNS));
	/* Every PFN the device holds is a page the balloon owns. */
	xa_for_each(&fb->held, pfn, entry)
		offline += PageOffline(pfn_to_page(pfn / BALLOON_CORE_UNITS_PER_PAGE));
	KUNIT_EXPECT_EQ(test, offline, PFNS(3000));
	expect_clean(test, fb);
}

static void deflate_tells_host_before_free(struct kunit *test)
{
	struct fake_balloon *fb = test->priv;
	unsigned int i, deflate_at = 0, actual_at = 0;

	fake_target(fb, PFNS(3000), false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, PFNS(3000));
	fb->nlog = 0;
	fake_move(test, fb, PFNS(1000));

	KUNIT_EXPECT_EQ(test, fb->nr_held, (unsigned long)PFNS(1000));
	KUNIT_EXPECT_EQ(test, fb->deflated, (unsigned long)PFNS(2000));
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

		fake_move(test, fb, PFNS(targets[i]));
		KUNIT_EXPECT_GT_MSG(test, fb->actual_writes, writes,
				    "target %u", targets[i]);
		KUNIT_EXPECT_EQ(test, fb->nr_held,
				(unsigned long)PFNS(targets[i]));
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
	/* Distinct bytes, and whole pages of up to 64 KiB. */
	fake_target(fb, 0x310, false);
	virtio_fake_plug(test, fb);
	fake_wait_actual(test, fb, 0x310);

	KUNIT_EXPECT_EQ(test, !!(fb->features & BIT_ULL(VIRTIO_F_VERSION_1)),
			c->modern);
	/* Only a modern device has FEATURES_OK. */
	KUNIT_EXPECT_EQ(test, !!(fb->status & VIRTIO_CONFIG_S_FEATURES_OK),
			c->modern);
	/* The balloon's config is little-endian on legacy devices too. */
	memcpy(raw, &fb->config.actual, sizeof(raw));
	KUNIT_EXPECT_EQ(test, raw[0], 0x10);
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

kunit_test_suite(balloon_virtio_wire_suite);
