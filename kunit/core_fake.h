/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The fake transport of the balloon_core suites.
 *
 * The fake is a model of a host: it keeps the set of pages it holds (a
 * double inflate or the release of a page it never held is an error, as on
 * real hosts), answers from a script (errors and resets on the Nth call of
 * a method), and records every call with a sequence number.  It registers
 * against the real core.  Page allocation goes through a static stub, so
 * tests can make non-sleeping or sleeping allocations fail at any step.
 *
 * The fake host is polled once an hour, so the core's own work item runs
 * only the first cycle after registration; tests then step the balloon
 * with balloon_core_run_cycle().
 *
 * The suites may be built into the kernel, where the functions of
 * core_fake.c are global: they carry the core_fake_ prefix.  The inline
 * helpers here are the cases' shorthand.
 */
#ifndef _BALLOON_KUNIT_CORE_FAKE_H
#define _BALLOON_KUNIT_CORE_FAKE_H

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "../core/internal.h"
#include "pages_check.h"

enum fake_op {
	FAKE_START,
	FAKE_TARGET,
	FAKE_INFLATE,
	FAKE_DEFLATE,
	FAKE_SIZE,
	FAKE_DETACH,
	FAKE_OP_NR
};

#define FAKE_LOG	64
#define FAKE_SCRIPT	4
#define FAKE_NEVER	UINT_MAX

struct fake_call {
	unsigned int seq;
	enum fake_op op;
	unsigned int count;
	int ret;
};

/* Return @ret from the @nth call (1-based) of @op. */
struct fake_script {
	enum fake_op op;
	unsigned int nth;
	int ret;
};

struct fake_host {
	struct balloon_core_dev bdev;
	struct kunit *test;

	/* what the host does */
	u64 target;
	unsigned int orders;		/* page orders the host accepts */
	unsigned int cap_flags;		/* BALLOON_CORE_CAP_* besides POLL */
	unsigned int max_batch;
	unsigned int refuse_every;	/* refuse every Nth 4 KiB page; 0: none */
	unsigned int refuse_huge_every;	/* the same for huge pages */
	unsigned int keep_every;	/* keep every Nth page asked back; 0: none */
	unsigned long keep_pfn;		/* never give this page back; 0: none */
	bool detach_drops;		/* detach: the host lets go of everything */
	struct completion *stall;	/* inflate waits for it; NULL: no wait */
	bool stalled;			/* an inflate call is waiting on @stall */
	unsigned int retarget_at;	/* inflate call that carries a new target */
	u64 retarget;			/* ... and the target it carries */
	struct fake_script script[FAKE_SCRIPT];

	/* what the guest's allocator does */
	unsigned int nosleep_ok;	/* successes before failing */
	unsigned int sleep_ok;
	unsigned int huge_ok;
	unsigned int block_ok;		/* blocks split into 4 KiB pages */
	unsigned int block_allocs;
	unsigned int nosleep_allocs;
	unsigned int sleep_allocs;
	unsigned int huge_allocs;
	bool bad_gfp;
	unsigned int slot_ok;		/* own-array slots before failing */
	unsigned int slots;
	bool slot_locked;		/* a huge page's slot under the work lock */
	unsigned long refaults;		/* added to the guest's own refaults */

	/* what the host saw */
	struct xarray held;		/* pfn -> page order, as a value */
	unsigned int seq;
	unsigned int calls[FAKE_OP_NR];
	unsigned int pages_in;		/* 4 KiB pages offered by inflate */
	unsigned int huge_in;		/* huge pages offered by inflate */
	unsigned int pages_out;		/* base pages released by deflate */
	unsigned int kept;		/* pages asked back, counting kept ones */
	struct fake_call log[FAKE_LOG];
	unsigned int nlog;
	u64 reported;
	unsigned long isolated_at_size;	/* isolated pages seen by size_changed */
	bool protocol_error;
	bool registered;

	/* how the core takes 4 KiB pages off the kernel's list */
	unsigned int dequeue_calls;
	size_t dequeue_max;		/* most pages under one hold of its lock */

	/* an isolated page the "MM" puts back later */
	struct delayed_work putback_work;
	struct page *putback_page;
	bool let_go;			/* the migration's last step happened */
};

/*
 * @pages guest pages in the 4 KiB units that targets and sizes count in
 * (include/balloon/core.h).  The cases think in pages, as the core's rates
 * and batches do, and speak to the host in units.
 */
#define UNITS(pages)	((u64)(pages) * BALLOON_CORE_UNITS_PER_PAGE)

/*
 * The size at which work proportional to the balloon must be seen to run
 * in bounded chunks: 4 GiB and a bit, as a VMware guest of 16 GiB holds,
 * over a million 4 KiB pages.  A guest with larger pages needs fewer of
 * them for it (65792 of 64 KiB), still hundreds of chunks.  scripts/
 * kunit.sh gives UML and QEMU the memory for it.
 */
#define BALLOON_KUNIT_MANY_UNITS	((1U << 20) + 4096)
#define BALLOON_KUNIT_MANY_PAGES	\
	(BALLOON_KUNIT_MANY_UNITS / BALLOON_CORE_UNITS_PER_PAGE)

/* Whether the kernel counts ballooned pages (NR_BALLOON_PAGES). */
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
#define BALLOON_KUNIT_COUNTED	true
#else
#define BALLOON_KUNIT_COUNTED	false
#endif

#define HUGE_ORDER	BALLOON_CORE_MAX_ORDER
#define HUGE_PAGES	BIT(HUGE_ORDER)
/*
 * Base pages in 2 MiB, the largest block and huge page the core takes on
 * every page size (512, 128 or 32): from the size, not from the core's
 * constant, so that the cases pin that choice.
 */
#define PAGES_2M	(SZ_2M / PAGE_SIZE)

extern const struct balloon_core_ops core_fake_ops;

int core_fake_start(struct balloon_core_dev *bdev,
		    struct balloon_core_caps *caps);
int core_fake_get_target(struct balloon_core_dev *bdev, u64 *target);
int core_fake_init(struct kunit *test);
void core_fake_exit(struct kunit *test);

/* A host that demands a reset has forgotten every page it held. */
static inline void fake_forget(struct fake_host *host)
{
	xa_destroy(&host->held);
}

/* Base pages the host holds. */
static inline unsigned long fake_held(struct fake_host *host)
{
	unsigned long index, n = 0;
	void *entry;

	xa_for_each(&host->held, index, entry)
		n += 1UL << xa_to_value(entry);
	return n;
}

/* Register against the real core and let its first cycle (start) run. */
static inline void fake_register(struct kunit *test, struct fake_host *host)
{
	KUNIT_ASSERT_EQ(test, balloon_core_register(&host->bdev, &core_fake_ops,
						    NULL, "kunit"), 0);
	host->registered = true;
	flush_delayed_work(&host->bdev.work);
	KUNIT_ASSERT_EQ(test, host->calls[FAKE_START], 1U);
}

static inline void fake_unregister(struct fake_host *host)
{
	balloon_core_unregister(&host->bdev);
	host->registered = false;
}

static inline u64 stat(struct fake_host *host, enum balloon_core_stat s)
{
	return balloon_core_stat_read(&host->bdev, s);
}

/* The core's view and the host's view of the balloon agree. */
static inline void expect_consistent(struct kunit *test, struct fake_host *host)
{
	KUNIT_EXPECT_EQ(test, host->bdev.size, UNITS(fake_held(host)));
	KUNIT_EXPECT_FALSE(test, host->protocol_error);
	KUNIT_EXPECT_FALSE(test, host->bad_gfp);
	KUNIT_EXPECT_FALSE(test, host->slot_locked);
	KUNIT_EXPECT_TRUE(test, list_empty(&host->bdev.refused));
	expect_own_arrays(test, &host->bdev);
}

#endif /* _BALLOON_KUNIT_CORE_FAKE_H */
