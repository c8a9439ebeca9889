/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels we build against, in one place.
 *
 * Linux 6.1 and later are supported (tested: 6.1, 6.12 and 7.3): the
 * top-level Kbuild stops the build before 6.1, and dkms.conf mirrors it.
 * Differences are feature probes, not version tests: the Kbuild greps the
 * target kernel's headers and defines a BALLOON_COMPAT_* macro for each
 * feature found.  The kernel's balloon page API (BALLOON_COMPAT_BALLOON_H,
 * BALLOON_COMPAT_NR_BALLOON_PAGES) is used by core/pages.c alone, which
 * keeps its differences to itself.
 */
#ifndef _BALLOON_COMPAT_H
#define _BALLOON_COMPAT_H

/*
 * Symbol namespaces: up to 6.12 a bare token that the export macros
 * stringify; since 6.13 a string literal (BALLOON_COMPAT_NS_STRING).
 */
#ifdef BALLOON_COMPAT_NS_STRING
#define BALLOON_CORE_NS		"BALLOON_CORE"
#define BALLOON_KUNIT_NS	"EXPORTED_FOR_KUNIT_TESTING"
#else
#define BALLOON_CORE_NS		BALLOON_CORE
#define BALLOON_KUNIT_NS	EXPORTED_FOR_KUNIT_TESTING
#endif

/*
 * KUnit static stubs arrived in 6.3 (BALLOON_COMPAT_STATIC_STUB).  Before
 * that a redirect is a no-op, as it is in any kernel without CONFIG_KUNIT.
 */
#ifdef BALLOON_COMPAT_STATIC_STUB
#include <kunit/static_stub.h>
#else
#define KUNIT_STATIC_STUB_REDIRECT(real_fn_name, args...) ((void)(real_fn_name))
#endif

#include <kunit/visibility.h>

/* The kernel's balloon page lists: linux/balloon.h since 7.0. */
#ifdef BALLOON_COMPAT_BALLOON_H
#include <linux/balloon.h>
#else
#include <linux/balloon_compaction.h>
#endif

/* 6.18 dropped MIGRATEPAGE_SUCCESS: a migrate callback returns 0. */
#include <linux/migrate.h>
#ifndef MIGRATEPAGE_SUCCESS
#define MIGRATEPAGE_SUCCESS	0
#endif

#include <linux/shrinker.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>

/*
 * Stats tags 10 to 15 are part of the virtio balloon protocol, and the
 * counters behind them exist in every supported kernel, but the uapi header
 * names them only from 6.10 on (BALLOON_COMPAT_BALLOON_STATS_RECLAIM).
 */
#ifndef BALLOON_COMPAT_BALLOON_STATS_RECLAIM
#define VIRTIO_BALLOON_S_OOM_KILL	10
#define VIRTIO_BALLOON_S_ALLOC_STALL	11
#define VIRTIO_BALLOON_S_ASYNC_SCAN	12
#define VIRTIO_BALLOON_S_DIRECT_SCAN	13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM	14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM	15
#endif

/* Most virtqueues balloon_compat_find_vqs() sets up. */
#define BALLOON_COMPAT_MAX_VQS	8

/**
 * struct balloon_compat_vq - what a virtqueue is called and who hears it
 * @name: the virtqueue's name; %NULL for a queue the device does not have
 *	(it gets no queue index, and its slot in the result is %NULL).
 * @callback: its interrupt callback, or %NULL.
 */
struct balloon_compat_vq {
	const char *name;
	vq_callback_t *callback;
};

/**
 * balloon_compat_find_vqs() - virtio_find_vqs() across kernel versions
 * @vdev: the virtio device.
 * @nvqs: number of virtqueues.
 * @vqs: where to store them.
 * @info: one entry per virtqueue.
 *
 * Linux 6.11 replaced the parallel callback and name arrays with an array
 * of &struct virtqueue_info (BALLOON_COMPAT_VIRTQUEUE_INFO).
 *
 * Context: Process context; may sleep.
 * Return: 0 or a negative errno.
 */
static inline int balloon_compat_find_vqs(struct virtio_device *vdev,
					  unsigned int nvqs,
					  struct virtqueue *vqs[],
					  const struct balloon_compat_vq *info)
{
#ifdef BALLOON_COMPAT_VIRTQUEUE_INFO
	struct virtqueue_info vqs_info[BALLOON_COMPAT_MAX_VQS] = { };
	unsigned int i;

	if (nvqs > ARRAY_SIZE(vqs_info))
		return -EINVAL;
	for (i = 0; i < nvqs; i++) {
		vqs_info[i].name = info[i].name;
		vqs_info[i].callback = info[i].callback;
	}
	return virtio_find_vqs(vdev, nvqs, vqs, vqs_info, NULL);
#else
	vq_callback_t *callbacks[BALLOON_COMPAT_MAX_VQS];
	const char *names[BALLOON_COMPAT_MAX_VQS];
	unsigned int i;

	if (nvqs > ARRAY_SIZE(names))
		return -EINVAL;
	for (i = 0; i < nvqs; i++) {
		names[i] = info[i].name;
		callbacks[i] = info[i].callback;
	}
	return virtio_find_vqs(vdev, nvqs, vqs, callbacks, names, NULL);
#endif
}

/**
 * struct balloon_compat_shrinker - a shrinker across kernel versions
 * @shrinker: the shrinker.  Linux 6.7 made shrinkers objects the kernel
 *	allocates, with a private data pointer (BALLOON_COMPAT_SHRINKER_ALLOC);
 *	before, their owner embedded them.
 * @private_data: what balloon_compat_shrinker_data() returns, before 6.7.
 */
struct balloon_compat_shrinker {
#ifdef BALLOON_COMPAT_SHRINKER_ALLOC
	struct shrinker *shrinker;
#else
	struct shrinker shrinker;
	void *private_data;
#endif
};

/**
 * balloon_compat_shrinker_register() - register a shrinker
 * @bs: the shrinker, unregistered.
 * @name: its name, for the shrinker debugfs.
 * @seeks: the cost of recreating an object (%DEFAULT_SEEKS); 0 for objects
 *	that cost nothing, which reclaim trims by half each time.
 * @count: its count_objects callback.
 * @scan: its scan_objects callback.
 * @data: what balloon_compat_shrinker_data() gives the callbacks.
 *
 * Context: Process context; may sleep.
 * Return: 0 or a negative errno.
 */
static inline int
balloon_compat_shrinker_register(struct balloon_compat_shrinker *bs,
				 const char *name, unsigned int seeks,
				 unsigned long (*count)(struct shrinker *,
							struct shrink_control *),
				 unsigned long (*scan)(struct shrinker *,
						       struct shrink_control *),
				 void *data)
{
#ifdef BALLOON_COMPAT_SHRINKER_ALLOC
	bs->shrinker = shrinker_alloc(0, "%s", name);
	if (!bs->shrinker)
		return -ENOMEM;
	bs->shrinker->count_objects = count;
	bs->shrinker->scan_objects = scan;
	bs->shrinker->seeks = seeks;
	bs->shrinker->private_data = data;
	shrinker_register(bs->shrinker);
	return 0;
#else
	bs->shrinker = (struct shrinker) {
		.count_objects = count,
		.scan_objects = scan,
		.seeks = seeks,
	};
	bs->private_data = data;
	return register_shrinker(&bs->shrinker, "%s", name);
#endif
}

/**
 * balloon_compat_shrinker_unregister() - unregister a shrinker
 * @bs: the shrinker, registered.
 *
 * Returns once no callback runs any more.
 *
 * Context: Process context; may sleep.
 */
static inline void
balloon_compat_shrinker_unregister(struct balloon_compat_shrinker *bs)
{
#ifdef BALLOON_COMPAT_SHRINKER_ALLOC
	shrinker_free(bs->shrinker);
	bs->shrinker = NULL;
#else
	unregister_shrinker(&bs->shrinker);
#endif
}

/**
 * balloon_compat_shrinker_data() - a shrinker callback's data
 * @shrinker: the shrinker the callback was called for.
 *
 * Context: Any context.
 * Return: the @data given to balloon_compat_shrinker_register().
 */
static inline void *balloon_compat_shrinker_data(struct shrinker *shrinker)
{
#ifdef BALLOON_COMPAT_SHRINKER_ALLOC
	return shrinker->private_data;
#else
	return container_of(shrinker, struct balloon_compat_shrinker,
			    shrinker)->private_data;
#endif
}

#endif /* _BALLOON_COMPAT_H */
