#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the KUnit suites under kunit.py (UML) in Debian's 6.12 source tree.
#
#   scripts/kunit.sh [--json=FILE] [default|debug] [GLOB]
#                                       run one variant (default: default),
#                                       optionally only suites.cases matching
#                                       GLOB (kunit.py's filter_glob); with
#                                       --json, kunit.py also writes its
#                                       results to FILE as JSON
#   scripts/kunit.sh --unwire           undo the wiring in the source tree
#   scripts/kunit.sh -h|--help          print this
#
# "make kunit" runs the default variant.  The project is wired in without
# copying it: a symlink drivers/balloon -> this repository, plus one line
# each appended to drivers/Kconfig and drivers/Makefile.  Each variant
# keeps its own build directory in the cache ($BALLOON_CACHE, else
# $XDG_CACHE_HOME/balloon-drv, else ~/.cache/balloon-drv), because
# changing the config of a build directory forces a near-full rebuild.
# The "debug" variant adds KASAN, lockdep, atomic-sleep checks and fault
# injection (kunit/debug.kunitconfig).
set -euo pipefail

. "$(dirname "$0")/lib.sh"

src=$(balloon_kernel_source)
kconfig_line='source "drivers/balloon/Kconfig"'
make_line='obj-y += balloon/'

# kunit.py boots UML with mem=1G, hard-coded; the core suites balloon
# over a million 4 KiB pages (kunit/core_fake.h), with the floor left
# over, so the guest needs more.  UML backs its memory with a sparse file:
# only what the tests touch is ever used.
kunit_py_mem="$src/tools/testing/kunit/kunit_kernel.py"
uml_mem=6G

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

json=()
case "${1:-}" in
--json=*)
	json=("--json=$(realpath -m "${1#--json=}")")
	shift
	;;
esac

variant=${1:-default}
case "$variant" in
--unwire)
	unwire
	exit 0
	;;
default)
	configs=(--kunitconfig="$BALLOON_REPO/kunit/.kunitconfig")
	;;
debug)
	configs=(--kunitconfig="$BALLOON_REPO/kunit/.kunitconfig"
		 --kunitconfig="$BALLOON_REPO/kunit/debug.kunitconfig")
	;;
*)
	echo "usage: $0 [--json=FILE] [default|debug] [GLOB] | --unwire | --help" >&2
	exit 2
	;;
esac

balloon_heavy_lock
clean_inplace_objects
drop_stale_objects "$BALLOON_CACHE/kunit-$variant"
wire
cd "$src"
exec python3 tools/testing/kunit/kunit.py run "${configs[@]}" \
	--build_dir="$BALLOON_CACHE/kunit-$variant" --jobs="$(nproc)" \
	--timeout=120 "${json[@]}" ${2:+"$2"}
