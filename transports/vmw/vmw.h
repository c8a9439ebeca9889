/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMware balloon backdoor protocol, as balloon_vmw speaks it and as the
 * KUnit host model (kunit/vmw_test.c) answers it.
 *
 * Every command is one "inl" on port 0x5670 with the magic in EAX, the
 * command in ECX and two arguments in EBX and ESI.  The status comes back
 * in EAX; START returns the host's capabilities in ECX, and the commands
 * in %BALLOON_VMW_CMDS_WITH_TARGET return the host's current target (in
 * 4 KiB frames) in EBX.
 */
#ifndef _BALLOON_VMW_H
#define _BALLOON_VMW_H

#include <linux/bits.h>
#include <linux/types.h>

#include <balloon/core.h>

#define BALLOON_VMW_HV_PORT	0x5670
#define BALLOON_VMW_HV_MAGIC	0x456c6d6f
#define BALLOON_VMW_GUEST_LINUX	1	/* GUEST_ID's argument for Linux */

/**
 * enum balloon_vmw_cmd - backdoor commands
 * @BALLOON_VMW_CMD_START: negotiate: EBX carries the guest's capabilities
 *	(a protocol-2 host reads it as the protocol version, 2).
 * @BALLOON_VMW_CMD_GET_TARGET: EBX carries the guest's memory size in
 *	frames, the largest target the host may ask for.
 * @BALLOON_VMW_CMD_LOCK: protocol 2: the page at PFN EBX (32 bits) joins
 *	the balloon.
 * @BALLOON_VMW_CMD_UNLOCK: protocol 2: the page at PFN EBX leaves it.
 * @BALLOON_VMW_CMD_GUEST_ID: EBX carries the guest OS type.
 * @BALLOON_VMW_CMD_BATCHED_LOCK: lock the ESI 4 KiB pages listed in the
 *	batch page at PFN EBX.
 * @BALLOON_VMW_CMD_BATCHED_UNLOCK: unlock them.
 * @BALLOON_VMW_CMD_BATCHED_2M_LOCK: the same for 2 MiB pages.
 * @BALLOON_VMW_CMD_BATCHED_2M_UNLOCK: the same for 2 MiB pages.
 * @BALLOON_VMW_CMD_VMCI_DOORBELL_SET: the VMCI doorbell (context EBX,
 *	resource ESI) the host rings when the target changes.
 * @BALLOON_VMW_CMD_NR: number of command codes (5 is unused).
 */
enum balloon_vmw_cmd {
	BALLOON_VMW_CMD_START			= 0,
	BALLOON_VMW_CMD_GET_TARGET		= 1,
	BALLOON_VMW_CMD_LOCK			= 2,
	BALLOON_VMW_CMD_UNLOCK			= 3,
	BALLOON_VMW_CMD_GUEST_ID		= 4,
	BALLOON_VMW_CMD_BATCHED_LOCK		= 6,
	BALLOON_VMW_CMD_BATCHED_UNLOCK		= 7,
	BALLOON_VMW_CMD_BATCHED_2M_LOCK		= 8,
	BALLOON_VMW_CMD_BATCHED_2M_UNLOCK	= 9,
	BALLOON_VMW_CMD_VMCI_DOORBELL_SET	= 10,
	BALLOON_VMW_CMD_NR
};

#define BALLOON_VMW_CMDS_WITH_TARGET					\
	(BIT(BALLOON_VMW_CMD_GET_TARGET) | BIT(BALLOON_VMW_CMD_LOCK) |	\
	 BIT(BALLOON_VMW_CMD_UNLOCK) | BIT(BALLOON_VMW_CMD_BATCHED_LOCK) | \
	 BIT(BALLOON_VMW_CMD_BATCHED_UNLOCK) |				\
	 BIT(BALLOON_VMW_CMD_BATCHED_2M_LOCK) |				\
	 BIT(BALLOON_VMW_CMD_BATCHED_2M_UNLOCK))

/**
 * enum balloon_vmw_status - what the host answers, in EAX or per batch entry
 * @BALLOON_VMW_SUCCESS: done.
 * @BALLOON_VMW_ERROR_CMD_INVALID: unknown or not negotiated command.
 * @BALLOON_VMW_ERROR_PPN_INVALID: the PFN is not guest memory.
 * @BALLOON_VMW_ERROR_PPN_LOCKED: the page is already in the balloon.
 * @BALLOON_VMW_ERROR_PPN_UNLOCKED: the page is not in the balloon.
 * @BALLOON_VMW_ERROR_PPN_PINNED: the host cannot take this page.
 * @BALLOON_VMW_ERROR_PPN_NOTNEEDED: the host wants no more pages.
 * @BALLOON_VMW_ERROR_RESET: the host forgot the balloon: START again.
 * @BALLOON_VMW_ERROR_BUSY: try again later.
 * @BALLOON_VMW_SUCCESS_WITH_CAPABILITIES: START succeeded and ECX holds
 *	the capabilities (protocol 3 and later).
 */
enum balloon_vmw_status {
	BALLOON_VMW_SUCCESS			= 0,
	BALLOON_VMW_ERROR_CMD_INVALID		= 1,
	BALLOON_VMW_ERROR_PPN_INVALID		= 2,
	BALLOON_VMW_ERROR_PPN_LOCKED		= 3,
	BALLOON_VMW_ERROR_PPN_UNLOCKED		= 4,
	BALLOON_VMW_ERROR_PPN_PINNED		= 5,
	BALLOON_VMW_ERROR_PPN_NOTNEEDED		= 6,
	BALLOON_VMW_ERROR_RESET			= 7,
	BALLOON_VMW_ERROR_BUSY			= 8,
	BALLOON_VMW_SUCCESS_WITH_CAPABILITIES	= 0x03000000,
};

/**
 * enum balloon_vmw_caps - capability bits exchanged by START
 * @BALLOON_VMW_CAP_BASIC: LOCK and UNLOCK (bit 0 is reserved, so a
 *	protocol-2 guest's "version 2" reads as exactly this).
 * @BALLOON_VMW_CAP_BATCHED: BATCHED_LOCK and BATCHED_UNLOCK.
 * @BALLOON_VMW_CAP_BATCHED_2M: the 2 MiB batched commands (with batching).
 * @BALLOON_VMW_CAP_DOORBELL: VMCI_DOORBELL_SET.
 * @BALLOON_VMW_CAP_64BIT_TARGET: targets and limits wider than 32 bits.
 */
enum balloon_vmw_caps {
	BALLOON_VMW_CAP_BASIC		= BIT(1),
	BALLOON_VMW_CAP_BATCHED		= BIT(2),
	BALLOON_VMW_CAP_BATCHED_2M	= BIT(3),
	BALLOON_VMW_CAP_DOORBELL	= BIT(4),
	BALLOON_VMW_CAP_64BIT_TARGET	= BIT(5),
};

/*
 * A batch page holds one 64-bit entry per page: the page's physical
 * address (PFN << 12), whose low bits the host overwrites with the page's
 * status.
 */
#define BALLOON_VMW_ENTRY_STATUS	GENMASK_ULL(4, 0)
#define BALLOON_VMW_ENTRY_PFN_SHIFT	12
#define BALLOON_VMW_BATCH_MAX		(SZ_4K / sizeof(u64))

/* Order of a 2 MiB page in guest pages. */
#define BALLOON_VMW_2M_ORDER		BALLOON_CORE_ORDER_2M

/*
 * Without x86 there is no backdoor, and balloon_vmw is only built for the
 * KUnit suite: this is where its host model plugs in.
 */
#ifndef CONFIG_X86
/**
 * struct balloon_vmw_host - a model of the host, for KUnit on UML
 * @call: answer one backdoor command; @result gets ECX for START and EBX
 *	otherwise.
 * @doorbell_create: stand in for vmci_doorbell_create(): return 0 and a
 *	handle in @context and @resource, and call @notify(@data) to ring.
 * @doorbell_destroy: stand in for vmci_doorbell_destroy().
 */
struct balloon_vmw_host {
	unsigned long (*call)(unsigned long cmd, unsigned long arg1,
			      unsigned long arg2, unsigned long *result);
	int (*doorbell_create)(u32 *context, u32 *resource,
			       void (*notify)(void *data), void *data);
	void (*doorbell_destroy)(u32 context, u32 resource);
};

extern const struct balloon_vmw_host *balloon_vmw_host;
#endif

/**
 * struct balloon_vmw - the VMware balloon (there is one per guest)
 * @bdev: the core's balloon, embedded.
 * @caps: the capabilities the host granted at the last START.
 * @batch: the batch page of PFN and status entries, allocated once.
 * @db_context: the VMCI doorbell's context ID, or %VMCI_INVALID_ID.
 * @db_resource: the VMCI doorbell's resource ID.
 * @db_created: the doorbell exists and may ring.
 * @db_set: the host agreed to ring it; until it is told otherwise at
 *	unload, whatever START it saw since.
 * @vmmemctl: /sys/kernel/debug/vmmemctl, the in-tree vmw_balloon's path,
 *	as a link to the core's vmmemctl file, with a reference of ours;
 *	%NULL when that path was taken or debugfs is missing.
 *
 * @caps and @batch are only touched from the core's methods, which the
 * core serialises under its work lock, and from create and destroy, when
 * no method can run; the backdoor itself needs no lock.
 */
struct balloon_vmw {
	struct balloon_core_dev bdev;
	unsigned long caps;
	u64 *batch;
	u32 db_context;
	u32 db_resource;
	bool db_created;
	bool db_set;
	struct dentry *vmmemctl;
};

#if IS_ENABLED(CONFIG_KUNIT)
struct balloon_vmw *balloon_vmw_create(void);
void balloon_vmw_destroy(struct balloon_vmw *b);
#endif

#endif /* _BALLOON_VMW_H */
