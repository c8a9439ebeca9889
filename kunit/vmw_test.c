// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for balloon_vmw, driven through a model of the VMware host.
 *
 * Only VMware's hypervisors implement the balloon port, and the suites run
 * under UML, so the model plays the host where the backdoor would be
 * (balloon_vmw_host, UML only).  It behaves as a host does, errors
 * included: START negotiates the protocol (2 or 3, with the capabilities
 * it is configured to offer) and makes the host forget every page; a host
 * that has forgotten the guest answers everything but START with
 * ERROR_RESET; it keeps the set of locked PFNs and answers a double lock,
 * the unlock of a page it never locked, a PFN outside guest memory or a
 * misaligned 2 MiB page with the real error codes; it says PPN_NOTNEEDED
 * past its target and returns the target with every lock and unlock.  Tests
 * make it refuse chosen pages with any status, reset at any command
 * (mid-batch too), or answer BUSY, and it counts hypercalls per command.
 *
 * The balloon runs against the real core: its own work item runs cycles
 * (polled every second, at once while moving), and tests step it with
 * balloon_core_run_cycle() too; both go through the core's work lock.
 */
#include <kunit/test.h>
#include <linux/debugfs.h>
#include <linux/dcache.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/vmw_vmci_defs.h>
#include <linux/xarray.h>

#include "../core/internal.h"
#include "mm_fake.h"
#include "pages_check.h"
#include "../transports/vmw/vmw.h"

#define MODEL_REFUSE	4
#define MODEL_CONTEXT	0x1234
#define MODEL_RESOURCE	0x5678
#define MODEL_ALL_CAPS	(BALLOON_VMW_CAP_BASIC | BALLOON_VMW_CAP_BATCHED | \
			 BALLOON_VMW_CAP_BATCHED_2M |			 \
			 BALLOON_VMW_CAP_DOORBELL |			 \
			 BALLOON_VMW_CAP_64BIT_TARGET)
#define HUGE_UNITS	BIT(BALLOON_VMW_2M_ORDER)
#define GIB_UNITS	(SZ_1G / SZ_4K)

struct vmw_model {
	/* what the host is */
	unsigned int proto;		/* 2 or 3 */
	unsigned long offered;		/* capabilities a protocol-3 host offers */
	bool picky;			/* takes a START for protocol 2 only */
	bool no_vmci;			/* the guest has no VMCI doorbell */
	u64 target;
	u64 target_high;		/* garbage in the high half of EBX */
	unsigned long max_pfn;

	/* what the test makes it do */
	unsigned int refuse_nth[MODEL_REFUSE];	/* lock entries, 1-based */
	unsigned int refuse_unlock_nth;		/* unlock entry, 1-based */
	unsigned long refuse_status;
	unsigned int reset_cmd, reset_nth, reset_entry;
	unsigned int busy_cmd, busy_nth;
	unsigned int retarget_at;	/* lock entry after which ... */
	unsigned int retarget_unlock_at; /* or unlock entry after which ... */
	u64 retarget;			/* ... the target becomes this */

	/* what the host knows */
	bool started;
	unsigned long granted;
	struct xarray locked;		/* pfn -> order, as a value */
	u64 held;			/* 4 KiB frames locked */
	u64 limit;
	unsigned long guest_id;
	bool db_set;
	u32 db_context, db_resource;

	/* the VMCI side of the doorbell */
	bool db_created;
	void (*notify)(void *data);
	void *notify_data;

	/* what the host saw */
	unsigned int calls[BALLOON_VMW_CMD_NR];
	unsigned int lock_entries, unlock_entries;
	unsigned int resets;
	unsigned long last_start_arg;

	struct balloon_vmw *b;
};

/* The host is one per guest; so is the model. */
static struct vmw_model *model;

static void model_forget(struct vmw_model *m)
{
	xa_destroy(&m->locked);
	m->held = 0;
	m->db_set = false;
}

static void model_reset(struct vmw_model *m)
{
	model_forget(m);
	m->started = false;
	m->resets++;
}

static unsigned long model_start(struct vmw_model *m, unsigned long req,
				 unsigned long *result)
{
	model_forget(m);
	m->last_start_arg = req;
	if (m->picky && req != BALLOON_VMW_CAP_BASIC)
		return BALLOON_VMW_ERROR_CMD_INVALID;
	if (m->proto == 2) {
		m->granted = BALLOON_VMW_CAP_BASIC;
		m->started = true;
		return BALLOON_VMW_SUCCESS;
	}
	/*
	 * The guest may use what it asked for and the host offers, but the
	 * reply is the host's own capabilities: the in-tree vmw_balloon takes
	 * the reply to its START(0) at unload for the page sizes it may free,
	 * and loops forever over 2 MiB pages when that reply is 0 (seen
	 * against the QEMU device, tools/testing/qemu/vmw-balloon/).
	 */
	m->granted = req & m->offered;
	*result = m->offered;
	m->started = true;
	return BALLOON_VMW_SUCCESS_WITH_CAPABILITIES;
}

static bool model_refused(struct vmw_model *m, unsigned int nth)
{
	unsigned int i;

	for (i = 0; i < MODEL_REFUSE; i++)
		if (m->refuse_nth[i] == nth)
			return true;
	return false;
}

/* One page (of @order) locked or unlocked; the status a host returns. */
static unsigned long model_page(struct vmw_model *m, u64 pfn,
				unsigned int order, bool lock)
{
	void *entry;

	if (pfn > m->max_pfn || (pfn & ((1UL << order) - 1)))
		return BALLOON_VMW_ERROR_PPN_INVALID;
	entry = xa_load(&m->locked, pfn);
	if (!lock) {
		++m->unlock_entries;
		if (m->refuse_unlock_nth &&
		    m->unlock_entries == m->refuse_unlock_nth)
			return m->refuse_status;
		if (!entry || xa_to_value(entry) != order)
			return BALLOON_VMW_ERROR_PPN_UNLOCKED;
		xa_erase(&m->locked, pfn);
		m->held -= 1UL << order;
		if (m->retarget_unlock_at &&
		    m->unlock_entries == m->retarget_unlock_at)
			m->target = m->retarget;
		return BALLOON_VMW_SUCCESS;
	}
	if (entry)
		return BALLOON_VMW_ERROR_PPN_LOCKED;
	if (model_refused(m, ++m->lock_entries)) {
		if (m->refuse_status == BALLOON_VMW_ERROR_RESET)
			model_reset(m);
		return m->refuse_status;
	}
	if (m->held + (1UL << order) > m->target)
		return BALLOON_VMW_ERROR_PPN_NOTNEEDED;
	if (xa_err(xa_store(&m->locked, pfn, xa_mk_value(order), GFP_KERNEL)))
		return BALLOON_VMW_ERROR_BUSY;
	m->held += 1UL << order;
	if (m->retarget_at && m->lock_entries == m->retarget_at)
		m->target = m->retarget;
	return BALLOON_VMW_SUCCESS;
}

static unsigned long model_batch(struct vmw_model *m, unsigned long cmd,
				 unsigned long pfn, unsigned long count,
				 bool reset)
{
	bool lock = cmd == BALLOON_VMW_CMD_BATCHED_LOCK ||
		    cmd == BALLOON_VMW_CMD_BATCHED_2M_LOCK;
	bool huge = cmd == BALLOON_VMW_CMD_BATCHED_2M_LOCK ||
		    cmd == BALLOON_VMW_CMD_BATCHED_2M_UNLOCK;
	unsigned long i, status;
	u64 *entries;

	if (!(m->granted & BALLOON_VMW_CAP_BATCHED) ||
	    (huge && !(m->granted & BALLOON_VMW_CAP_BATCHED_2M)))
		return BALLOON_VMW_ERROR_CMD_INVALID;
	if (pfn > m->max_pfn || !count || count > BALLOON_VMW_BATCH_MAX)
		return BALLOON_VMW_ERROR_PPN_INVALID;

	entries = page_address(pfn_to_page(pfn));
	for (i = 0; i < count; i++) {
		/* A reset half-way: what was locked is forgotten too. */
		if (reset && i == m->reset_entry) {
			model_reset(m);
			return BALLOON_VMW_ERROR_RESET;
		}
		status = model_page(m, entries[i] >> BALLOON_VMW_ENTRY_PFN_SHIFT,
				    huge ? BALLOON_VMW_2M_ORDER : 0, lock);
		if (status == BALLOON_VMW_ERROR_RESET)
			return status;	/* the host forgot the whole batch */
		entries[i] = (entries[i] & ~BALLOON_VMW_ENTRY_STATUS) | status;
	}
	return BALLOON_VMW_SUCCESS;
}

static unsigned long model_command(struct vmw_model *m, unsigned long cmd,
				   unsigned long arg1, unsigned long arg2,
				   unsigned long *result)
{
	unsigned int nth = ++m->calls[cmd];
	bool reset = m->reset_cmd == cmd && m->reset_nth == nth;

	if (m->busy_cmd == cmd && m->busy_nth == nth)
		return BALLOON_VMW_ERROR_BUSY;
	if (cmd == BALLOON_VMW_CMD_START)
		return model_start(m, arg1, result);
	if (!m->started)
		return BALLOON_VMW_ERROR_RESET;
	if (reset && cmd < BALLOON_VMW_CMD_BATCHED_LOCK) {
		model_reset(m);
		return BALLOON_VMW_ERROR_RESET;
	}

	switch (cmd) {
	case BALLOON_VMW_CMD_GET_TARGET:
		m->limit = arg1;
		return BALLOON_VMW_SUCCESS;
	case BALLOON_VMW_CMD_GUEST_ID:
		m->guest_id = arg1;
		return BALLOON_VMW_SUCCESS;
	case BALLOON_VMW_CMD_LOCK:
	case BALLOON_VMW_CMD_UNLOCK:
		if (!(m->granted & BALLOON_VMW_CAP_BASIC))
			return BALLOON_VMW_ERROR_CMD_INVALID;
		return model_page(m, arg1, 0, cmd == BALLOON_VMW_CMD_LOCK);
	case BALLOON_VMW_CMD_BATCHED_LOCK:
	case BALLOON_VMW_CMD_BATCHED_UNLOCK:
	case BALLOON_VMW_CMD_BATCHED_2M_LOCK:
	case BALLOON_VMW_CMD_BATCHED_2M_UNLOCK:
		return model_batch(m, cmd, arg1, arg2, reset);
	case BALLOON_VMW_CMD_VMCI_DOORBELL_SET:
		if (!(m->granted & BALLOON_VMW_CAP_DOORBELL))
			return BALLOON_VMW_ERROR_CMD_INVALID;
		m->db_set = arg1 != VMCI_INVALID_ID;
		m->db_context = arg1;
		m->db_resource = arg2;
		return BALLOON_VMW_SUCCESS;
	default:
		return BALLOON_VMW_ERROR_CMD_INVALID;
	}
}

static unsigned long model_call(unsigned long cmd, unsigned long arg1,
				unsigned long arg2, unsigned long *result)
{
	struct vmw_model *m = model;
	unsigned long status;

	if (cmd >= BALLOON_VMW_CMD_NR)
		return BALLOON_VMW_ERROR_CMD_INVALID;
	status = model_command(m, cmd, arg1, arg2, result);
	/* EBX holds the target as it is once the command is done. */
	if (cmd != BALLOON_VMW_CMD_START)
		*result = m->target | m->target_high;
	return status;
}

static int model_doorbell_create(u32 *context, u32 *resource,
				 void (*notify)(void *data), void *data)
{
	struct vmw_model *m = model;

	if (m->no_vmci)
		return -ENODEV;
	*context = MODEL_CONTEXT;
	*resource = MODEL_RESOURCE;
	m->notify = notify;
	m->notify_data = data;
	m->db_created = true;
	return 0;
}

static void model_doorbell_destroy(u32 context, u32 resource)
{
	struct vmw_model *m = model;

	if (context == MODEL_CONTEXT && resource == MODEL_RESOURCE)
		m->db_created = false;
}

static const struct balloon_vmw_host model_host = {
	.call = model_call,
	.doorbell_create = model_doorbell_create,
	.doorbell_destroy = model_doorbell_destroy,
};

static int vmw_init(struct kunit *test)
{
	struct vmw_model *m = kunit_kzalloc(test, sizeof(*m), GFP_KERNEL);

	if (!m)
		return -ENOMEM;
	m->proto = 3;
	m->offered = MODEL_ALL_CAPS;
	m->max_pfn = max_pfn;
	m->refuse_status = BALLOON_VMW_ERROR_PPN_PINNED;
	xa_init(&m->locked);
	model = m;
	balloon_vmw_host = &model_host;
	test->priv = m;
	return 0;
}

static void vmw_exit(struct kunit *test)
{
	struct vmw_model *m = test->priv;

	if (m->b)
		balloon_vmw_destroy(m->b);
	balloon_vmw_host = NULL;
	model = NULL;
	xa_destroy(&m->locked);
}

/*
 * Create the balloon and let the core's first cycle run the handshake.
 * Then, unless @poll, stop the one-second poll, so that only the test
 * steps the balloon (a kick, e.g. from the doorbell, starts it again).
 */
static struct balloon_core_dev *vmw_up_polled(struct kunit *test, bool poll)
{
	struct vmw_model *m = test->priv;
	struct balloon_vmw *b = balloon_vmw_create();

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, b);
	m->b = b;
	flush_delayed_work(&b->bdev.work);
	if (!poll)
		cancel_delayed_work_sync(&b->bdev.work);
	return &b->bdev;
}

static struct balloon_core_dev *vmw_up(struct kunit *test)
{
	return vmw_up_polled(test, false);
}

static void vmw_down(struct vmw_model *m)
{
	balloon_vmw_destroy(m->b);
	m->b = NULL;
}

/* Step the balloon until it rests, at most @cycles cycles. */
static void vmw_settle(struct balloon_core_dev *bdev, unsigned int cycles)
{
	while (cycles--) {
		balloon_core_run_cycle(bdev);
		mutex_lock(&bdev->lock);
		if (test_bit(BALLOON_CORE_F_STARTED, &bdev->flags) &&
		    !test_bit(BALLOON_CORE_F_RESET, &bdev->flags) &&
		    bdev->size == bdev->target) {
			mutex_unlock(&bdev->lock);
			return;
		}
		mutex_unlock(&bdev->lock);
	}
}

static u64 stat(struct balloon_core_dev *bdev, enum balloon_core_stat s)
{
	return balloon_core_stat_read(bdev, s);
}

static unsigned int lock_calls(struct vmw_model *m)
{
	return m->calls[BALLOON_VMW_CMD_LOCK] +
	       m->calls[BALLOON_VMW_CMD_BATCHED_LOCK] +
	       m->calls[BALLOON_VMW_CMD_BATCHED_2M_LOCK];
}

static unsigned int unlock_calls(struct vmw_model *m)
{
	return m->calls[BALLOON_VMW_CMD_UNLOCK] +
	       m->calls[BALLOON_VMW_CMD_BATCHED_UNLOCK] +
	       m->calls[BALLOON_VMW_CMD_BATCHED_2M_UNLOCK];
}

/* The guest's balloon and the host's locked set agree. */
static void expect_in_step(struct kunit *test, struct balloon_core_dev *bdev)
{
	struct vmw_model *m = test->priv;

	/* No cycle is half-way, with slots reserved for its pages. */
	mutex_lock(&bdev->cycle_lock);
	mutex_lock(&bdev->lock);
	KUNIT_EXPECT_EQ(test, bdev->size, m->held);
	expect_own_arrays(test, bdev);
	mutex_unlock(&bdev->lock);
	mutex_unlock(&bdev->cycle_lock);
}

/* ---- the model itself answers as a host does ---- */

static void model_answers_like_a_host(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct page *page = alloc_pages(GFP_KERNEL, BALLOON_VMW_2M_ORDER);
	unsigned long pfn, res;

	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	m->target = 4 * HUGE_UNITS;

	/* Before START the host knows no guest. */
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_LOCK, pfn, 1, &res),
			BALLOON_VMW_ERROR_RESET);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_START,
					 BALLOON_VMW_CAP_BASIC, 0, &res),
			BALLOON_VMW_SUCCESS_WITH_CAPABILITIES);
	/* The reply is all the host offers; the guest gets what it asked. */
	KUNIT_EXPECT_EQ(test, res, m->offered);
	KUNIT_EXPECT_EQ(test, m->granted, BALLOON_VMW_CAP_BASIC);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_LOCK, pfn, 1, &res),
			BALLOON_VMW_SUCCESS);
	KUNIT_EXPECT_EQ(test, res, m->target);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_LOCK, pfn, 1, &res),
			BALLOON_VMW_ERROR_PPN_LOCKED);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_UNLOCK, pfn + 1, 1,
					 &res),
			BALLOON_VMW_ERROR_PPN_UNLOCKED);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_LOCK, max_pfn + 1, 1,
					 &res),
			BALLOON_VMW_ERROR_PPN_INVALID);
	/* Not negotiated. */
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_BATCHED_LOCK, pfn, 1,
					 &res),
			BALLOON_VMW_ERROR_CMD_INVALID);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_UNLOCK, pfn, 1, &res),
			BALLOON_VMW_SUCCESS);
	KUNIT_EXPECT_EQ(test, m->held, 0);

	/* 2 MiB pages must be aligned; past the target nothing is needed. */
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_START,
					 MODEL_ALL_CAPS, 0, &res),
			BALLOON_VMW_SUCCESS_WITH_CAPABILITIES);
	KUNIT_EXPECT_EQ(test, model_page(m, pfn + 1, BALLOON_VMW_2M_ORDER,
					 true),
			BALLOON_VMW_ERROR_PPN_INVALID);
	m->target = HUGE_UNITS - 1;
	KUNIT_EXPECT_EQ(test, model_page(m, pfn, BALLOON_VMW_2M_ORDER, true),
			BALLOON_VMW_ERROR_PPN_NOTNEEDED);
	KUNIT_EXPECT_EQ(test, model_call(BALLOON_VMW_CMD_NR, 0, 0, &res),
			BALLOON_VMW_ERROR_CMD_INVALID);
	__free_pages(page, BALLOON_VMW_2M_ORDER);
}

/* ---- negotiation ---- */

static void start_negotiates_richest_mode(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);

	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_START], 1U);
	KUNIT_EXPECT_EQ(test, m->b->caps, (unsigned long)MODEL_ALL_CAPS);
	KUNIT_EXPECT_EQ(test, bdev->caps.orders,
			BIT(0) | BIT(BALLOON_VMW_2M_ORDER));
	KUNIT_EXPECT_EQ(test, bdev->caps.max_batch, BALLOON_VMW_BATCH_MAX);
	KUNIT_EXPECT_EQ(test, bdev->caps.poll_ms, 1000U);
	KUNIT_EXPECT_TRUE(test, bdev->caps.flags & BALLOON_CORE_CAP_POLL);
	KUNIT_EXPECT_EQ(test, m->guest_id, BALLOON_VMW_GUEST_LINUX);
	KUNIT_EXPECT_TRUE(test, m->db_set);
	KUNIT_EXPECT_EQ(test, m->db_context, MODEL_CONTEXT);
	KUNIT_EXPECT_EQ(test, m->db_resource, MODEL_RESOURCE);
	/* The limit is the guest's memory, in 4 KiB frames. */
	KUNIT_EXPECT_EQ(test, m->limit,
			(u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE);
}

static void start_protocol_2_host_single_pages(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->proto = 2;
	bdev = vmw_up(test);
	KUNIT_EXPECT_EQ(test, m->b->caps, (unsigned long)BALLOON_VMW_CAP_BASIC);
	KUNIT_EXPECT_EQ(test, bdev->caps.orders, BIT(0));
	KUNIT_EXPECT_EQ(test, bdev->caps.max_batch, 1U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_VMCI_DOORBELL_SET], 0U);

	m->target = 100;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 100);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_LOCK], 100U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_LOCK], 0U);
	expect_in_step(test, bdev);

	m->target = 40;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 40);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_UNLOCK], 60U);
	expect_in_step(test, bdev);
}

/*
 * A protocol-3 host that takes only a START for protocol 2 still replies
 * with all it offers: the guest keeps to what it asked for.
 */
static void start_picky_host_keeps_to_what_was_asked(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->picky = true;
	bdev = vmw_up(test);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_START], 2U);
	KUNIT_EXPECT_EQ(test, m->granted, BALLOON_VMW_CAP_BASIC);
	m->target = 10;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 10);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_LOCK], 10U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_LOCK], 0U);
	expect_in_step(test, bdev);
}

static void start_picky_old_host_gets_protocol_2(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->proto = 2;
	m->picky = true;
	bdev = vmw_up(test);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_START], 2U);
	KUNIT_EXPECT_EQ(test, m->last_start_arg,
			(unsigned long)BALLOON_VMW_CAP_BASIC);
	KUNIT_EXPECT_TRUE(test, test_bit(BALLOON_CORE_F_STARTED, &bdev->flags));
	m->target = 10;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 10);
	expect_in_step(test, bdev);
}

static void start_2m_needs_batching(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = BALLOON_VMW_CAP_BASIC | BALLOON_VMW_CAP_BATCHED_2M;
	bdev = vmw_up(test);
	KUNIT_EXPECT_EQ(test, bdev->caps.orders, BIT(0));
	KUNIT_EXPECT_EQ(test, bdev->caps.max_batch, 1U);

	m->target = 2 * HUGE_UNITS;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_2M_LOCK], 0U);
	KUNIT_EXPECT_EQ(test, bdev->size, 2 * HUGE_UNITS);
	expect_in_step(test, bdev);
}

static void start_batched_4k_only(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = BALLOON_VMW_CAP_BASIC | BALLOON_VMW_CAP_BATCHED;
	bdev = vmw_up(test);
	KUNIT_EXPECT_EQ(test, bdev->caps.orders, BIT(0));
	KUNIT_EXPECT_EQ(test, bdev->caps.max_batch, BALLOON_VMW_BATCH_MAX);
	m->target = 1000;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_LOCK], 2U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_LOCK], 0U);
	expect_in_step(test, bdev);
}

static void start_host_without_lock_commands_fails(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = BALLOON_VMW_CAP_DOORBELL;
	bdev = vmw_up(test);
	KUNIT_EXPECT_FALSE(test, test_bit(BALLOON_CORE_F_STARTED, &bdev->flags));
	/* Every START failed (the core retries after a second). */
	KUNIT_EXPECT_GE(test, m->calls[BALLOON_VMW_CMD_START], 1U);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_START_FAIL),
			m->calls[BALLOON_VMW_CMD_START]);
	KUNIT_EXPECT_EQ(test, lock_calls(m), 0U);
}

static void target_32bit_host_ignores_high_bits(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = MODEL_ALL_CAPS & ~BALLOON_VMW_CAP_64BIT_TARGET;
	m->target_high = 1ULL << 40;
	m->target = 300;
	bdev = vmw_up(test);
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->target, 300);
	KUNIT_EXPECT_EQ(test, bdev->size, 300);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_CLAMPED), 0);
	expect_in_step(test, bdev);
}

/* ---- status codes ---- */

enum vmw_outcome {
	OUT_REFUSED,	/* that page alone was refused */
	OUT_ENOUGH,	/* the cycle ended early */
	OUT_RESET,	/* the core reset and ran START again */
	OUT_FAILED,	/* the command failed as a whole */
};

struct vmw_status_case {
	unsigned long status;
	enum vmw_outcome single;	/* protocol 2: the command's status */
	enum vmw_outcome batched;	/* a batch entry's status */
};

static const struct vmw_status_case vmw_status_cases[] = {
	{ BALLOON_VMW_ERROR_CMD_INVALID, OUT_FAILED, OUT_REFUSED },
	{ BALLOON_VMW_ERROR_PPN_INVALID, OUT_REFUSED, OUT_REFUSED },
	{ BALLOON_VMW_ERROR_PPN_LOCKED, OUT_REFUSED, OUT_REFUSED },
	{ BALLOON_VMW_ERROR_PPN_UNLOCKED, OUT_REFUSED, OUT_REFUSED },
	{ BALLOON_VMW_ERROR_PPN_PINNED, OUT_REFUSED, OUT_REFUSED },
	{ BALLOON_VMW_ERROR_PPN_NOTNEEDED, OUT_ENOUGH, OUT_ENOUGH },
	{ BALLOON_VMW_ERROR_RESET, OUT_RESET, OUT_RESET },
	{ BALLOON_VMW_ERROR_BUSY, OUT_FAILED, OUT_REFUSED },
	{ 0x1f, OUT_REFUSED, OUT_REFUSED },	/* unknown to us */
};

static void vmw_status_desc(const struct vmw_status_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "status %lu", c->status);
}

KUNIT_ARRAY_PARAM(vmw_status, vmw_status_cases, vmw_status_desc);

/* The first page the guest offers gets @c's status; then all is well. */
static void lock_status(struct kunit *test, bool batched)
{
	const struct vmw_status_case *c = test->param_value;
	enum vmw_outcome out = batched ? c->batched : c->single;
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = batched ? BALLOON_VMW_CAP_BATCHED : BALLOON_VMW_CAP_BASIC;
	m->proto = batched ? 3 : 2;
	m->refuse_nth[0] = 1;
	m->refuse_status = c->status;
	bdev = vmw_up(test);
	m->target = 1000;
	balloon_core_run_cycle(bdev);

	switch (out) {
	case OUT_REFUSED:
		KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_REFUSED_ALLOC), 1);
		KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_INFLATE_FAIL), 0);
		KUNIT_EXPECT_EQ(test, bdev->size, 1000);
		break;
	case OUT_ENOUGH:
		KUNIT_EXPECT_EQ(test, bdev->size, batched ? 511 : 0);
		KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_INFLATE_FAIL), 0);
		break;
	case OUT_RESET:
		KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_RESET), 1);
		KUNIT_EXPECT_EQ(test, bdev->size, 0);
		KUNIT_EXPECT_EQ(test, unlock_calls(m), 0U);
		break;
	case OUT_FAILED:
		KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_INFLATE_FAIL), 1);
		KUNIT_EXPECT_EQ(test, bdev->size, 0);
		break;
	}
	expect_in_step(test, bdev);

	/* Whatever it was, the balloon gets there. */
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 1000);
	KUNIT_EXPECT_EQ(test, unlock_calls(m), 0U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_START],
			out == OUT_RESET ? 2U : 1U);
	expect_in_step(test, bdev);
}

static void lock_status_protocol_2(struct kunit *test)
{
	lock_status(test, false);
}

static void lock_status_batched(struct kunit *test)
{
	lock_status(test, true);
}

static void lock_busy_command_retried(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = BALLOON_VMW_CAP_BATCHED;
	bdev = vmw_up(test);
	m->busy_cmd = BALLOON_VMW_CMD_BATCHED_LOCK;
	m->busy_nth = 1;
	m->target = 1000;
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_INFLATE_FAIL), 1);
	expect_in_step(test, bdev);
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 1000);
	expect_in_step(test, bdev);
}

static void unlock_refused_page_stays(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = BALLOON_VMW_CAP_BATCHED;
	bdev = vmw_up(test);
	m->target = 1000;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 1000);

	/* The host keeps the 3rd page asked back; the rest is released. */
	m->refuse_unlock_nth = 3;
	m->target = 0;
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, 1000 - 511);
	expect_in_step(test, bdev);
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	expect_in_step(test, bdev);
}

static void unlock_page_host_forgot_is_freed(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;
	unsigned long index;
	void *entry;

	m->offered = BALLOON_VMW_CAP_BATCHED;
	bdev = vmw_up(test);
	m->target = 100;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 100);

	/* The host lost one page: its unlock says PPN_UNLOCKED. */
	xa_for_each(&m->locked, index, entry) {
		xa_erase(&m->locked, index);
		m->held--;
		break;
	}
	m->target = 0;
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_FREE), 100);
	KUNIT_EXPECT_EQ(test, m->held, 0);
}

/* ---- sizes, resets, doorbell, unload ---- */

static void huge_refused_split_into_4k(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);

	m->refuse_nth[0] = 1;
	m->target = 2 * HUGE_UNITS;
	balloon_core_run_cycle(bdev);

	KUNIT_EXPECT_EQ(test, bdev->size, 2 * HUGE_UNITS);
	KUNIT_EXPECT_EQ(test, bdev->nr_pages[BALLOON_VMW_2M_ORDER], 1);
	KUNIT_EXPECT_EQ(test, bdev->nr_pages[0], HUGE_UNITS);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_2M_LOCK], 1U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_LOCK], 1U);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_HUGE_SPLIT), 1);
	expect_in_step(test, bdev);

	m->target = 0;
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_BATCHED_2M_UNLOCK], 1U);
	expect_in_step(test, bdev);
}

static void reset_mid_batch_drops_all_and_restarts(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->offered = BALLOON_VMW_CAP_BATCHED | BALLOON_VMW_CAP_DOORBELL;
	bdev = vmw_up(test);
	m->reset_cmd = BALLOON_VMW_CMD_BATCHED_LOCK;
	m->reset_nth = 2;
	m->reset_entry = 100;
	m->target = 2000;
	balloon_core_run_cycle(bdev);

	/* Every page released, none unlocked. */
	KUNIT_EXPECT_EQ(test, m->resets, 1U);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_RESET), 1);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_EQ(test, bdev->nr_pages[0], 0);
	KUNIT_EXPECT_EQ(test, unlock_calls(m), 0U);
	KUNIT_EXPECT_EQ(test, m->held, 0);

	/* The handshake runs again, doorbell included. */
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_START], 2U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_GUEST_ID], 2U);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_VMCI_DOORBELL_SET], 2U);
	KUNIT_EXPECT_TRUE(test, m->db_set);
	KUNIT_EXPECT_EQ(test, bdev->size, 2000);
	expect_in_step(test, bdev);
}

static void reset_at_get_target(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);

	m->target = 700;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 700);

	m->reset_cmd = BALLOON_VMW_CMD_GET_TARGET;
	m->reset_nth = m->calls[BALLOON_VMW_CMD_GET_TARGET] + 1;
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_EQ(test, unlock_calls(m), 0U);
	vmw_settle(bdev, 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 700);
	expect_in_step(test, bdev);
}

static void target_from_lock_reply_stops_inflation(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;

	m->proto = 2;
	bdev = vmw_up(test);

	/*
	 * The cycle starts out for 1000 pages; at the 10th lock the host's
	 * target drops to 10, and its reply says so.  Without the reply the
	 * guest would offer an 11th page and be told PPN_NOTNEEDED.
	 */
	m->retarget_at = 10;
	m->retarget = 10;
	m->target = 1000;
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, bdev->size, 10);
	KUNIT_EXPECT_EQ(test, bdev->target, 10);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_LOCK], 10U);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_REFUSED_ALLOC), 0);
	expect_in_step(test, bdev);
}

/*
 * The same on the way down: a deflate stops where an unlock reply's
 * target says, rather than at the target the cycle started with.
 */
static void target_from_unlock_reply_stops_deflation(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;
	unsigned int unlocks;

	m->proto = 2;
	bdev = vmw_up(test);
	m->target = 1000;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 1000);

	/* Asked down to 0, the host changes its mind at the 10th unlock. */
	m->retarget_unlock_at = m->unlock_entries + 10;
	m->retarget = 990;
	m->target = 0;
	unlocks = m->calls[BALLOON_VMW_CMD_UNLOCK];
	balloon_core_run_cycle(bdev);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_UNLOCK], unlocks + 10);
	KUNIT_EXPECT_EQ(test, bdev->size, 990);
	KUNIT_EXPECT_EQ(test, bdev->target, 990);
	expect_in_step(test, bdev);
}

/*
 * A host asking for the whole guest gets the guest less its floor, in
 * 2 MiB pages as far as they go; the host sees the balloon stop there.
 */
static void target_whole_guest_stops_at_floor(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);
	u64 guest = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;

	m->target = guest;
	vmw_settle(bdev, 1000);
	KUNIT_EXPECT_GT(test, bdev->floor, 0);
	KUNIT_EXPECT_EQ(test, bdev->target, guest - bdev->floor);
	/* 2 MiB pages as far as they go, then 4 KiB pages to the exact size. */
	KUNIT_EXPECT_EQ(test, bdev->size, bdev->target);
	KUNIT_EXPECT_EQ(test, bdev->floor_refused, bdev->floor);
	KUNIT_EXPECT_EQ(test, m->held, bdev->size);
	KUNIT_EXPECT_GT(test, bdev->nr_pages[BALLOON_VMW_2M_ORDER], 0);
	expect_in_step(test, bdev);

	m->target = 0;
	vmw_settle(bdev, 1000);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_EQ(test, m->held, 0);
}

static void doorbell_kicks_the_core(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);
	u64 kicks = stat(bdev, BALLOON_CORE_STAT_KICK);

	KUNIT_ASSERT_TRUE(test, m->db_created);
	KUNIT_ASSERT_TRUE(test, m->db_set);
	m->target = 500;
	m->notify(m->notify_data);
	flush_delayed_work(&bdev->work);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_KICK), kicks + 1);
	KUNIT_EXPECT_EQ(test, bdev->size, 500);
	expect_in_step(test, bdev);

	vmw_down(m);
	KUNIT_EXPECT_FALSE(test, m->db_created);
	KUNIT_EXPECT_FALSE(test, m->db_set);
}

static void no_vmci_polls_alone(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;
	unsigned int i;

	m->no_vmci = true;
	bdev = vmw_up_polled(test, true);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_VMCI_DOORBELL_SET], 0U);
	KUNIT_EXPECT_TRUE(test, test_bit(BALLOON_CORE_F_STARTED, &bdev->flags));

	/* Nobody steps the balloon: the core's one-second poll finds it. */
	m->target = 300;
	for (i = 0; i < 50 && READ_ONCE(bdev->size) != 300; i++)
		msleep(100);
	KUNIT_EXPECT_EQ(test, READ_ONCE(bdev->size), 300);
	KUNIT_EXPECT_EQ(test, stat(bdev, BALLOON_CORE_STAT_KICK), 1);
}

static void unload_full_balloon_leaves_host_empty(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);

	m->target = 3 * HUGE_UNITS + 300;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 3 * HUGE_UNITS + 300);
	KUNIT_ASSERT_EQ(test, m->held, 3 * HUGE_UNITS + 300);

	vmw_down(m);
	/* A START offering nothing: the host let go of every page at once. */
	KUNIT_EXPECT_EQ(test, m->last_start_arg, 0);
	KUNIT_EXPECT_EQ(test, m->granted, 0);
	KUNIT_EXPECT_EQ(test, m->held, 0);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->locked));
	KUNIT_EXPECT_EQ(test, unlock_calls(m), 0U);
	KUNIT_EXPECT_FALSE(test, m->db_set);
	KUNIT_EXPECT_FALSE(test, m->db_created);
}

/* Is there a /sys/kernel/debug/vmmemctl, and is it ours (a link)? */
static bool old_vmmemctl_is_link(bool *exists)
{
	struct dentry *d = debugfs_lookup("vmmemctl", NULL);
	bool link;

	*exists = !IS_ERR_OR_NULL(d);
	if (!*exists)
		return false;
	link = d_is_symlink(d);
	dput(d);
	return link;
}

static void vmmemctl_old_path_links_ours(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	bool exists;

	vmw_up(test);
	KUNIT_EXPECT_TRUE(test, old_vmmemctl_is_link(&exists));
	KUNIT_EXPECT_TRUE(test, exists);
	vmw_down(m);
	old_vmmemctl_is_link(&exists);
	KUNIT_EXPECT_FALSE(test, exists);
}

/* A file of someone else's; it is never read. */
static const struct file_operations vmw_test_theirs_fops = {
	.owner = THIS_MODULE,
};

static void vmmemctl_old_path_taken_is_left_alone(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct dentry *theirs;
	bool exists;

	/* The in-tree vmw_balloon's file, there first. */
	theirs = debugfs_create_file("vmmemctl", 0400, NULL, NULL,
				     &vmw_test_theirs_fops);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(theirs));
	vmw_up(test);
	KUNIT_EXPECT_FALSE(test, old_vmmemctl_is_link(&exists));
	KUNIT_EXPECT_TRUE(test, exists);
	vmw_down(m);
	old_vmmemctl_is_link(&exists);
	KUNIT_EXPECT_TRUE(test, exists);
	debugfs_remove(theirs);
}

/*
 * A host that does not take the unload's START still holds the pages: they
 * go back batch by batch, in the mode the last handshake agreed.
 */
static void unload_start_refused_unlocks_every_page(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);

	m->target = 2 * HUGE_UNITS + 700;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 2 * HUGE_UNITS + 700);

	m->busy_cmd = BALLOON_VMW_CMD_START;
	m->busy_nth = m->calls[BALLOON_VMW_CMD_START] + 1;
	vmw_down(m);
	KUNIT_EXPECT_EQ(test, m->held, 0);
	KUNIT_EXPECT_TRUE(test, xa_empty(&m->locked));
	KUNIT_EXPECT_GT(test, m->calls[BALLOON_VMW_CMD_BATCHED_UNLOCK], 0U);
}

/* The in-tree driver's unload removes the path by name, ours or not. */
static void vmmemctl_removed_by_name_then_unload(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	bool exists;

	vmw_up(test);
	debugfs_lookup_and_remove("vmmemctl", NULL);
	old_vmmemctl_is_link(&exists);
	KUNIT_EXPECT_FALSE(test, exists);
	vmw_down(m);
	old_vmmemctl_is_link(&exists);
	KUNIT_EXPECT_FALSE(test, exists);
}

/*
 * A balloon that is not started (here: the host was busy when the guest
 * asked for a new handshake) still tells the host it goes: the doorbell
 * it set is taken back, and START without capabilities releases its pages.
 */
static void unload_not_started_still_tells_host(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);
	unsigned int starts, doorbells;

	KUNIT_ASSERT_TRUE(test, m->db_set);
	m->busy_cmd = BALLOON_VMW_CMD_START;
	m->busy_nth = m->calls[BALLOON_VMW_CMD_START] + 1;
	balloon_core_request_reset(bdev);
	flush_delayed_work(&bdev->work);
	/* No retry of the handshake before the unload. */
	cancel_delayed_work_sync(&bdev->work);
	KUNIT_ASSERT_FALSE(test, test_bit(BALLOON_CORE_F_STARTED, &bdev->flags));

	starts = m->calls[BALLOON_VMW_CMD_START];
	doorbells = m->calls[BALLOON_VMW_CMD_VMCI_DOORBELL_SET];
	vmw_down(m);
	/* The doorbell taken back, then START without capabilities. */
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_VMCI_DOORBELL_SET],
			doorbells + 1);
	KUNIT_EXPECT_EQ(test, m->calls[BALLOON_VMW_CMD_START], starts + 1);
	KUNIT_EXPECT_EQ(test, m->last_start_arg, 0);
	KUNIT_EXPECT_FALSE(test, m->db_set);
}

static void migrate_at_target_unlocks_then_locks(struct kunit *test)
{
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;
	struct page *page, *newpage;
	unsigned int locks, unlocks;
	unsigned long pfn;

	if (!MM_FAKE_MIGRATION)
		kunit_skip(test, "needs balloon migration in the kernel");
	m->offered = BALLOON_VMW_CAP_BATCHED;
	bdev = vmw_up(test);
	m->target = 100;
	vmw_settle(bdev, 10);
	KUNIT_ASSERT_EQ(test, bdev->size, 100);
	locks = lock_calls(m);
	unlocks = unlock_calls(m);

	/*
	 * The host is at its target: it takes a new page only once the old
	 * one is back, as a real host would say PPN_NOTNEEDED otherwise.
	 */
	newpage = alloc_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, newpage);
	page = mm_fake_isolate(&bdev->b_dev_info);
	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	KUNIT_EXPECT_EQ(test, mm_fake_migrate(&bdev->b_dev_info, newpage, page,
					      true), MIGRATEPAGE_SUCCESS);
	KUNIT_EXPECT_EQ(test, lock_calls(m), locks + 1);
	KUNIT_EXPECT_EQ(test, unlock_calls(m), unlocks + 1);
	KUNIT_EXPECT_NOT_NULL(test, xa_load(&m->locked, page_to_pfn(newpage)));
	KUNIT_EXPECT_NULL(test, xa_load(&m->locked, pfn));
#ifndef BALLOON_COMPAT_BALLOON_H
	/* Up to 6.x the test, as the MM, drops its references. */
	put_page(page);
	put_page(newpage);
#endif
	KUNIT_EXPECT_EQ(test, bdev->size, 100);
	expect_in_step(test, bdev);
}

/*
 * "Balloon:" in /proc/meminfo (NR_BALLOON_PAGES, since 6.15) counts every
 * ballooned page: the kernel counts the 4 KiB pages on its list, the core
 * its 2 MiB pages, so the line shows the whole balloon, and 0 once empty.
 */
static void meminfo_balloon_counts_2m_pages(struct kunit *test)
{
#ifdef BALLOON_COMPAT_NR_BALLOON_PAGES
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev = vmw_up(test);
	unsigned long before = global_node_page_state(NR_BALLOON_PAGES);

	/* 16 2 MiB pages and 100 4 KiB pages. */
	m->target = 16 * BIT(BALLOON_VMW_2M_ORDER) + 100;
	vmw_settle(bdev, 100);
	KUNIT_ASSERT_EQ(test, bdev->size, m->target);
	KUNIT_EXPECT_EQ(test, bdev->nr_pages[BALLOON_VMW_2M_ORDER], 16);
	KUNIT_EXPECT_EQ(test, global_node_page_state(NR_BALLOON_PAGES) - before,
			(unsigned long)bdev->size / BALLOON_CORE_UNITS_PER_PAGE);

	m->target = 0;
	vmw_settle(bdev, 100);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	KUNIT_EXPECT_EQ(test, global_node_page_state(NR_BALLOON_PAGES), before);
#else
	kunit_skip(test, "no NR_BALLOON_PAGES in this kernel");
#endif
}

/* ---- hypercalls per GiB ---- */

struct vmw_gib_case {
	const char *name;
	unsigned int proto;
	unsigned long offered;
	unsigned int lock_calls;
};

static const struct vmw_gib_case vmw_gib_cases[] = {
	{ "protocol 2", 2, 0, GIB_UNITS },
	{ "batched 4 KiB", 3, BALLOON_VMW_CAP_BATCHED,
	  GIB_UNITS / BALLOON_VMW_BATCH_MAX },
	{ "batched 2 MiB", 3, BALLOON_VMW_CAP_BATCHED |
	  BALLOON_VMW_CAP_BATCHED_2M,
	  GIB_UNITS / HUGE_UNITS / BALLOON_VMW_BATCH_MAX },
};

static void vmw_gib_desc(const struct vmw_gib_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(vmw_gib, vmw_gib_cases, vmw_gib_desc);

static void hypercalls_per_gib(struct kunit *test)
{
	const struct vmw_gib_case *c = test->param_value;
	struct vmw_model *m = test->priv;
	struct balloon_core_dev *bdev;
	unsigned int locks, unlocks;
	ktime_t t0;
	s64 us;

	if (totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE < 2 * GIB_UNITS)
		kunit_skip(test, "needs a guest with 2 GiB (UML mem=)");
	m->proto = c->proto;
	m->offered = c->offered;
	bdev = vmw_up(test);
	locks = lock_calls(m);

	m->target = GIB_UNITS;
	t0 = ktime_get();
	vmw_settle(bdev, 1000);
	us = ktime_us_delta(ktime_get(), t0);
	KUNIT_ASSERT_EQ(test, bdev->size, GIB_UNITS);
	locks = lock_calls(m) - locks;

	m->target = 0;
	vmw_settle(bdev, 1000);
	KUNIT_EXPECT_EQ(test, bdev->size, 0);
	unlocks = unlock_calls(m);

	kunit_info(test, "%s: %u lock and %u unlock hypercalls per GiB, %lld pages/s through the core\n",
		   c->name, locks, unlocks,
		   div64_s64((s64)GIB_UNITS * USEC_PER_SEC, max_t(s64, us, 1)));
	KUNIT_EXPECT_EQ(test, locks, c->lock_calls);
	KUNIT_EXPECT_EQ(test, unlocks, c->lock_calls);
	expect_in_step(test, bdev);
}

static struct kunit_case balloon_vmw_protocol_cases[] = {
	KUNIT_CASE(model_answers_like_a_host),
	KUNIT_CASE(start_negotiates_richest_mode),
	KUNIT_CASE(start_protocol_2_host_single_pages),
	KUNIT_CASE(start_picky_old_host_gets_protocol_2),
	KUNIT_CASE(start_picky_host_keeps_to_what_was_asked),
	KUNIT_CASE(start_2m_needs_batching),
	KUNIT_CASE(start_batched_4k_only),
	KUNIT_CASE(start_host_without_lock_commands_fails),
	KUNIT_CASE(target_32bit_host_ignores_high_bits),
	KUNIT_CASE_PARAM(lock_status_protocol_2, vmw_status_gen_params),
	KUNIT_CASE_PARAM(lock_status_batched, vmw_status_gen_params),
	KUNIT_CASE(lock_busy_command_retried),
	KUNIT_CASE(unlock_refused_page_stays),
	KUNIT_CASE(unlock_page_host_forgot_is_freed),
	KUNIT_CASE(huge_refused_split_into_4k),
	KUNIT_CASE(reset_mid_batch_drops_all_and_restarts),
	KUNIT_CASE(reset_at_get_target),
	KUNIT_CASE(target_from_lock_reply_stops_inflation),
	KUNIT_CASE(target_from_unlock_reply_stops_deflation),
	KUNIT_CASE(target_whole_guest_stops_at_floor),
	KUNIT_CASE(doorbell_kicks_the_core),
	KUNIT_CASE(no_vmci_polls_alone),
	KUNIT_CASE(unload_full_balloon_leaves_host_empty),
	KUNIT_CASE(unload_not_started_still_tells_host),
	KUNIT_CASE(unload_start_refused_unlocks_every_page),
	KUNIT_CASE(vmmemctl_old_path_links_ours),
	KUNIT_CASE(vmmemctl_old_path_taken_is_left_alone),
	KUNIT_CASE(vmmemctl_removed_by_name_then_unload),
	KUNIT_CASE(migrate_at_target_unlocks_then_locks),
	KUNIT_CASE(meminfo_balloon_counts_2m_pages),
	KUNIT_CASE_PARAM(hypercalls_per_gib, vmw_gib_gen_params),
	{}
};

static struct kunit_suite balloon_vmw_protocol_suite = {
	.name = "balloon_vmw_protocol",
	.init = vmw_init,
	.exit = vmw_exit,
	.test_cases = balloon_vmw_protocol_cases,
};

kunit_test_suites(&balloon_vmw_protocol_suite);

MODULE_DESCRIPTION("KUnit tests for balloon_vmw against a model of the VMware host");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(BALLOON_KUNIT_NS);
