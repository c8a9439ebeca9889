# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Shared by the scripts in this directory: their --help, where caches live
# and how to find the kernel source tree.  Source it; do not run it.

# -h or --help among the calling script's arguments: print its header
# comment (from its fourth line to the first line of code), then what its
# balloon_help_more function adds if it has one, and exit before anything
# is installed, built or created.
for arg; do
	case "$arg" in
	-h | --help)
		sed -n '4,/^[^#]/s/^# \{0,1\}//p' "$0"
		if declare -F balloon_help_more >/dev/null; then
			balloon_help_more
		fi
		exit 0
		;;
	esac
done

BALLOON_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BALLOON_CACHE=${BALLOON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/balloon-drv}
export BALLOON_CACHE
mkdir -p "$BALLOON_CACHE"

# Kernel builds and QEMU guests each want both of a small machine's CPUs:
# a run that does either takes this lock first, so that two of them never
# overlap (and a timing printed by one is not skewed by the other).  The
# lock lives on file descriptor 9 until the calling shell exits.  A shell
# started by one that holds it inherits descriptor 9 and takes the lock
# again on it at once (the Python rig does the same, balloonrig/lock.py),
# where opening the file anew would wait for its own parent.
balloon_heavy_lock() {
	if ! [ /proc/self/fd/9 -ef "$BALLOON_CACHE/heavy.lock" ]; then
		exec 9>>"$BALLOON_CACHE/heavy.lock"
	fi
	if ! flock -n 9; then
		echo "waiting for another kernel build or QEMU run to finish" >&2
		flock 9
	fi
}

# The kernel series the tests build for and boot: Debian 12's own 6.12
# and 6.1, and the newest 7.3 of trixie-backports (a private apt list in
# the cache, balloonrig/backports.py), on amd64; and the same three on
# arm64 with 7.3's 16 KiB-page flavour too (arm64 packages come through
# private lists of that architecture alone; modules are cross-built).
# shellcheck disable=SC2034  # for the scripts that source this file
BALLOON_SERIES=(6.12 6.1 7.3 6.12-arm64 6.1-arm64 7.3-arm64 7.3-arm64-16k)

# An unconfigured source tree of a series (6.12 by default, or 7.3),
# unpacked once into the cache: 6.12 from the installed linux-source-6.12
# (checkpatch, kernel-doc, kunit.py), 7.3 from trixie-backports'
# linux-source-7.3 (kunit.py).  Prints its path.
balloon_kernel_source() {
	local series=${1:-6.12}
	local src="$BALLOON_CACHE/linux-source-6.12"
	local tarball=/usr/src/linux-source-6.12.tar.xz

	if [ "$series" != 6.12 ]; then
		python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/kernels.py" \
			source "$series"
		return
	fi

	if [ ! -f "$src/Makefile" ]; then
		[ -f "$tarball" ] || {
			echo "missing $tarball: run scripts/deps.sh" >&2
			return 1
		}
		echo "unpacking $tarball into $BALLOON_CACHE" >&2
		rm -rf "$src.tmp" && mkdir -p "$src.tmp"
		tar -xf "$tarball" -C "$src.tmp" --strip-components=1
		mv "$src.tmp" "$src"
	fi
	echo "$src"
}

# The value of NAME="..." in dkms.conf (PACKAGE_NAME, PACKAGE_VERSION,
# BUILD_EXCLUSIVE_KERNEL...): the project's one version, and the DKMS
# package's name and the kernels it takes.
balloon_conf_value() {
	sed -n "s/^$1=\"\\(.*\\)\"\$/\\1/p" "$BALLOON_REPO/dkms.conf"
}

# Kernel release ("6.12.117+deb12-amd64") of the newest Debian kernel of a
# series (6.12, 6.1 or 7.3) in the archive.
balloon_kernel_release() {
	python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/kernels.py" \
		resolve "$1" --headers
}

# The tree to build modules for a series against (KDIR): the installed
# /usr/src/linux-headers-<kver> for amd64 6.x; for 7.3, whose Debian
# headers do not run on Debian 12, and for arm64, linux-source-X.Y
# prepared with Debian's .config and Module.symvers in
# $BALLOON_CACHE/kbuild-<kver> (made the first time, under the heavy
# lock).  Prints its path.
balloon_kdir() {
	python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/kernels.py" \
		kdir "$1"
}

# The Debian architecture of a series: amd64 or arm64.
balloon_arch() {
	python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/kernels.py" \
		arch "$1"
}

# make's arguments that build for a series' architecture: nothing for
# amd64, "ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" for arm64.
balloon_make_args() {
	python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/kernels.py" \
		make-args "$1"
}

# Make DIR (emptied first) a tree of symlinks to the sources, for a build
# that leaves the repository itself clean (an in-tree object would shadow
# the KUnit build) and keeps each kernel's objects apart.
balloon_tree() {
	local tree=$1 f

	rm -rf "$tree" && mkdir -p "$tree" || return
	for f in Kbuild Makefile Kconfig dkms.conf etc include core \
		transports kunit; do
		cp -rs "$BALLOON_REPO/$f" "$tree/$f" || return
	done
}

# Build the modules for a series in build/<kver>/ (balloon_tree), against
# balloon_kdir, for its architecture (balloon_make_args).  Extra arguments
# go to make (W=1, C=2...).  The modules are then copied to
# build/modules/<kver>/.  Prints nothing but make's output.
balloon_make() {
	local series=$1 kver kdir tree cross
	shift

	kver=$(balloon_kernel_release "$series") || return
	kdir=$(balloon_kdir "$series") || return
	read -r -a cross <<<"$(balloon_make_args "$series")"
	tree="$BALLOON_REPO/build/$kver"
	balloon_tree "$tree" || return
	# A failed build leaves no modules from an earlier one behind.
	rm -rf "$BALLOON_REPO/build/modules/$kver"
	mkdir -p "$BALLOON_REPO/build/modules/$kver"
	make -C "$tree" KDIR="$kdir" "${cross[@]}" "$@" || return
	find "$tree" -name '*.ko' -exec cp {} "$BALLOON_REPO/build/modules/$kver/" \;
}
