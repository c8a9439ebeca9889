#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the KUnit suites under kunit.py in a Debian kernel source tree:
# 6.12 (linux-source-6.12) by default, or 7.3 (trixie-backports'
# linux-source-7.3, fetched through the private apt list in the cache);
# on UML by default, or on arm64 with 64 KiB pages under
# qemu-system-aarch64 (--arch arm64-64k).
#
#   scripts/kunit.sh [--kernel 6.12|7.3] [--arch um|arm64-64k]
#                    [--json=FILE] [default|debug] [GLOB]
#                                       run one variant (default: default)
#                                       on one kernel (default: 6.12) and
#                                       architecture (default: um),
#                                       optionally only suites.cases matching
#                                       GLOB (kunit.py's filter_glob); with
#                                       --json, kunit.py also writes its
#                                       results to FILE as JSON
#   scripts/kunit.sh [--kernel 6.12|7.3] --unwire
#                                       undo the wiring in that source tree
#   scripts/kunit.sh --builddir [--kernel 6.12|7.3] [--arch um|arm64-64k]
#                    [default|debug]
#                                       print the variant's build directory
#   scripts/kunit.sh -h|--help          print this
#
# "make kunit" runs the default variant on 6.12 (UML).  The project is
# wired in without copying it: a symlink drivers/balloon -> this
# repository, plus one line each appended to drivers/Kconfig and
# drivers/Makefile.  Each kernel, architecture and variant keeps its own
# build directory in the cache ($BALLOON_CACHE, else
# $XDG_CACHE_HOME/balloon-drv, else ~/.cache/balloon-drv): kunit-default
# and kunit-debug for 6.12, kunit-7.3-default and kunit-7.3-debug for
# 7.3, kunit-arm64-64k-default (kunit-7.3-arm64-64k-default) for arm64,
# because changing the config of a build directory forces a near-full
# rebuild.  The 7.3 tree is an unconfigured copy of its own
# ($BALLOON_CACHE/linux-source-7.3), not the one prepared for module
# builds: kunit.py wants a clean tree.
# The "debug" variant adds KASAN, lockdep, atomic-sleep checks and fault
# injection (kunit/debug.kunitconfig); it is UML's only.  The balloon's
# migration option differs with the kernel's balloon API:
# BALLOON_COMPACTION before 7.0 (kunit/compaction.kunitconfig),
# BALLOON_MIGRATION with 7.0's include/linux/balloon.h
# (kunit/migration.kunitconfig).
# arm64-64k builds with aarch64-linux-gnu-gcc and boots the kernel in
# qemu-system-aarch64 (TCG, "-cpu max,pauth-impdef=on", kunit.py's own
# arm64 machine) with kunit/arm64-64k.kunitconfig in place of
# kunit/.kunitconfig: 64 KiB pages, the core and virtio suites; the
# VMware suite needs UML, where a model of the host replaces the x86
# backdoor.  Its first build takes several minutes.
set -euo pipefail

. "$(dirname "$0")/lib.sh"

kernel=6.12
arch=um
json=()
builddir_only=
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=${2:?--kernel needs 6.12 or 7.3}; shift ;;
	--kernel=*) kernel=${1#--kernel=} ;;
	--arch) arch=${2:?--arch needs um or arm64-64k}; shift ;;
	--arch=*) arch=${1#--arch=} ;;
	--json=*) json=("--json=$(realpath -m "${1#--json=}")") ;;
	--builddir) builddir_only=1 ;;
	*) break ;;
	esac
	shift
done
case "$kernel" in
6.12 | 7.3) ;;
*) echo "$0: --kernel: 6.12 or 7.3, not $kernel" >&2; exit 2 ;;
esac
case "$arch" in
um | arm64-64k) ;;
*) echo "$0: --arch: um or arm64-64k, not $arch" >&2; exit 2 ;;
esac

# The build directory of a variant on this kernel.
builddir() {
	local name=kunit

	[ "$kernel" = 6.12 ] || name+="-$kernel"
	[ "$arch" = um ] || name+="-$arch"
	echo "$BALLOON_CACHE/$name-$1"
}
if [ -n "$builddir_only" ]; then
	builddir "${1:-default}"
	exit 0
fi

src=$(balloon_kernel_source "$kernel")
kconfig_line='source "drivers/balloon/Kconfig"'
make_line='obj-y += balloon/'

# kunit.py boots UML with mem=1G and QEMU with -m 1024, hard-coded; the
# core suites balloon over 4 GiB (BALLOON_KUNIT_MANY_UNITS in
# kunit/core_fake.h), with the floor left over, so the guest needs more.
# On arm64 with 64 KiB pages free page hinting wants more still: up to
# twelve blocks of the largest order at once, 512 MiB each.  UML backs
# its memory with a sparse file, and QEMU with anonymous memory: only
# what the tests touch is ever used.  QEMU takes the last -m it is
# given, ours after kunit.py's.
kunit_py_mem="$src/tools/testing/kunit/kunit_kernel.py"
uml_mem=6G
qemu_mem=16G

unwire() {
	sed -i "s/'mem=[0-9]*G'/'mem=1G'/" "$kunit_py_mem"
	rm -f "$src/drivers/balloon"
	sed -i "\\|^${kconfig_line}\$|d" "$src/drivers/Kconfig"
	sed -i "\\|^${make_line}\$|d" "$src/drivers/Makefile"
}

wire() {
	# (an earlier version of this script may have set another size)
	sed -i "s/'mem=[0-9]*G'/'mem=$uml_mem'/" "$kunit_py_mem"
	grep -qF "'mem=$uml_mem'" "$kunit_py_mem" || {
		echo "cannot set UML memory in $kunit_py_mem" >&2
		exit 1
	}
	ln -sfn "$BALLOON_REPO" "$src/drivers/balloon"
	grep -qxF "$kconfig_line" "$src/drivers/Kconfig" ||
		echo "$kconfig_line" >>"$src/drivers/Kconfig"
	grep -qxF "$make_line" "$src/drivers/Makefile" ||
		echo "$make_line" >>"$src/drivers/Makefile"
}

# An O= kernel build searches the source tree through VPATH and would
# take objects left by an in-place "make" for its own: remove them.
clean_inplace_objects() {
	local stale

	stale=$(find "$BALLOON_REPO" -path "$BALLOON_REPO/build" -prune -o \
		-path "$BALLOON_REPO/.git" -prune -o -type f \
		\( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o \
		-name '*.mod.c' -o -name '.*.cmd' -o -name 'modules.order' -o \
		-name 'Module.symvers' \) -print)
	if [ -n "$stale" ]; then
		echo "removing in-place build products (they would shadow the KUnit build)" >&2
		echo "$stale" | xargs rm -f
	fi
}

# make rebuilds an object only when a source is newer than it, which is
# not enough when the wired repository changes (another checkout, a fresh
# clone): an object built from one tree would be taken for another tree's
# older file.  Our objects are removed whenever our sources differ from
# those of the last build in the directory.
drop_stale_objects() {
	local build=$1 sum

	sum=$(cd "$BALLOON_REPO" && find Kbuild Kconfig include core \
		transports kunit -type f -print0 | sort -z |
		xargs -0 sha1sum | sha1sum)
	if [ "$sum" != "$(cat "$build/.balloon-sources" 2>/dev/null)" ]; then
		rm -rf "$build/drivers/balloon"
		mkdir -p "$build"
		echo "$sum" >"$build/.balloon-sources"
	fi
}

# The kernel's balloon migration option, by the API its headers have.
if [ -f "$src/include/linux/balloon.h" ]; then
	migration="$BALLOON_REPO/kunit/migration.kunitconfig"
else
	migration="$BALLOON_REPO/kunit/compaction.kunitconfig"
fi

# What the architecture adds to kunit.py's command line, and the
# kunitconfig that stands for kunit/.kunitconfig there.
if [ "$arch" = um ]; then
	base="$BALLOON_REPO/kunit/.kunitconfig"
	arch_args=()
else
	base="$BALLOON_REPO/kunit/$arch.kunitconfig"
	arch_args=(--arch=arm64 --cross_compile=aarch64-linux-gnu-
		   --qemu_args="-m $qemu_mem")
fi

variant=${1:-default}
case "$variant" in
--unwire)
	unwire
	exit 0
	;;
default)
	configs=(--kunitconfig="$base" --kunitconfig="$migration")
	;;
debug)
	if [ "$arch" != um ]; then
		echo "$0: the debug variant runs on UML only" >&2
		exit 2
	fi
	configs=(--kunitconfig="$base" --kunitconfig="$migration"
		 --kunitconfig="$BALLOON_REPO/kunit/debug.kunitconfig")
	;;
*)
	echo "usage: $0 [--kernel 6.12|7.3] [--arch um|arm64-64k] [--json=FILE] [default|debug] [GLOB] | --unwire | --help" >&2
	exit 2
	;;
esac

build=$(builddir "$variant")
balloon_heavy_lock
clean_inplace_objects
drop_stale_objects "$build"
wire
cd "$src"
exec python3 tools/testing/kunit/kunit.py run "${configs[@]}" \
	"${arch_args[@]}" --build_dir="$build" --jobs="$(nproc)" \
	--timeout=120 "${json[@]}" ${2:+"$2"}
