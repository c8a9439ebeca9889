// SPDX-License-Identifier: GPL-2.0
/*
 * balloon_vmw: the VMware backdoor transport for balloon_core.
 *
 * This is the module's frame: it refuses to load anywhere but on VMware,
 * before touching any hardware, as the protocol requires.  The backdoor
 * protocol itself (START, GUEST_ID, GET_TARGET, LOCK/UNLOCK and their
 * batched and 2 MiB forms, doorbell) is not implemented yet, so on VMware
 * it refuses to load too, saying so.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <asm/hypervisor.h>

#include <balloon/core.h>

static int __init balloon_vmw_init(void)
{
	if (x86_hyper_type != X86_HYPER_VMWARE)
		return -ENODEV;

	pr_info("VMware backdoor protocol not implemented yet\n");
	return -ENODEV;
}
module_init(balloon_vmw_init);

MODULE_ALIAS("dmi:*:svnVMware*:*");
MODULE_DESCRIPTION("VMware balloon transport for balloon_core");
MODULE_AUTHOR("The balloon driver authors");
MODULE_LICENSE("GPL");
MODULE_VERSION(BALLOON_VERSION);
