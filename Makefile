# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of balloon_core, balloon_virtio and, for x86 kernels,
# balloon_vmw.
#
#   make                  build against the running kernel (or KDIR=...;
#                         ARCH= and CROSS_COMPILE= cross-build, e.g.
#                         ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
#   make install          install into /lib/modules/<kver>/updates and the
#                         modprobe.d blacklist into /etc/modprobe.d, depmod
#   make uninstall        remove what install put there, depmod
#                         (both honour INSTALL_MOD_PATH, a staging root;
#                         install signs with MOK_KEY= MOK_CERT= if given)
#   make deb              the Debian package balloon-dkms (the sources for
#                         DKMS and the modprobe.d blacklist) and its source
#                         package, in build/deb/ (scripts/deb-build.sh)
#   make demo             boot a QEMU guest with our modules and drive its
#                         balloon from the host (scripts/demo.sh); options
#                         in DEMO_ARGS, e.g. DEMO_ARGS="6.1 --mem 4096"
#   make bench            our virtio driver against the in-tree one in QEMU,
#                         plus VMware hypercalls per GiB (scripts/bench.sh;
#                         options in BENCH_ARGS, e.g. BENCH_ARGS="--reps 5")
#   make check            every test: builds and style on 6.1, 6.12, 7.3,
#                         the Debian package (lintian, install and purge in
#                         a throwaway root), KUnit (two variants, 6.12
#                         and 7.3), QEMU guests on the three kernels
#   make kunit            the KUnit suites only (kunit.py, UML)
#   make clean

KDIR ?= /lib/modules/$(shell uname -r)/build
PWD := $(shell pwd)

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(PWD) modules

# Distribution header packages carry no System.map, so kbuild skips depmod
# after modules_install: run it here.  The release is the one the modules'
# vermagic carries (Debian's 6.1 headers say 6.1.192 in kernel.release, but
# 6.1.0-56-amd64 in UTS_RELEASE, the name of the modules directory).
KRELEASE = $(shell sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' \
		$(KDIR)/include/generated/utsrelease.h 2>/dev/null)
MODULES := balloon_core balloon_vmw balloon_virtio
MODDIR = $(INSTALL_MOD_PATH)/lib/modules/$(KRELEASE)
INSTALLED_DIRS = $(MODDIR)/updates/core $(MODDIR)/updates/transports
MODPROBE_CONF := etc/modprobe.d/balloon.conf
MODPROBE_DIR = $(INSTALL_MOD_PATH)/etc/modprobe.d
DEPMOD = depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KRELEASE)

# Secure Boot: MOK_KEY and MOK_CERT (a Machine Owner Key and its DER
# certificate, e.g. DKMS's /var/lib/dkms/mok.key and mok.pub) sign the
# modules before they are installed.  Without them they install unsigned:
# kbuild's own signing wants the distribution's key and fails harmlessly.
SIG_HASH = $(or $(shell sed -n 's/^CONFIG_MODULE_SIG_HASH="\(.*\)"/\1/p' \
		$(KDIR)/.config 2>/dev/null),sha256)
# (balloon_vmw is built for x86 kernels only.)
BUILT = $(wildcard core/balloon_core.ko transports/balloon_vmw.ko \
	 transports/balloon_virtio.ko)

install: modules
	@test -n "$(KRELEASE)" || { echo "no kernel build tree at KDIR=$(KDIR)" >&2; exit 1; }
	$(if $(MOK_KEY),for m in $(BUILT); do \
		$(KDIR)/scripts/sign-file $(SIG_HASH) $(MOK_KEY) $(MOK_CERT) $$m || exit 1; \
	done)
	$(MAKE) -C $(KDIR) M=$(PWD) INSTALL_MOD_DIR=updates \
		modules_install
	install -D -m 0644 $(MODPROBE_CONF) $(MODPROBE_DIR)/$(notdir $(MODPROBE_CONF))
	$(DEPMOD)

# Only what install put there (updates/core/, updates/transports/): DKMS
# keeps its own copies in updates/dkms/ and removes them itself.
uninstall:
	@test -n "$(KRELEASE)" || { echo "no kernel build tree at KDIR=$(KDIR)" >&2; exit 1; }
	rm -f $(foreach d,$(INSTALLED_DIRS),$(foreach m,$(MODULES),$(d)/$(m).ko $(d)/$(m).ko.*))
	-rmdir $(INSTALLED_DIRS) 2>/dev/null
	rm -f $(MODPROBE_DIR)/$(notdir $(MODPROBE_CONF))
	$(DEPMOD)

clean:
	$(MAKE) -C $(KDIR) M=$(PWD) clean

check:
	scripts/check.sh

kunit:
	scripts/kunit.sh

deb:
	scripts/deb-build.sh

demo:
	@scripts/demo.sh $(DEMO_ARGS)

bench:
	@scripts/bench.sh $(BENCH_ARGS)

.PHONY: all modules install uninstall clean check kunit deb demo bench
