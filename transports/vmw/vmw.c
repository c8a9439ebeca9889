// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_vmw: the VMware backdoor transport for balloon_core.
 *
 * Speaks the balloon protocol on backdoor port 0x5670 and nothing else:
 * START negotiates the richest command set both sides know (2 MiB batches,
 * 4 KiB batches, or the single-page commands of protocol 2), GUEST_ID
 * names the guest, GET_TARGET is polled every second, and a VMCI doorbell,
 * where the host offers one, brings target changes at once.  Host statuses
 * become errnos in one table; ERROR_RESET becomes the core's reset.  Every
 * policy decision is balloon_core's.
 *
 * The hypercall itself is balloon_vmw_hypercall(); everything above it is
 * plain C, which the KUnit host model drives on UML.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/gfp.h>
#include <linux/init.h>
#include <linux/kmod.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/slab.h>
#include <linux/vmw_vmci_defs.h>
#ifdef CONFIG_X86
#include <asm/hypervisor.h>
#endif
#if IS_ENABLED(CONFIG_VMWARE_VMCI)
#include <linux/vmw_vmci_api.h>
#endif

#include "vmw.h"

/* What this driver can speak; 64-bit targets only where longs are. */
#define BALLOON_VMW_GUEST_CAPS						\
	(BALLOON_VMW_CAP_BASIC | BALLOON_VMW_CAP_BATCHED |		\
	 BALLOON_VMW_CAP_BATCHED_2M | BALLOON_VMW_CAP_DOORBELL |	\
	 (IS_ENABLED(CONFIG_64BIT) ? BALLOON_VMW_CAP_64BIT_TARGET : 0))

/* The host is polled this often, doorbell or not. */
#define BALLOON_VMW_POLL_MS	1000

static bool deflate_on_pressure;
module_param(deflate_on_pressure, bool, 0444);
MODULE_PARM_DESC(deflate_on_pressure,
		 "Unlock and give back ballooned pages before the OOM killer runs, though the host did not ask (default: off, as in the in-tree driver)");

static struct balloon_vmw *to_balloon_vmw(struct balloon_core_dev *bdev)
{
	return container_of(bdev, struct balloon_vmw, bdev);
}

#ifdef CONFIG_X86
static bool balloon_vmw_on_vmware(void)
{
	return x86_hyper_type == X86_HYPER_VMWARE;
}

/*
 * The one hypercall.  Only ever reached on VMware: module init checks
 * the hypervisor before anything calls it.
 */
static unsigned long balloon_vmw_hypercall(unsigned long cmd,
					   unsigned long arg1,
					   unsigned long arg2,
					   unsigned long *result)
{
	unsigned long status, ecx, edx, ebx, esi;

	asm volatile ("inl %%dx"
		      : "=a" (status), "=c" (ecx), "=d" (edx), "=b" (ebx),
			"=S" (esi)
		      : "0" (BALLOON_VMW_HV_MAGIC), "1" (cmd),
			"2" (BALLOON_VMW_HV_PORT), "3" (arg1), "4" (arg2)
		      : "memory");
	*result = cmd == BALLOON_VMW_CMD_START ? ecx : ebx;
	return status;
}
#else
const struct balloon_vmw_host *balloon_vmw_host;
EXPORT_SYMBOL_IF_KUNIT(balloon_vmw_host);

static bool balloon_vmw_on_vmware(void)
{
	return false;
}

static unsigned long balloon_vmw_hypercall(unsigned long cmd,
					   unsigned long arg1,
					   unsigned long arg2,
					   unsigned long *result)
{
	const struct balloon_vmw_host *host = READ_ONCE(balloon_vmw_host);

	*result = 0;
	if (!host)
		return BALLOON_VMW_ERROR_CMD_INVALID;
	return host->call(cmd, arg1, arg2, result);
}
#endif

/* Host statuses as errnos; a status missing here is -EIO. */
static const int balloon_vmw_errnos[] = {
	[BALLOON_VMW_SUCCESS]			= 0,
	[BALLOON_VMW_ERROR_CMD_INVALID]		= -EOPNOTSUPP,
	[BALLOON_VMW_ERROR_PPN_INVALID]		= -EINVAL,
	[BALLOON_VMW_ERROR_PPN_LOCKED]		= -EEXIST,
	[BALLOON_VMW_ERROR_PPN_UNLOCKED]	= -ENOENT,
	[BALLOON_VMW_ERROR_PPN_PINNED]		= -EPERM,
	[BALLOON_VMW_ERROR_PPN_NOTNEEDED]	= -ENOSPC,
	[BALLOON_VMW_ERROR_RESET]		= -BALLOON_CORE_ERESET,
	[BALLOON_VMW_ERROR_BUSY]		= -EBUSY,
};

static int balloon_vmw_errno(unsigned long status)
{
	if (status < ARRAY_SIZE(balloon_vmw_errnos))
		return balloon_vmw_errnos[status];
	pr_warn_once("unknown host status %#lx\n", status);
	return -EIO;
}

/*
 * One command.  A reply that carries the host's target passes it to the
 * core, so that an inflation stops as soon as the host has enough.
 */
static unsigned long balloon_vmw_cmd(struct balloon_vmw *b, unsigned long cmd,
				     unsigned long arg1, unsigned long arg2,
				     unsigned long *result)
{
	unsigned long status, res;

	status = balloon_vmw_hypercall(cmd, arg1, arg2, &res);
	if (!(b->caps & BALLOON_VMW_CAP_64BIT_TARGET) &&
	    cmd != BALLOON_VMW_CMD_START)
		res = (u32)res;
	if (status == BALLOON_VMW_SUCCESS &&
	    (BALLOON_VMW_CMDS_WITH_TARGET & BIT(cmd)) &&
	    cmd != BALLOON_VMW_CMD_GET_TARGET)
		balloon_core_update_target(&b->bdev, res);
	if (result)
		*result = res;
	return status;
}

#if IS_ENABLED(CONFIG_VMWARE_VMCI)
/*
 * VMCI is looked up at run time rather than linked against, so that
 * loading balloon_vmw does not load vmw_vmci: off VMware nothing at all
 * is touched.  The reference create takes keeps vmw_vmci loaded until
 * destroy drops it.
 */
static int balloon_vmw_doorbell_create(u32 *context, u32 *resource,
				       void (*notify)(void *data), void *data)
{
	int (*create)(struct vmci_handle *handle, u32 flags, u32 priv_flags,
		      vmci_callback notify_cb, void *client_data);
	struct vmci_handle handle;

	create = symbol_get(vmci_doorbell_create);
	if (!create)
		return -ENODEV;
	if (create(&handle, VMCI_FLAG_DELAYED_CB,
		   VMCI_PRIVILEGE_FLAG_RESTRICTED, notify, data) !=
	    VMCI_SUCCESS) {
		symbol_put(vmci_doorbell_create);
		return -ENODEV;
	}
	*context = handle.context;
	*resource = handle.resource;
	return 0;
}

static void balloon_vmw_doorbell_destroy(u32 context, u32 resource)
{
	int (*destroy)(struct vmci_handle handle);

	destroy = symbol_get(vmci_doorbell_destroy);

	/* Held through create's reference, so it cannot be missing. */
	if (!WARN_ON_ONCE(!destroy)) {
		destroy(vmci_make_handle(context, resource));
		symbol_put(vmci_doorbell_destroy);
	}
	symbol_put(vmci_doorbell_create);
}
#elif !defined(CONFIG_X86)
static int balloon_vmw_doorbell_create(u32 *context, u32 *resource,
				       void (*notify)(void *data), void *data)
{
	const struct balloon_vmw_host *host = READ_ONCE(balloon_vmw_host);

	if (!host || !host->doorbell_create)
		return -ENODEV;
	return host->doorbell_create(context, resource, notify, data);
}

static void balloon_vmw_doorbell_destroy(u32 context, u32 resource)
{
	const struct balloon_vmw_host *host = READ_ONCE(balloon_vmw_host);

	if (host && host->doorbell_destroy)
		host->doorbell_destroy(context, resource);
}
#else
static int balloon_vmw_doorbell_create(u32 *context, u32 *resource,
				       void (*notify)(void *data), void *data)
{
	return -ENODEV;	/* no VMCI: the one-second poll does it all */
}

static void balloon_vmw_doorbell_destroy(u32 context, u32 resource)
{
}
#endif

/* Rung by the host (VMCI's delayed callback, process context). */
static void balloon_vmw_doorbell_notify(void *data)
{
	struct balloon_vmw *b = data;

	balloon_core_kick(&b->bdev);
}

/*
 * The doorbell is created once, before the balloon registers: VMCI
 * allocates, which must not happen under the core's work lock (the OOM
 * notifier takes it).  Without a doorbell the poll still works.
 */
static void balloon_vmw_doorbell_init(struct balloon_vmw *b)
{
	int ret;

	ret = balloon_vmw_doorbell_create(&b->db_context, &b->db_resource,
					  balloon_vmw_doorbell_notify, b);
	if (ret) {
		pr_info("no VMCI doorbell (%d); polling the host every second\n",
			ret);
		return;
	}
	b->db_created = true;
}

/* Ask the host to ring our doorbell when its target changes. */
static int balloon_vmw_doorbell_set(struct balloon_vmw *b)
{
	unsigned long status;

	if (!b->db_created)
		return 0;
	status = balloon_vmw_cmd(b, BALLOON_VMW_CMD_VMCI_DOORBELL_SET,
				 b->db_context, b->db_resource, NULL);
	if (status == BALLOON_VMW_ERROR_RESET)
		return -BALLOON_CORE_ERESET;
	if (status != BALLOON_VMW_SUCCESS)
		pr_warn_once("host refused the doorbell (status %lu); polling every second\n",
			     status);
	else
		b->db_set = true;
	return 0;
}

/*
 * Before the doorbell is destroyed, whatever became of the handshake since
 * (a failed or pending START), as the in-tree driver does at unload.
 */
static void balloon_vmw_doorbell_unset(struct balloon_vmw *b)
{
	if (!b->db_set)
		return;
	balloon_vmw_cmd(b, BALLOON_VMW_CMD_VMCI_DOORBELL_SET,
			VMCI_INVALID_ID, VMCI_INVALID_ID, NULL);
	b->db_set = false;
}

/*
 * START: offer everything we speak.  The host replies with all it offers
 * (the in-tree driver relies on that at unload), so we use what is both
 * offered and asked for.  A protocol-2 host answers plain SUCCESS; one
 * that rejects the offer gets a second START asking for protocol 2 alone,
 * and whatever it replies then, protocol 2 is what we use.
 */
static int balloon_vmw_negotiate(struct balloon_vmw *b)
{
	unsigned long status, caps, asked = BALLOON_VMW_GUEST_CAPS;

	b->caps = 0;
	status = balloon_vmw_cmd(b, BALLOON_VMW_CMD_START, asked, 0, &caps);
	if (status == BALLOON_VMW_ERROR_CMD_INVALID) {
		asked = BALLOON_VMW_CAP_BASIC;
		status = balloon_vmw_cmd(b, BALLOON_VMW_CMD_START, asked, 0,
					 &caps);
	}

	switch (status) {
	case BALLOON_VMW_SUCCESS_WITH_CAPABILITIES:
		caps &= asked;
		break;
	case BALLOON_VMW_SUCCESS:
		caps = BALLOON_VMW_CAP_BASIC;
		break;
	default:
		return balloon_vmw_errno(status) ?: -EIO;
	}
	/* 2 MiB pages only come in batches. */
	if (!(caps & BALLOON_VMW_CAP_BATCHED))
		caps &= ~BALLOON_VMW_CAP_BATCHED_2M;
	if (!(caps & (BALLOON_VMW_CAP_BASIC | BALLOON_VMW_CAP_BATCHED))) {
		pr_warn_once("host offers no lock command we know (capabilities %#lx)\n",
			     caps);
		return -EOPNOTSUPP;
	}
	b->caps = caps;
	return 0;
}

static int balloon_vmw_start(struct balloon_core_dev *bdev,
			     struct balloon_core_caps *caps)
{
	struct balloon_vmw *b = to_balloon_vmw(bdev);
	unsigned long status;
	int ret;

	ret = balloon_vmw_negotiate(b);
	if (ret)
		return ret;

	if (b->caps & BALLOON_VMW_CAP_DOORBELL) {
		ret = balloon_vmw_doorbell_set(b);
		if (ret)
			return ret;
	}

	status = balloon_vmw_cmd(b, BALLOON_VMW_CMD_GUEST_ID,
				 BALLOON_VMW_GUEST_LINUX, 0, NULL);
	if (status == BALLOON_VMW_ERROR_RESET)
		return -BALLOON_CORE_ERESET;
	if (status != BALLOON_VMW_SUCCESS)
		pr_warn_once("host refused the guest ID (status %lu)\n", status);

	caps->orders = BIT(0);
	if (b->caps & BALLOON_VMW_CAP_BATCHED_2M)
		caps->orders |= BIT(BALLOON_VMW_2M_ORDER);
	caps->max_batch = b->caps & BALLOON_VMW_CAP_BATCHED ?
			  BALLOON_VMW_BATCH_MAX : 1;
	caps->poll_ms = BALLOON_VMW_POLL_MS;
	caps->flags = BALLOON_CORE_CAP_POLL;
	if (deflate_on_pressure)
		caps->flags |= BALLOON_CORE_CAP_DEFLATE_ON_PRESSURE;
	return 0;
}

static int balloon_vmw_get_target(struct balloon_core_dev *bdev, u64 *target)
{
	struct balloon_vmw *b = to_balloon_vmw(bdev);
	u64 limit = (u64)totalram_pages() * BALLOON_CORE_UNITS_PER_PAGE;
	unsigned long status, res;

	/* Older hosts take a 32-bit limit: never ask for less than it says. */
	if (!(b->caps & BALLOON_VMW_CAP_64BIT_TARGET))
		limit = min_t(u64, limit, U32_MAX);
	status = balloon_vmw_cmd(b, BALLOON_VMW_CMD_GET_TARGET, limit, 0, &res);
	if (status != BALLOON_VMW_SUCCESS)
		return balloon_vmw_errno(status) ?: -EIO;
	*target = res;
	return 0;
}

/*
 * One page's status into its &balloon_core_batch.status entry (left 0 when
 * the page went through: a page the host says it does not hold is free to
 * go on unlock).  Returns true when the host needs no more pages.
 */
static bool balloon_vmw_page_result(unsigned long status, bool lock,
				    int *result)
{
	if (status == BALLOON_VMW_SUCCESS ||
	    (!lock && status == BALLOON_VMW_ERROR_PPN_UNLOCKED))
		return false;
	*result = balloon_vmw_errno(status) ?: -EIO;
	return status == BALLOON_VMW_ERROR_PPN_NOTNEEDED;
}

/*
 * One page with the protocol-2 commands.  Their PFN is 32 bits wide: a
 * page above 16 TiB is refused here, without asking the host.
 */
static int balloon_vmw_single(struct balloon_vmw *b,
			      struct balloon_core_batch *batch, bool lock)
{
	unsigned long pfn = page_to_pfn(batch->pages[0]);
	unsigned long status;

	if (pfn != (u32)pfn) {
		batch->status[0] = -EINVAL;
		return 0;
	}
	status = balloon_vmw_cmd(b, lock ? BALLOON_VMW_CMD_LOCK :
				 BALLOON_VMW_CMD_UNLOCK, pfn, 1, NULL);
	switch (status) {
	case BALLOON_VMW_ERROR_RESET:
	case BALLOON_VMW_ERROR_BUSY:
	case BALLOON_VMW_ERROR_CMD_INVALID:
		return balloon_vmw_errno(status);	/* the command failed */
	default:
		return balloon_vmw_page_result(status, lock, &batch->status[0]) ?
		       -EAGAIN : 0;
	}
}

/*
 * A batch of up to 512 pages of one size in one command.  The command's
 * own status covers the whole batch; each entry carries the page's.
 */
static int balloon_vmw_batched(struct balloon_vmw *b,
			       struct balloon_core_batch *batch, bool lock)
{
	bool huge = batch->order == BALLOON_VMW_2M_ORDER, again = false;
	unsigned long cmd, status;
	unsigned int i;

	if (lock)
		cmd = huge ? BALLOON_VMW_CMD_BATCHED_2M_LOCK :
			     BALLOON_VMW_CMD_BATCHED_LOCK;
	else
		cmd = huge ? BALLOON_VMW_CMD_BATCHED_2M_UNLOCK :
			     BALLOON_VMW_CMD_BATCHED_UNLOCK;

	for (i = 0; i < batch->count; i++)
		b->batch[i] = (u64)page_to_pfn(batch->pages[i]) <<
			      BALLOON_VMW_ENTRY_PFN_SHIFT;
	status = balloon_vmw_cmd(b, cmd, PHYS_PFN(virt_to_phys(b->batch)), batch->count,
				 NULL);
	if (status != BALLOON_VMW_SUCCESS)
		return balloon_vmw_errno(status) ?: -EIO;

	for (i = 0; i < batch->count; i++) {
		status = b->batch[i] & BALLOON_VMW_ENTRY_STATUS;
		if (status == BALLOON_VMW_ERROR_RESET)
			return -BALLOON_CORE_ERESET;
		again |= balloon_vmw_page_result(status, lock,
						 &batch->status[i]);
	}
	return lock && again ? -EAGAIN : 0;
}

static int balloon_vmw_inflate(struct balloon_core_dev *bdev,
			       struct balloon_core_batch *batch)
{
	struct balloon_vmw *b = to_balloon_vmw(bdev);

	if (b->caps & BALLOON_VMW_CAP_BATCHED)
		return balloon_vmw_batched(b, batch, true);
	return balloon_vmw_single(b, batch, true);
}

static int balloon_vmw_deflate(struct balloon_core_dev *bdev,
			       struct balloon_core_batch *batch)
{
	struct balloon_vmw *b = to_balloon_vmw(bdev);

	if (b->caps & BALLOON_VMW_CAP_BATCHED)
		return balloon_vmw_batched(b, batch, false);
	return balloon_vmw_single(b, batch, false);
}

/*
 * Unload: the doorbell goes, then a START offering nothing tells the host
 * that no balloon driver is left, and it lets go of every page at once;
 * the core frees them without an unlock each.  The in-tree driver leaves
 * the same way.  A host that did not take that START still holds the
 * pages: the core gives them back one batch at a time, in the mode the
 * last handshake agreed, so the capabilities stay until then.
 */
static int balloon_vmw_detach(struct balloon_core_dev *bdev)
{
	struct balloon_vmw *b = to_balloon_vmw(bdev);
	unsigned long status, caps;

	balloon_vmw_doorbell_unset(b);
	status = balloon_vmw_cmd(b, BALLOON_VMW_CMD_START, 0, 0, &caps);
	if (status != BALLOON_VMW_SUCCESS &&
	    status != BALLOON_VMW_SUCCESS_WITH_CAPABILITIES)
		return 0;
	b->caps = 0;
	return -BALLOON_CORE_ERESET;
}

static const struct balloon_core_ops balloon_vmw_ops = {
	.owner = THIS_MODULE,
	.name = "vmw",
	.start = balloon_vmw_start,
	.get_target = balloon_vmw_get_target,
	.inflate = balloon_vmw_inflate,
	.deflate = balloon_vmw_deflate,
	.detach = balloon_vmw_detach,
};

/*
 * VMware's tools and scripts read the in-tree vmw_balloon's
 * /sys/kernel/debug/vmmemctl; ours is balloon/<name>/vmmemctl.  Offer the
 * old path as a link where nothing else owns it: the in-tree driver, if it
 * got there first, keeps it.  The link holds a reference of ours, because
 * the in-tree driver's unload removes the path by name, whoever made it.
 */
static void balloon_vmw_link_vmmemctl(struct balloon_vmw *b)
{
	struct dentry *d = debugfs_lookup("vmmemctl", NULL);
	char target[64];

	if (d) {
		dput(d);
		return;
	}
	snprintf(target, sizeof(target), "balloon/%s/vmmemctl", b->bdev.name);
	d = debugfs_create_symlink("vmmemctl", NULL, target);
	b->vmmemctl = IS_ERR(d) ? NULL : dget(d);
}

/* Remove the link if the path is still ours, and drop our reference. */
static void balloon_vmw_unlink_vmmemctl(struct balloon_vmw *b)
{
	struct dentry *d;

	if (!b->vmmemctl)
		return;
	d = debugfs_lookup("vmmemctl", NULL);
	if (d == b->vmmemctl)
		debugfs_remove(d);
	dput(d);
	dput(b->vmmemctl);
	b->vmmemctl = NULL;
}

/**
 * balloon_vmw_create() - set up the balloon and hand it to the core
 *
 * The core's first cycle runs the handshake.  Module init calls this once
 * it knows it runs on VMware; the KUnit suite calls it with its host model
 * in place.
 *
 * Context: Process context; may sleep.
 * Return: the balloon, or an ERR_PTR().
 */
VISIBLE_IF_KUNIT struct balloon_vmw *balloon_vmw_create(void)
{
	struct balloon_vmw *b;
	int ret;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return ERR_PTR(-ENOMEM);
	b->batch = (u64 *)get_zeroed_page(GFP_KERNEL);
	if (!b->batch) {
		ret = -ENOMEM;
		goto err_batch;
	}
	b->db_context = VMCI_INVALID_ID;
	b->db_resource = VMCI_INVALID_ID;
	balloon_vmw_doorbell_init(b);

	ret = balloon_core_register(&b->bdev, &balloon_vmw_ops, NULL, "vmw");
	if (ret)
		goto err_register;
	balloon_vmw_link_vmmemctl(b);
	return b;

err_register:
	if (b->db_created)
		balloon_vmw_doorbell_destroy(b->db_context, b->db_resource);
	free_page((unsigned long)b->batch);
err_batch:
	kfree(b);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_vmw_create);

/**
 * balloon_vmw_destroy() - give every page back and leave the host
 * @b: the balloon from balloon_vmw_create().
 *
 * The core empties the balloon (see balloon_vmw_detach()); then the
 * doorbell is destroyed.
 *
 * Context: Process context; may sleep.
 */
VISIBLE_IF_KUNIT void balloon_vmw_destroy(struct balloon_vmw *b)
{
	balloon_vmw_unlink_vmmemctl(b);
	balloon_core_unregister(&b->bdev);
	if (b->db_created)
		balloon_vmw_doorbell_destroy(b->db_context, b->db_resource);
	free_page((unsigned long)b->batch);
	kfree(b);
}
EXPORT_SYMBOL_IF_KUNIT(balloon_vmw_destroy);

static struct balloon_vmw *balloon_vmw;

static int __init balloon_vmw_init(void)
{
	struct balloon_vmw *b;

	/* Anywhere else the backdoor port is not ours to touch. */
	if (!balloon_vmw_on_vmware())
		return -ENODEV;

	/* The doorbell, if VMCI is there; the poll works without it. */
	if (IS_ENABLED(CONFIG_VMWARE_VMCI) && IS_MODULE(CONFIG_VMWARE_VMCI))
		request_module("vmw_vmci");

	b = balloon_vmw_create();
	if (IS_ERR(b))
		return PTR_ERR(b);
	balloon_vmw = b;
	return 0;
}

/*
 * Built in, a late initcall lets VMCI probe first, so that the doorbell
 * is there for the first handshake; as a module it is module_init().
 */
late_initcall(balloon_vmw_init);

static void __exit balloon_vmw_exit(void)
{
	balloon_vmw_destroy(balloon_vmw);
}
module_exit(balloon_vmw_exit);

MODULE_IMPORT_NS(BALLOON_CORE_NS);
MODULE_ALIAS("dmi:*:svnVMware*:*");
MODULE_DESCRIPTION("VMware balloon transport for balloon_core");
MODULE_AUTHOR("The balloon driver authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(BALLOON_VERSION);
