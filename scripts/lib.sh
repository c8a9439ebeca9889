# SPDX-License-Identifier: GPL-2.0
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
# lock lives on file descriptor 9 until the calling shell exits.
balloon_heavy_lock() {
	exec 9>>"$BALLOON_CACHE/heavy.lock"
	if ! flock -n 9; then
		echo "waiting for another kernel build or QEMU run to finish" >&2
		flock 9
	fi
}

# The Linux 6.12 source tree from Debian's linux-source-6.12, unpacked
# once into the cache.  Prints its path.
balloon_kernel_source() {
	local src="$BALLOON_CACHE/linux-source-6.12"
	local tarball=/usr/src/linux-source-6.12.tar.xz

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
# series (6.12 or 6.1) in the archive.
balloon_kernel_release() {
	python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/kernels.py" \
		resolve "$1" --headers
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

# Build the modules for a series in build/<kver>/ (balloon_tree).  Extra
# arguments go to make (W=1, C=2...).  The modules are then copied to
# build/modules/<kver>/.  Prints nothing but make's output.
balloon_make() {
	local series=$1 kver tree
	shift

	kver=$(balloon_kernel_release "$series") || return
	tree="$BALLOON_REPO/build/$kver"
	balloon_tree "$tree" || return
	mkdir -p "$BALLOON_REPO/build/modules/$kver"
	make -C "$tree" KDIR="/usr/src/linux-headers-$kver" "$@" || return
	find "$tree" -name '*.ko' -exec cp {} "$BALLOON_REPO/build/modules/$kver/" \;
}
