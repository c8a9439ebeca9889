// SPDX-License-Identifier: GPL-2.0
/*
 * The fake transport of the balloon_core suites (see core_fake.h): its
 * ops, what it does as a host, and the static stubs of page allocation.
 */
#include <kunit/static_stub.h>
#include <kunit/test.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/vmstat.h>
#include <linux/xarray.h>

#include "core_fake.h"

static struct fake_host *to_fake(struct balloon_core_dev *bdev)
{
	return container_of(bdev, struct fake_host, bdev);
}

static int fake_record(struct fake_host *host, enum fake_op op,
		       unsigned int count)
{
	unsigned int nth = ++host->calls[op], i;
	int ret = 0;

	for (i = 0; i < FAKE_SCRIPT; i++)
		if (host->script[i].nth == nth && host->script[i].op == op)
			ret = host->script[i].ret;
	if (host->nlog < FAKE_LOG)
		host->log[host->nlog++] = (struct fake_call) {
			.seq = ++host->seq, .op = op, .count = count,
			.ret = ret,
		};
	return ret;
}

int core_fake_start(struct balloon_core_dev *bdev,
		    struct balloon_core_caps *caps)
{
	struct fake_host *host = to_fake(bdev);
	int ret = fake_record(host, FAKE_START, 0);

	caps->orders = host->orders;
	caps->max_batch = host->max_batch;
	caps->flags = BALLOON_CORE_CAP_POLL | host->cap_flags;
	caps->poll_ms = 3600 * 1000;
	return ret;
}

int core_fake_get_target(struct balloon_core_dev *bdev, u64 *target)
{
	struct fake_host *host = to_fake(bdev);
	int ret = fake_record(host, FAKE_TARGET, 0);

	if (ret == -BALLOON_CORE_ERESET)
		fake_forget(host);
	*target = host->target;
	return ret;
}

static int fake_inflate(struct balloon_core_dev *bdev,
			struct balloon_core_batch *batch)
{
	struct fake_host *host = to_fake(bdev);
	int ret = fake_record(host, FAKE_INFLATE, batch->count);
	struct completion *stall;
	unsigned int i;

	/* A host that does not answer for a while. */
	stall = READ_ONCE(host->stall);
	if (stall) {
		WRITE_ONCE(host->stalled, true);
		wait_for_completion(stall);
		WRITE_ONCE(host->stalled, false);
	}
	if (!(host->orders & BIT(batch->order)))
		host->protocol_error = true;
	if (ret == -BALLOON_CORE_ERESET) {
		fake_forget(host);
		return ret;
	}
	if (ret && ret != -EAGAIN)
		return ret;

	for (i = 0; i < batch->count; i++) {
		unsigned long pfn = page_to_pfn(batch->pages[i]);
		unsigned int every = batch->order ? host->refuse_huge_every :
						    host->refuse_every;
		unsigned int nth = batch->order ? ++host->huge_in :
						  ++host->pages_in;

		if (every && nth % every == 0) {
			batch->status[i] = -EBUSY;
			continue;
		}
		if (xa_load(&host->held, pfn)) {
			host->protocol_error = true;	/* locked twice */
			batch->status[i] = -EEXIST;
			continue;
		}
		xa_store(&host->held, pfn, xa_mk_value(batch->order),
			 GFP_KERNEL);
	}
	/* Like VMware, the reply carries the host's current target. */
	if (host->calls[FAKE_INFLATE] == host->retarget_at) {
		host->target = host->retarget;
		balloon_core_update_target(bdev, host->target);
	}
	return ret;
}

static int fake_deflate(struct balloon_core_dev *bdev,
			struct balloon_core_batch *batch)
{
	struct fake_host *host = to_fake(bdev);
	int ret = fake_record(host, FAKE_DEFLATE, batch->count);
	unsigned int i;

	if (ret == -BALLOON_CORE_ERESET)
		fake_forget(host);
	if (ret)
		return ret;

	for (i = 0; i < batch->count; i++) {
		struct page *page = batch->pages[i];

		void *held;

		/* The host must hear of a page before the guest frees it. */
		if (page_ref_count(page) < 1)
			host->protocol_error = true;
		if ((host->keep_every &&
		     ++host->kept % host->keep_every == 0) ||
		    page_to_pfn(page) == host->keep_pfn) {
			batch->status[i] = -EBUSY;
			continue;
		}
		held = xa_erase(&host->held, page_to_pfn(page));
		if (!held || xa_to_value(held) != batch->order)
			host->protocol_error = true;	/* never held so */
		host->pages_out += 1U << batch->order;
	}
	return 0;
}

static void fake_size_changed(struct balloon_core_dev *bdev, u64 size)
{
	struct fake_host *host = to_fake(bdev);

	fake_record(host, FAKE_SIZE, 0);
	host->reported = size;
	host->isolated_at_size = balloon_core_isolated(bdev);
}

static int fake_detach(struct balloon_core_dev *bdev)
{
	struct fake_host *host = to_fake(bdev);

	fake_record(host, FAKE_DETACH, 0);
	if (!host->detach_drops)
		return 0;
	fake_forget(host);
	return -BALLOON_CORE_ERESET;
}

const struct balloon_core_ops core_fake_ops = {
	.owner = THIS_MODULE,
	.name = "fake",
	.start = core_fake_start,
	.get_target = core_fake_get_target,
	.inflate = fake_inflate,
	.deflate = fake_deflate,
	.detach = fake_detach,
	.size_changed = fake_size_changed,
};

static struct page *fake_alloc_page(gfp_t gfp, unsigned int order)
{
	struct kunit *test = kunit_get_current_test();
	struct fake_host *host = test->priv;

	if (order && gfp == BALLOON_CORE_GFP_BLOCK) {
		if (host->block_allocs++ >= host->block_ok)
			return NULL;
	} else if (order) {
		/* Huge pages only when the guest can spare them at once. */
		if (gfpflags_allow_blocking(gfp) || !(gfp & __GFP_NOMEMALLOC))
			host->bad_gfp = true;
		if (host->huge_allocs++ >= host->huge_ok)
			return NULL;
	} else if (gfpflags_allow_blocking(gfp)) {
		/* Sleeping allocations must give up before the OOM killer. */
		if (!(gfp & __GFP_NORETRY) || !(gfp & __GFP_NOMEMALLOC))
			host->bad_gfp = true;
		if (host->sleep_allocs++ >= host->sleep_ok)
			return NULL;
	} else {
		if (!(gfp & __GFP_NOMEMALLOC) || (gfp & __GFP_HIGH))
			host->bad_gfp = true;
		if (host->nosleep_allocs++ >= host->nosleep_ok)
			return NULL;
	}
	return alloc_pages(gfp, order);
}

/*
 * Room in the core's own arrays, as the core makes it.  A huge page gets
 * its slot while the inflation allocates, without the work lock; a kept
 * 4 KiB page under it, without reclaim.
 */
static int fake_reserve(struct balloon_core_dev *bdev, struct page *page,
			unsigned int order)
{
	struct kunit *test = kunit_get_current_test();
	struct fake_host *host = test->priv;

	if (order && mutex_is_locked(&bdev->lock))
		host->slot_locked = true;
	if (host->slots++ >= host->slot_ok)
		return -ENOMEM;
	return xa_reserve(&bdev->own[order], page_to_pfn(page) >> order,
			  GFP_NOWAIT | __GFP_NOWARN);
}

/* Count what the core takes under each hold of the balloon's page lock. */
static size_t fake_dequeue_4k(struct balloon_core_dev *bdev,
			      struct list_head *list, size_t n)
{
	struct fake_host *host = to_fake(bdev);

	host->dequeue_calls++;
	host->dequeue_max = max(host->dequeue_max, n);
	return balloon_page_list_dequeue(&bdev->b_dev_info, list, n);
}

/*
 * The guest's refaults, and those a test adds: the core's own work item
 * (which no stub reaches) sees the guest's alone, and in a KUnit kernel,
 * which runs no workload, they do not move.
 */
static unsigned long fake_refaults(void)
{
	struct kunit *test = kunit_get_current_test();
	struct fake_host *host = test->priv;

	return global_node_page_state(WORKINGSET_REFAULT_ANON) +
	       global_node_page_state(WORKINGSET_REFAULT_FILE) +
	       host->refaults;
}

int core_fake_init(struct kunit *test)
{
	struct fake_host *host;

	host = kunit_kzalloc(test, sizeof(*host), GFP_KERNEL);
	if (!host)
		return -ENOMEM;
	host->test = test;
	host->orders = BIT(0);
	host->max_batch = 64;
	host->nosleep_ok = FAKE_NEVER;
	host->sleep_ok = FAKE_NEVER;
	host->huge_ok = FAKE_NEVER;
	host->slot_ok = FAKE_NEVER;
	xa_init(&host->held);
	test->priv = host;
	kunit_activate_static_stub(test, balloon_core_alloc_page,
				   fake_alloc_page);
	kunit_activate_static_stub(test, balloon_core_dequeue_4k,
				   fake_dequeue_4k);
	kunit_activate_static_stub(test, balloon_core_refaults, fake_refaults);
	kunit_activate_static_stub(test, balloon_core_reserve, fake_reserve);
	return 0;
}

void core_fake_exit(struct kunit *test)
{
	struct fake_host *host = test->priv;

	if (host->registered)
		balloon_core_unregister(&host->bdev);
	xa_destroy(&host->held);
}
