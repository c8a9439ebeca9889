// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_virtio: free page reporting (VIRTIO_BALLOON_F_REPORTING), the
 * page poison value (VIRTIO_BALLOON_F_PAGE_POISON), and the rules that tie
 * the two together.
 *
 * With reporting, the kernel's page reporting worker hands the driver runs
 * of free pages (pageblock order and up, at most PAGE_REPORTING_CAPACITY at
 * a time), and the driver passes them to the device, which may drop their
 * contents: they are free, and the host can take the memory back until the
 * guest touches it again.  That is only safe while free pages hold nothing
 * the guest relies on.  A guest that fills freed pages with a pattern
 * (page_poison=1) or zeroes (init_on_free=1) relies on it, so it needs a
 * device that knows the pattern and keeps it (PAGE_POISON, with the pattern
 * in the config's poison_val); with a device that does not, the driver
 * does not report.  A guest that does neither has no pattern to tell, and
 * does not accept PAGE_POISON.  These are the in-tree driver's rules.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/poison.h>
#include <linux/scatterlist.h>
#include <linux/string.h>
#include <linux/virtio_config.h>

#include "internal.h"

/**
 * balloon_virtio_free_page_content() - what this guest keeps in free pages
 * @poison_val: where to store the pattern free pages hold.
 *
 * A static stub lets KUnit suites play a guest booted with init_on_free=1
 * or page_poison=1.
 *
 * Context: Any context.
 * Return: true when freed pages hold a known pattern the guest relies on
 * (then @poison_val is set: 0 for init_on_free, PAGE_POISON bytes for page
 * poisoning), false when their contents do not matter.
 */
VISIBLE_IF_KUNIT bool balloon_virtio_free_page_content(u32 *poison_val)
{
	KUNIT_STATIC_STUB_REDIRECT(balloon_virtio_free_page_content, poison_val);
	/* init_on_free wins: it zeroes what poisoning would have filled. */
	if (want_init_on_free()) {
		*poison_val = 0;
		return true;
	}
	if (page_poisoning_enabled_static()) {
		memset(poison_val, PAGE_POISON, sizeof(*poison_val));
		return true;
	}
	return false;
}
EXPORT_SYMBOL_IF_KUNIT(balloon_virtio_free_page_content);

/**
 * balloon_virtio_features_validate() - apply the free page feature rules
 * @vdev: the device, its features offered and not yet final.
 *
 * Drops PAGE_POISON when free pages hold nothing the guest relies on, and
 * REPORTING when they do but the device cannot keep the pattern, or when
 * this kernel has no page reporting.
 *
 * Context: Process context, from the virtio driver's validate hook.
 */
void balloon_virtio_features_validate(struct virtio_device *vdev)
{
	u32 unused;

	if (!balloon_virtio_free_page_content(&unused))
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_PAGE_POISON);
	else if (!virtio_has_feature(vdev, VIRTIO_BALLOON_F_PAGE_POISON))
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_REPORTING);

	if (!IS_ENABLED(CONFIG_PAGE_REPORTING))
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_REPORTING);
}

/**
 * balloon_virtio_poison_write() - tell the device the free page pattern
 * @vb: the balloon device, before DRIVER_OK.
 *
 * The device forgets poison_val when it is reset, so this runs at every
 * start of the device (probe and restore).
 *
 * Context: Process context.
 */
void balloon_virtio_poison_write(struct balloon_virtio *vb)
{
	u32 poison_val = 0;

	if (!virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_PAGE_POISON))
		return;
	/* A single byte repeated: the same in either byte order. */
	balloon_virtio_free_page_content(&poison_val);
	virtio_cwrite_le(vb->vdev, struct virtio_balloon_config, poison_val,
			 &poison_val);
}

#ifdef CONFIG_PAGE_REPORTING
/*
 * The page reporting worker's callback: hand the runs to the device and
 * wait until it is done with them.  They go as device-writable buffers,
 * since the device may drop their contents.
 */
static int balloon_virtio_report(struct page_reporting_dev_info *pr_dev_info,
				 struct scatterlist *sg, unsigned int nents)
{
	struct balloon_virtio *vb =
		container_of(pr_dev_info, struct balloon_virtio, pr_dev_info);
	struct virtqueue *vq = vb->vqs[BALLOON_VIRTIO_VQ_REPORTING];
	int ret;

	/*
	 * One report in flight at a time, in a ring of at least as many
	 * descriptors as a report has runs, and no indirect descriptors
	 * (validate turned them off): nothing to allocate, so this cannot
	 * fail short of a broken device.
	 */
	ret = virtqueue_add_inbuf(vq, sg, nents, vb, GFP_NOWAIT | __GFP_NOWARN);
	if (ret) {
		dev_warn_ratelimited(&vb->vdev->dev,
				     "cannot queue a free page report: %d\n",
				     ret);
		return ret;
	}
	virtqueue_kick(vq);
	return balloon_virtio_wait_used(vb, vq);
}

/**
 * balloon_virtio_reporting_start() - start reporting free pages
 * @vb: the balloon device, DRIVER_OK.
 *
 * Free page reporting is an extra: when it cannot start (a ring too short
 * for a report, or another device already reporting) the balloon works
 * without it.
 *
 * Context: Process context; may sleep.
 */
void balloon_virtio_reporting_start(struct balloon_virtio *vb)
{
	struct virtqueue *vq = vb->vqs[BALLOON_VIRTIO_VQ_REPORTING];
	int ret;

	if (!vq)
		return;
	if (virtqueue_get_vring_size(vq) < PAGE_REPORTING_CAPACITY) {
		dev_warn(&vb->vdev->dev,
			 "reporting queue of %u entries is too short; not reporting free pages\n",
			 virtqueue_get_vring_size(vq));
		return;
	}
	vb->pr_dev_info.report = balloon_virtio_report;
	/*
	 * Report free runs of 2 MiB and more, on every page size: a pageblock,
	 * the kernel's default, with 4 KiB pages, and the huge page of a host
	 * with 4 KiB pages, which a run that size lets it free whole.  A
	 * pageblock is 32 MiB with 16 KiB pages and 512 MiB with 64 KiB
	 * (where the in-tree driver too reports from 2 MiB): a guest that has
	 * run a while has few free runs that long.
	 */
	vb->pr_dev_info.order = BALLOON_CORE_ORDER_2M;
	ret = page_reporting_register(&vb->pr_dev_info);
	if (ret) {
		dev_warn(&vb->vdev->dev,
			 "cannot report free pages (%d); going on without\n",
			 ret);
		return;
	}
	vb->reporting = true;
}

/**
 * balloon_virtio_reporting_stop() - stop reporting free pages
 * @vb: the balloon device.
 *
 * Waits for a report in flight, which the device completes.
 *
 * Context: Process context; may sleep.
 */
void balloon_virtio_reporting_stop(struct balloon_virtio *vb)
{
	if (!vb->reporting)
		return;
	page_reporting_unregister(&vb->pr_dev_info);
	vb->reporting = false;
}
#else
void balloon_virtio_reporting_start(struct balloon_virtio *vb)
{
}

void balloon_virtio_reporting_stop(struct balloon_virtio *vb)
{
}
#endif
