// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_virtio: the virtio-balloon transport for balloon_core.
 *
 * Speaks the virtio balloon device's wire protocol only: PFN arrays on the
 * inflate and deflate virtqueues, num_pages read from and actual written to
 * the config space, memory statistics on the stats queue (stats.c), free
 * page reporting with the page poison rules (reporting.c), and free page
 * hinting for live migration (hinting.c).  Every balloon policy decision
 * is balloon_core's.  Interrupts only schedule work: a config change kicks
 * the core's work loop and the hinting work, a stats request the stats
 * work.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/wait.h>

#include "internal.h"

static struct balloon_virtio *to_balloon_virtio(struct balloon_core_dev *bdev)
{
	return container_of(bdev, struct balloon_virtio, bdev);
}

static void balloon_virtio_ack(struct virtqueue *vq)
{
	struct balloon_virtio *vb = vq->vdev->priv;

	wake_up(&vb->acked);
}

/**
 * balloon_virtio_wait_used() - wait for the device to hand back a buffer
 * @vb: the balloon device.
 * @vq: a queue with a buffer in flight, whose callback wakes @vb->acked.
 *
 * A device the virtio core has marked broken (surprise removal,
 * virtio_error()) never hands anything back and raises no interrupt, so
 * the wait looks again every second and gives up on a broken queue.  A
 * live device is waited for as long as it takes: the buffer is its own.
 *
 * Context: Process context; sleeps.
 * Return: 0 with the buffer detached, or -%EIO on a broken device.
 */
int balloon_virtio_wait_used(struct balloon_virtio *vb, struct virtqueue *vq)
{
	unsigned int len;
	void *buf = NULL;

	for (;;) {
		wait_event_timeout(vb->acked,
				   (buf = virtqueue_get_buf(vq, &len)) ||
				   virtqueue_is_broken(vq), HZ);
		if (buf)
			return 0;
		if (virtqueue_is_broken(vq)) {
			dev_err_ratelimited(&vb->vdev->dev,
					    "%s queue is broken; giving up on it\n",
					    vq->name);
			return -EIO;
		}
	}
}

static int balloon_virtio_start(struct balloon_core_dev *bdev,
				struct balloon_core_caps *caps)
{
	struct balloon_virtio *vb = to_balloon_virtio(bdev);

	caps->orders = BIT(0);
	caps->max_batch = BALLOON_VIRTIO_PFNS / BALLOON_CORE_UNITS_PER_PAGE;
	caps->poll_ms = 0;
	/*
	 * As the in-tree driver: a host that lets the guest deflate on OOM
	 * gets its pages back under pressure; otherwise ballooned pages
	 * leave the guest's MemTotal.
	 */
	if (virtio_has_feature(vb->vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM))
		caps->flags = BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	else
		caps->flags = BALLOON_CORE_CAP_ADJUST_MANAGED;
	return 0;
}

static int balloon_virtio_get_target(struct balloon_core_dev *bdev,
				     u64 *target)
{
	struct balloon_virtio *vb = to_balloon_virtio(bdev);
	u32 num_pages;

	virtio_cread_le(vb->vdev, struct virtio_balloon_config, num_pages,
			&num_pages);
	*target = num_pages;
	return 0;
}

/*
 * Send the batch's PFNs (in 4 KiB units) and wait for the device.  One
 * batch is up to BALLOON_VIRTIO_PFNS PFNs, sent as buffers of at most
 * BALLOON_VIRTIO_DESC_PFNS each (what every device takes, since the
 * in-tree driver sends that many), with one kick and one wait for all.
 * A page whose PFN does not fit the protocol's 32 bits is refused, and so
 * is one whose buffer could not be queued: it stays out of the balloon,
 * or in it.
 */
static int balloon_virtio_tell_host(struct balloon_virtio *vb,
				    enum balloon_virtio_vq which,
				    struct balloon_core_batch *batch)
{
	struct virtqueue *vq = vb->vqs[which];
	unsigned int i, j, n = 0, off, len, sent = 0, told = 0;
	struct scatterlist sg;
	int ret = 0, err;

	for (i = 0; i < batch->count; i++) {
		u64 pfn = (u64)page_to_pfn(batch->pages[i]) *
			  BALLOON_CORE_UNITS_PER_PAGE;

		if (pfn + BALLOON_CORE_UNITS_PER_PAGE - 1 > U32_MAX) {
			batch->status[i] = -ERANGE;
			continue;
		}
		for (j = 0; j < BALLOON_CORE_UNITS_PER_PAGE; j++)
			vb->pfns[n++] = cpu_to_virtio32(vb->vdev, pfn + j);
	}

	for (off = 0; off < n; off += BALLOON_VIRTIO_DESC_PFNS) {
		len = min(n - off, BALLOON_VIRTIO_DESC_PFNS);
		sg_init_one(&sg, vb->pfns + off, sizeof(vb->pfns[0]) * len);
		/* No allocation: indirect descriptors are off (validate). */
		ret = virtqueue_add_outbuf(vq, &sg, 1, vb,
					   GFP_NOWAIT | __GFP_NOWARN);
		if (ret)
			break;
		sent++;
		told = off + len;
	}
	if (sent)
		virtqueue_kick(vq);
	for (; sent; sent--) {
		/* A broken device took nothing, as far as the guest can know. */
		err = balloon_virtio_wait_used(vb, vq);
		if (err)
			return err;
	}
	if (!ret)
		return 0;
	if (!told)
		return ret;	/* the whole command failed */

	/* The pages of the buffers that did not go are refused one by one. */
	for (i = 0, off = 0; i < batch->count; i++) {
		if (batch->status[i])
			continue;
		if (off >= told)
			batch->status[i] = ret;
		off += BALLOON_CORE_UNITS_PER_PAGE;
	}
	return 0;
}

static int balloon_virtio_inflate(struct balloon_core_dev *bdev,
				  struct balloon_core_batch *batch)
{
	return balloon_virtio_tell_host(to_balloon_virtio(bdev),
					BALLOON_VIRTIO_VQ_INFLATE, batch);
}

static int balloon_virtio_deflate(struct balloon_core_dev *bdev,
				  struct balloon_core_batch *batch)
{
	return balloon_virtio_tell_host(to_balloon_virtio(bdev),
					BALLOON_VIRTIO_VQ_DEFLATE, batch);
}

static void balloon_virtio_size_changed(struct balloon_core_dev *bdev,
					u64 size)
{
	struct balloon_virtio *vb = to_balloon_virtio(bdev);
	u32 actual = min_t(u64, size, U32_MAX);

	virtio_cwrite_le(vb->vdev, struct virtio_balloon_config, actual,
			 &actual);
}

static const struct balloon_core_ops balloon_virtio_ops = {
	.owner = THIS_MODULE,
	.name = "virtio",
	.start = balloon_virtio_start,
	.get_target = balloon_virtio_get_target,
	.inflate = balloon_virtio_inflate,
	.deflate = balloon_virtio_deflate,
	.size_changed = balloon_virtio_size_changed,
};

static void balloon_virtio_config_changed(struct virtio_device *vdev)
{
	struct balloon_virtio *vb = vdev->priv;

	/* Pairs with the release in probe: see an initialised @bdev. */
	if (smp_load_acquire(&vb->registered))
		balloon_core_kick(&vb->bdev);
	balloon_virtio_hint_changed(vb);
}

/*
 * Bring the device up: queues, the first stats buffer and the poison value,
 * DRIVER_OK, then free page reporting and hinting, and the core balloon,
 * whose first cycle may use the queues at once.  For probe and restore.
 */
static int balloon_virtio_start_device(struct balloon_virtio *vb)
{
	struct virtio_device *vdev = vb->vdev;
	struct balloon_compat_vq vq_info[BALLOON_VIRTIO_VQ_NR] = {
		[BALLOON_VIRTIO_VQ_INFLATE] = { "inflate", balloon_virtio_ack },
		[BALLOON_VIRTIO_VQ_DEFLATE] = { "deflate", balloon_virtio_ack },
	};
	int ret;

	/* Queues of features not negotiated stay nameless: they do not exist. */
	if (virtio_has_feature(vdev, VIRTIO_BALLOON_F_STATS_VQ))
		vq_info[BALLOON_VIRTIO_VQ_STATS] = (struct balloon_compat_vq) {
			"stats", balloon_virtio_stats_request };
	if (virtio_has_feature(vdev, VIRTIO_BALLOON_F_FREE_PAGE_HINT))
		vq_info[BALLOON_VIRTIO_VQ_FREE_PAGE] = (struct balloon_compat_vq) {
			"free_page", balloon_virtio_ack };
	if (virtio_has_feature(vdev, VIRTIO_BALLOON_F_REPORTING))
		vq_info[BALLOON_VIRTIO_VQ_REPORTING] = (struct balloon_compat_vq) {
			"reporting", balloon_virtio_ack };

	ret = balloon_compat_find_vqs(vdev, BALLOON_VIRTIO_VQ_NR, vb->vqs,
				      vq_info);
	if (ret)
		return ret;
	ret = balloon_virtio_stats_start(vb);
	if (ret)
		goto err_vqs;
	balloon_virtio_poison_write(vb);

	virtio_device_ready(vdev);
	/* The device may ask for stats from now on. */
	if (vb->vqs[BALLOON_VIRTIO_VQ_STATS])
		virtqueue_kick(vb->vqs[BALLOON_VIRTIO_VQ_STATS]);
	balloon_virtio_reporting_start(vb);
	ret = balloon_virtio_hint_start(vb);
	if (ret)
		goto err_live;

	ret = balloon_core_register(&vb->bdev, &balloon_virtio_ops,
				    &vdev->dev, dev_name(&vdev->dev));
	if (ret)
		goto err_live;
	balloon_virtio_hint_debugfs(vb);
	/* Publish @bdev to the config-change interrupt. */
	smp_store_release(&vb->registered, true);
	vb->live = true;
	return 0;

err_live:
	balloon_virtio_hint_stop(vb);
	balloon_virtio_reporting_stop(vb);
	balloon_virtio_stats_stop(vb);
err_vqs:
	virtio_reset_device(vdev);
	balloon_virtio_hint_free(vb);
	vdev->config->del_vqs(vdev);
	memset(vb->vqs, 0, sizeof(vb->vqs));
	return ret;
}

/*
 * Take it down: no more hints, reports or stats, the core gives every page
 * back through the queues, then the device is reset, the hinted blocks go
 * back to the guest, and the queues go.  For remove and freeze.
 */
static void balloon_virtio_stop_device(struct balloon_virtio *vb)
{
	struct virtio_device *vdev = vb->vdev;

	/*
	 * A restore that failed left nothing to stop but the device, which
	 * the virtio core expects reset when its driver goes.
	 */
	if (!vb->live) {
		virtio_reset_device(vdev);
		return;
	}
	vb->live = false;
	balloon_virtio_hint_stop(vb);
	balloon_virtio_reporting_stop(vb);
	balloon_virtio_stats_stop(vb);
	/* Config changes from here on need no kick: the core is going. */
	smp_store_release(&vb->registered, false);
	balloon_core_unregister(&vb->bdev);
	virtio_reset_device(vdev);
	balloon_virtio_hint_free(vb);
	vdev->config->del_vqs(vdev);
	memset(vb->vqs, 0, sizeof(vb->vqs));
}

static int balloon_virtio_probe(struct virtio_device *vdev)
{
	struct balloon_virtio *vb;
	int ret;

	if (!vdev->config->get) {
		dev_err(&vdev->dev, "config space access is not supported\n");
		return -EINVAL;
	}

	vb = kzalloc(sizeof(*vb), GFP_KERNEL);
	if (!vb)
		return -ENOMEM;
	vb->vdev = vdev;
	init_waitqueue_head(&vb->acked);
	balloon_virtio_stats_init(vb);
	balloon_virtio_hint_init(vb);
	vdev->priv = vb;

	ret = balloon_virtio_start_device(vb);
	if (ret)
		kfree(vb);
	return ret;
}

static void balloon_virtio_remove(struct virtio_device *vdev)
{
	struct balloon_virtio *vb = vdev->priv;

	balloon_virtio_stop_device(vb);
	kfree(vb);
}

#ifdef CONFIG_PM_SLEEP
/*
 * Hibernation resets the device on restore and forgets its queues: give
 * the balloon back before, and start afresh after, as the in-tree driver
 * does.  The freezable work is already stopped when freeze runs.
 */
static int balloon_virtio_freeze(struct virtio_device *vdev)
{
	balloon_virtio_stop_device(vdev->priv);
	return 0;
}

static int balloon_virtio_restore(struct virtio_device *vdev)
{
	return balloon_virtio_start_device(vdev->priv);
}
#endif

/*
 * Settle the features before the device sees them: the free page rules
 * (reporting.c), and no indirect descriptors, so that no free page report
 * or hint needs memory to be sent.  Like the in-tree driver, the balloon
 * does not go through the DMA API (ACCESS_PLATFORM): the device works on
 * guest-physical page numbers.
 */
static int balloon_virtio_validate(struct virtio_device *vdev)
{
	balloon_virtio_features_validate(vdev);
	__virtio_clear_bit(vdev, VIRTIO_RING_F_INDIRECT_DESC);
	__virtio_clear_bit(vdev, VIRTIO_F_ACCESS_PLATFORM);
	return 0;
}

static unsigned int balloon_virtio_features[] = {
	VIRTIO_BALLOON_F_MUST_TELL_HOST,
	VIRTIO_BALLOON_F_STATS_VQ,
	VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
	VIRTIO_BALLOON_F_FREE_PAGE_HINT,
	VIRTIO_BALLOON_F_PAGE_POISON,
	VIRTIO_BALLOON_F_REPORTING,
};

static const struct virtio_device_id balloon_virtio_ids[] = {
	{ VIRTIO_ID_BALLOON, VIRTIO_DEV_ANY_ID },
	{ }
};
MODULE_DEVICE_TABLE(virtio, balloon_virtio_ids);

static struct virtio_driver balloon_virtio_driver = {
	.feature_table = balloon_virtio_features,
	.feature_table_size = ARRAY_SIZE(balloon_virtio_features),
	.driver.name = KBUILD_MODNAME,
	.id_table = balloon_virtio_ids,
	.validate = balloon_virtio_validate,
	.probe = balloon_virtio_probe,
	.remove = balloon_virtio_remove,
	.config_changed = balloon_virtio_config_changed,
#ifdef CONFIG_PM_SLEEP
	.freeze = balloon_virtio_freeze,
	.restore = balloon_virtio_restore,
#endif
};
module_virtio_driver(balloon_virtio_driver);

MODULE_IMPORT_NS(BALLOON_CORE_NS);
MODULE_DESCRIPTION("virtio-balloon transport for balloon_core");
MODULE_AUTHOR("The balloon driver authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(BALLOON_VERSION);
