# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of balloon_core, balloon_vmw and balloon_virtio.
#
#   make                  build against the running kernel (or KDIR=...)
#   make install          install into /lib/modules/<kver>/updates, depmod
#   make check            every test: builds and style on 6.1 and 6.12,
#                         KUnit (two variants), QEMU guests on both kernels
#   make kunit            the KUnit suites only (kunit.py, UML)
#   make clean

KDIR ?= /lib/modules/$(shell uname -r)/build
PWD := $(shell pwd)

# Out of a kernel tree nobody runs Kconfig: choose the modules here.
BALLOON_CONFIG := CONFIG_BALLOON_CORE=m CONFIG_BALLOON_VMW=m \
		  CONFIG_BALLOON_VIRTIO=m

all: modules

modules:
	$(MAKE) -C $(KDIR) M=$(PWD) $(BALLOON_CONFIG) modules

# Distribution header packages carry no System.map, so kbuild skips depmod
# after modules_install: run it here.
KRELEASE = $(shell cat $(KDIR)/include/config/kernel.release)

install: modules
	$(MAKE) -C $(KDIR) M=$(PWD) $(BALLOON_CONFIG) INSTALL_MOD_DIR=updates \
		modules_install
	depmod $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KRELEASE)

clean:
	$(MAKE) -C $(KDIR) M=$(PWD) $(BALLOON_CONFIG) clean

check:
	scripts/check.sh

kunit:
	scripts/kunit.sh

.PHONY: all modules install clean check kunit
