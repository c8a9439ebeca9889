/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between balloon_core and its transports.
 *
 * balloon_core owns every balloon policy: page lists, allocation rates,
 * refused pages, resets, statistics and the work loop.  A transport only
 * speaks its hypervisor's protocol.  This header is the one seam between
 * the two: a transport fills a static const &struct balloon_core_ops,
 * embeds a &struct balloon_core_dev in its own device structure and calls
 * balloon_core_register().
 *
 * All sizes and targets crossing this seam are counted in 4 KiB units,
 * whatever the guest's page size, because that is what both the VMware and
 * the virtio protocols count in.
 */
#ifndef _BALLOON_CORE_H
#define _BALLOON_CORE_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/notifier.h>
#include <linux/rwsem.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <asm/page.h>

#include <balloon/compat.h>

/*
 * BALLOON_VERSION, every module's MODULE_VERSION(), comes from the top
 * Kbuild, which reads it from dkms.conf: one version for the package and
 * its modules.
 */
#ifndef BALLOON_VERSION
#error "BALLOON_VERSION is not defined: build through the top-level Kbuild"
#endif

struct balloon_core_dev;
struct dentry;
struct device;
struct module;
struct page;

/**
 * BALLOON_CORE_ERESET - errno a transport returns when the host demands a reset
 *
 * Any transport method returning -BALLOON_CORE_ERESET makes the core drop
 * every ballooned page without telling the host and run the transport's
 * @start handshake again before anything else.
 */
#define BALLOON_CORE_ERESET	ECONNRESET

/**
 * BALLOON_CORE_UNITS_PER_PAGE - number of 4 KiB units in one guest page
 */
#define BALLOON_CORE_UNITS_PER_PAGE	(PAGE_SIZE / SZ_4K)

/**
 * BALLOON_CORE_ORDER_2M - the page order of 2 MiB
 *
 * 9 with 4 KiB pages, 7 with 16 KiB and 5 with 64 KiB.
 */
#define BALLOON_CORE_ORDER_2M	(21 - PAGE_SHIFT)

/**
 * BALLOON_CORE_MAX_ORDER - largest page order the core will ever allocate
 *
 * The order of a 2 MiB page, whatever the base page.  2 MiB is the
 * largest unit either supported host protocol knows (VMware's large
 * pages), and the huge page of a host with 4 KiB pages, which is the size
 * a contiguous run handed to a virtio host can free.  A guest's own PMD
 * size on 16 KiB (32 MiB) and 64 KiB (512 MiB) kernels is not used:
 * blocks that large are rarely free in a guest that has run a while, and
 * a host gains nothing from a run longer than its own huge page, which
 * the guest cannot know.
 */
#define BALLOON_CORE_MAX_ORDER	BALLOON_CORE_ORDER_2M

/**
 * BALLOON_CORE_MAX_BATCH - largest batch the core hands to a transport
 *
 * A larger &balloon_core_caps.max_batch is capped to this.  4096 pages
 * covers every known host command (VMware's batch page holds 512).
 */
#define BALLOON_CORE_MAX_BATCH	4096

/**
 * enum balloon_core_cap_flags - what a host allows or requires
 * @BALLOON_CORE_CAP_POLL: the host must be polled for its target with
 *	@get_target every &balloon_core_caps.poll_ms; without this flag the
 *	transport pushes target changes with balloon_core_kick().
 * @BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE: the host allows the guest to take
 *	pages back under memory pressure before the OOM killer runs.
 * @BALLOON_CORE_CAP_ADJUST_MANAGED: take ballooned pages out of the guest's
 *	managed page count, so that MemTotal shrinks with the balloon.  The
 *	in-tree virtio driver does this unless the host allows deflate on
 *	OOM; a transport states its choice here.
 */
enum balloon_core_cap_flags {
	BALLOON_CORE_CAP_POLL			= BIT(0),
	BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE	= BIT(1),
	BALLOON_CORE_CAP_ADJUST_MANAGED		= BIT(2),
};

/**
 * struct balloon_core_caps - what the host negotiated, filled in by @start
 * @orders: bit mask of the page orders the host accepts; bit 0 (a single
 *	page) must always be set.  The core tries the largest order first.
 * @max_batch: largest number of pages (of any order) one @inflate or
 *	@deflate call may carry; at least 1, at most %BALLOON_CORE_MAX_BATCH.
 * @poll_ms: target poll interval in milliseconds, used with
 *	%BALLOON_CORE_CAP_POLL.
 * @flags: a mask of &enum balloon_core_cap_flags.
 */
struct balloon_core_caps {
	unsigned int orders;
	unsigned int max_batch;
	unsigned int poll_ms;
	unsigned int flags;
};

/**
 * struct balloon_core_batch - pages handed to the transport in one call
 * @order: page order of every page in the batch.
 * @count: number of valid entries in @pages and @status.
 * @pages: the pages; the transport derives PFNs with page_to_pfn().
 * @status: one result per page, written by @inflate and @deflate: 0 when
 *	the host took (or released) the page, a negative errno when it
 *	refused that page alone.  The core sets every entry to 0 before the
 *	call.
 *
 * The core owns the batch and its arrays; a transport must not keep
 * pointers to them after the method returns.  The core fills and reads a
 * batch only under its work lock (&balloon_core_dev.lock), which is held
 * across the method call.
 */
struct balloon_core_batch {
	unsigned int order;
	unsigned int count;
	struct page **pages;
	int *status;
};

/**
 * struct balloon_core_ops - the methods a transport provides
 * @owner: the transport's module.  The core takes no reference on it: a
 *	transport unregisters before its module can go.
 * @name: short name of the transport, used in logs and debugfs.
 * @start: Required.  Run the host handshake (protocol negotiation, guest
 *	identification) and fill @caps.  Called once before any other method,
 *	and again after every reset.  May sleep; called with the core's work
 *	lock held.  Returns 0 or a negative errno; on error the core retries
 *	on its next cycle.
 * @get_target: Required.  Read the host's target balloon size, in 4 KiB
 *	units, into @target.  The value is untrusted: the core clamps it.
 *	May sleep; called with the work lock held.  Returns 0,
 *	-%BALLOON_CORE_ERESET, or another negative errno (the cycle is
 *	skipped).
 * @inflate: Required.  Tell the host that the pages in @batch now belong to
 *	the balloon, writing one result per page into &balloon_core_batch.status.
 *	May sleep; called with the work lock held.  Returns 0 when every
 *	page has a result, -%BALLOON_CORE_ERESET, -%EAGAIN when the host wants no
 *	more pages this cycle (the refused pages are in @status), or another
 *	negative errno when the command failed as a whole (no page was taken).
 *	A host reply that carries the current target may be passed on with
 *	balloon_core_update_target(), here or in @deflate.
 * @deflate: Optional.  Tell the host that the pages in @batch leave the
 *	balloon.  The core calls it before the pages are freed; when it is
 *	NULL the pages are freed without telling the host.  May sleep; called
 *	with the work lock held.  Returns 0 when every page has a result in
 *	&balloon_core_batch.status (a page the host would not release stays in
 *	the balloon, and the cycle's deflation stops there),
 *	-%BALLOON_CORE_ERESET, or another negative errno (no page released; the
 *	core keeps them and lowers its deflate rate).
 * @detach: Optional.  Called by balloon_core_unregister() once the work
 *	loop has stopped, before the balloon is emptied, whether or not the
 *	balloon is started (a failing host, or a reset pending).  Return
 *	-%BALLOON_CORE_ERESET when the host has let go of every page on its
 *	own (VMware's START without capabilities does that): the core then
 *	frees them without telling the host one by one.  Return 0 to have
 *	them given back through @deflate.  May sleep; called with the work
 *	lock held.
 * @size_changed: Optional.  Report the balloon's new size, in 4 KiB units,
 *	to the host (virtio's "actual").  May sleep; called with the work
 *	lock held, after every change.  No return value: a failure to report
 *	is the transport's to log.
 *
 * No method is called from atomic context, and none is called once
 * balloon_core_unregister() has returned.  No method may allocate memory
 * in a way that can enter reclaim (use GFP_NOWAIT): it would run under
 * the work lock, which the core's OOM notifier and balloon compaction
 * only trylock, and reclaim may wait on the very task that is out of
 * memory.
 */
struct balloon_core_ops {
	struct module *owner;
	const char *name;
	int (*start)(struct balloon_core_dev *bdev,
		     struct balloon_core_caps *caps);
	int (*get_target)(struct balloon_core_dev *bdev, u64 *target);
	int (*inflate)(struct balloon_core_dev *bdev,
		       struct balloon_core_batch *batch);
	int (*deflate)(struct balloon_core_dev *bdev,
		       struct balloon_core_batch *batch);
	int (*detach)(struct balloon_core_dev *bdev);
	void (*size_changed)(struct balloon_core_dev *bdev, u64 size);
};

/**
 * enum balloon_core_stat - indices into &balloon_core_dev.stats
 * @BALLOON_CORE_STAT_TIMER: work loop cycles.
 * @BALLOON_CORE_STAT_KICK: target pushes from the transport.
 * @BALLOON_CORE_STAT_START: @start calls.
 * @BALLOON_CORE_STAT_START_FAIL: failed @start calls.
 * @BALLOON_CORE_STAT_TARGET: @get_target calls.
 * @BALLOON_CORE_STAT_TARGET_FAIL: failed @get_target calls.
 * @BALLOON_CORE_STAT_INFLATE: @inflate calls.
 * @BALLOON_CORE_STAT_INFLATE_FAIL: failed @inflate calls.
 * @BALLOON_CORE_STAT_DEFLATE: @deflate calls.
 * @BALLOON_CORE_STAT_DEFLATE_FAIL: failed @deflate calls.
 * @BALLOON_CORE_STAT_ALLOC: non-sleeping base-page allocations.
 * @BALLOON_CORE_STAT_ALLOC_FAIL: failed non-sleeping page allocations.
 * @BALLOON_CORE_STAT_SLEEP_ALLOC: sleeping page allocations.
 * @BALLOON_CORE_STAT_SLEEP_ALLOC_FAIL: failed sleeping page allocations.
 * @BALLOON_CORE_STAT_REFUSED_ALLOC: pages (of any size) the host refused.
 * @BALLOON_CORE_STAT_REFUSED_FREE: refused pages given back to the guest.
 * @BALLOON_CORE_STAT_FREE: ballooned base pages given back to the guest.
 * @BALLOON_CORE_STAT_RESET: resets (host-demanded or transport-requested).
 * @BALLOON_CORE_STAT_CLAMPED: host targets clamped to guest memory.
 * @BALLOON_CORE_STAT_HUGE_ALLOC: huge-page allocations.
 * @BALLOON_CORE_STAT_HUGE_ALLOC_FAIL: failed huge-page allocations, and huge
 *	pages freed at once for want of a slot in the balloon (core/pages.c).
 * @BALLOON_CORE_STAT_HUGE_FREE: ballooned huge pages given back.
 * @BALLOON_CORE_STAT_HUGE_SPLIT: refused huge pages split into base pages.
 * @BALLOON_CORE_STAT_PRESSURE: pressure deflates that gave pages back: by
 *	the OOM notifier, by the next cycle in its place, or by a cycle that
 *	found the guest reclaiming hard.
 * @BALLOON_CORE_STAT_PRESSURE_FREE: 4 KiB units given back under pressure.
 * @BALLOON_CORE_STAT_HOLDOFF: cycles whose inflation was held off, after a
 *	pressure deflate or while the guest reclaims hard.
 * @BALLOON_CORE_STAT_MIGRATE: ballooned pages moved by balloon compaction.
 * @BALLOON_CORE_STAT_MIGRATE_FAIL: moves refused (balloon busy, host error).
 * @BALLOON_CORE_STAT_BLOCK_ALLOC: blocks of base pages taken whole and
 *	split (one allocation for up to 2 MiB of them).
 * @BALLOON_CORE_STAT_FLOOR: times a host target began to be cut by the
 *	guest floor (core/floor.c).
 * @BALLOON_CORE_STAT_RECLAIMING: cycles that found the guest reclaiming
 *	hard, and held inflation off.
 * @BALLOON_CORE_STAT_OOM: OOM notifications heard; each ends the pass of a
 *	cycle that was allocating meanwhile.
 * @BALLOON_CORE_STAT_NR: number of counters.
 */
enum balloon_core_stat {
	BALLOON_CORE_STAT_TIMER,
	BALLOON_CORE_STAT_KICK,
	BALLOON_CORE_STAT_START,
	BALLOON_CORE_STAT_START_FAIL,
	BALLOON_CORE_STAT_TARGET,
	BALLOON_CORE_STAT_TARGET_FAIL,
	BALLOON_CORE_STAT_INFLATE,
	BALLOON_CORE_STAT_INFLATE_FAIL,
	BALLOON_CORE_STAT_DEFLATE,
	BALLOON_CORE_STAT_DEFLATE_FAIL,
	BALLOON_CORE_STAT_ALLOC,
	BALLOON_CORE_STAT_ALLOC_FAIL,
	BALLOON_CORE_STAT_SLEEP_ALLOC,
	BALLOON_CORE_STAT_SLEEP_ALLOC_FAIL,
	BALLOON_CORE_STAT_REFUSED_ALLOC,
	BALLOON_CORE_STAT_REFUSED_FREE,
	BALLOON_CORE_STAT_FREE,
	BALLOON_CORE_STAT_RESET,
	BALLOON_CORE_STAT_CLAMPED,
	BALLOON_CORE_STAT_HUGE_ALLOC,
	BALLOON_CORE_STAT_HUGE_ALLOC_FAIL,
	BALLOON_CORE_STAT_HUGE_FREE,
	BALLOON_CORE_STAT_HUGE_SPLIT,
	BALLOON_CORE_STAT_PRESSURE,
	BALLOON_CORE_STAT_PRESSURE_FREE,
	BALLOON_CORE_STAT_HOLDOFF,
	BALLOON_CORE_STAT_MIGRATE,
	BALLOON_CORE_STAT_MIGRATE_FAIL,
	BALLOON_CORE_STAT_BLOCK_ALLOC,
	BALLOON_CORE_STAT_FLOOR,
	BALLOON_CORE_STAT_RECLAIMING,
	BALLOON_CORE_STAT_OOM,
	BALLOON_CORE_STAT_NR
};

/**
 * struct balloon_core_rate - the adaptive inflate and deflate rates
 * @alloc: sleeping-allocation budget, in pages per cycle.
 * @free: deflate budget, in pages per cycle.
 * @slow_cycles: cycles left during which inflation starts with sleeping
 *	allocations at @alloc instead of non-sleeping ones.
 *
 * Protected by the work lock of the &balloon_core_dev that embeds it;
 * debugfs reads @alloc and @free without it, with READ_ONCE().
 */
struct balloon_core_rate {
	unsigned int alloc;
	unsigned int free;
	unsigned int slow_cycles;
};

/**
 * struct balloon_core_dev - one balloon instance, embedded by a transport
 * @ops: the transport's methods; %NULL once unregistered.  Written by
 *	balloon_core_register() before the balloon is live, and by
 *	balloon_core_unregister() under @lock and @ops_lock held for writing;
 *	read under @ops_lock held for reading (core/ops.h), except that
 *	unregister reads it without a lock to see whether there is anything
 *	to undo (register and unregister of one balloon never run at once).
 * @ops_lock: guards @ops, so that no method runs after unregister.
 * @lock: the work lock.  Serialises the work loop, the OOM notifier and
 *	migration (which only trylock it), resets and unregister.  Every
 *	transport method is called with it held.  The work loop drops it
 *	while it allocates pages to inflate (which may reclaim), and holds
 *	it to hand them to the host and put them in the balloon.
 * @cycle_lock: one work cycle at a time: the work item, and KUnit suites
 *	stepping the balloon with balloon_core_run_cycle(), which may run
 *	beside it.  Taken around the whole cycle, outside @lock, which the
 *	cycle drops while it allocates.  Nothing else takes it.
 * @kick_lock: serialises queueing @work (balloon_core_kick() and the work
 *	item requeueing itself) against unregister clearing the registered
 *	bit in @flags, so that no work is queued once unregister has begun.
 * @flags: core-private state bits, changed and tested with atomic bitops
 *	and no lock of their own; each bit's rule is in core/internal.h.
 * @work: the work loop, on a freezable workqueue.  Queued under
 *	@kick_lock.
 * @caps: what the host negotiated at the last @start.  Written under
 *	@lock; read under it, except by the work item choosing its next
 *	delay once its cycle has dropped @lock (plain reads), and by the OOM
 *	notifier deciding whether to take @lock at all (READ_ONCE(), tested
 *	again under @lock).
 * @batch: the batch handed to the transport; its arrays hold
 *	%BALLOON_CORE_MAX_BATCH entries, allocated at registration and freed
 *	at unregister.  Contents protected by @lock.
 * @own: the core's own arrays of pages, one per order, indexed by PFN: the
 *	ballooned pages of order 1 and above (with slots for those on their
 *	way in or out), and the 4 KiB pages the host would not release
 *	(core/pages.c says which entries mean what).
 *	Changed under @lock, except that the inflation reserves slots for
 *	new pages without it; each array's own lock nests inside @lock.
 * @b_dev_info: the ballooned 4 KiB pages, movable by balloon compaction.
 *	Its list and isolated_pages are protected by its own pages_lock (the
 *	MM isolates pages under it without @lock); isolated_pages is also
 *	read without it, with READ_ONCE(), while waiting for isolated pages.
 * @nr_pages: ballooned pages of each order, including 4 KiB pages
 *	isolated for migration.  Protected by @lock; debugfs reads entries
 *	without it, with READ_ONCE().
 * @refused: 4 KiB pages the host refused during the current inflate cycle.
 *	Protected by @lock.
 * @prealloc: 4 KiB pieces of huge pages the host refused this cycle, and
 *	of blocks split for it, offered before any new 4 KiB allocation.
 *	Touched only by the work loop's inflation, with or without @lock
 *	(under @cycle_lock), and emptied before the cycle ends.
 * @size: balloon size in 4 KiB units.  Written under @lock; read under it,
 *	and without it by balloon_core_size() and debugfs (READ_ONCE()) and
 *	by the work item deciding whether to retry (a plain read).
 * @target: the size the balloon moves towards, in 4 KiB units: the host's
 *	last target, clamped to the guest's memory and cut by the guest
 *	floor.  Written under @lock; read under it, and without it by
 *	debugfs (READ_ONCE()) and by the work item deciding whether to retry.
 * @floor: the guest floor at the last target, in 4 KiB units.  Written
 *	under @lock (WRITE_ONCE()); debugfs reads it without (READ_ONCE()).
 * @floor_refused: how much of the host's last target the floor refused,
 *	in 4 KiB units; 0 when none.  Written under @lock (WRITE_ONCE());
 *	read under it, and by debugfs without it (READ_ONCE()).
 * @refaults: the guest's workingset refaults when last counted, to
 *	measure how hard it reclaims.  Protected by @lock.
 * @refaults_at: when @refaults was counted (jiffies).  Protected by @lock.
 * @rate: the adaptive inflate and deflate rates.  Protected by @lock;
 *	debugfs reads @rate.alloc and @rate.free without it (READ_ONCE()).
 * @holdoff_until: no inflation before this time (jiffies), set by a
 *	deflate under memory pressure and while the guest reclaims hard
 *	(balloon_core_hold_off(), which only extends it).  Protected by
 *	@lock.
 * @oom_nb: the OOM notifier that deflates under memory pressure; set up by
 *	register, removed first thing by unregister.
 * @stats: counters indexed by &enum balloon_core_stat; atomic, no lock.
 * @debugfs: this instance's debugfs directory.  Written only by register
 *	and unregister.
 * @parent: the transport's device, used for logs; may be %NULL.  Set by
 *	register, constant afterwards.
 * @name: the instance name, also the debugfs directory name.  Set by
 *	register, constant afterwards.
 *
 * Lock order: @cycle_lock, then @lock, then @ops_lock, then @kick_lock; @b_dev_info's
 * pages_lock nests inside @lock (or is taken by the MM alone), and only
 * trylock_page() is taken inside it.  The OOM notifier and migration try
 * @lock from the MM's paths, and never wait for it long; no allocation
 * that may reclaim runs under it (inflation allocates without it).  A transport
 * never takes any of these locks; it only locks its own channel to the
 * host.  Members other than @parent are private to the core.
 */
struct balloon_core_dev {
	const struct balloon_core_ops *ops;
	struct rw_semaphore ops_lock;
	struct mutex lock;		/* the work lock, see above */
	struct mutex cycle_lock;
	spinlock_t kick_lock;		/* queueing @work vs. unregister */
	unsigned long flags;
	struct delayed_work work;
	struct balloon_core_caps caps;
	struct balloon_core_batch batch;
	struct xarray own[BALLOON_CORE_MAX_ORDER + 1];
	struct balloon_dev_info b_dev_info;
	unsigned long nr_pages[BALLOON_CORE_MAX_ORDER + 1];
	struct list_head refused;
	struct list_head prealloc;
	u64 size;
	u64 target;
	u64 floor;
	u64 floor_refused;
	unsigned long refaults;
	unsigned long refaults_at;
	struct balloon_core_rate rate;
	unsigned long holdoff_until;
	struct notifier_block oom_nb;
	atomic64_t stats[BALLOON_CORE_STAT_NR];
	struct dentry *debugfs;
	struct device *parent;
	char name[32];
};

int balloon_core_register(struct balloon_core_dev *bdev,
			  const struct balloon_core_ops *ops,
			  struct device *parent, const char *name);
void balloon_core_unregister(struct balloon_core_dev *bdev);
void balloon_core_kick(struct balloon_core_dev *bdev);
void balloon_core_request_reset(struct balloon_core_dev *bdev);
void balloon_core_update_target(struct balloon_core_dev *bdev, u64 target);
u64 balloon_core_size(struct balloon_core_dev *bdev);
struct dentry *balloon_core_debugfs_dir(struct balloon_core_dev *bdev);

#endif /* _BALLOON_CORE_H */
