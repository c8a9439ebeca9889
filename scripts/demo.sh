#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# See the driver work (the README's first command; "make demo" runs it):
# install what is missing (scripts/deps.sh, needs root the first time),
# build our modules for a Debian kernel (6.12 by default, 6.1 or 7.3; amd64
# by default, or --arch arm64, cross-built and booted in
# qemu-system-aarch64, or --arch arm64-16k, 7.3 with 16 KiB pages), boot
# that kernel in QEMU with balloon_core and balloon_virtio, and move the
# balloon from the host over QMP (a 2 GiB guest: 1024 -> 1536 -> 2048 MiB),
# showing target, actual and the guest's MemAvailable as it happens; then
# our debugfs view and QEMU's guest statistics.  Exits 0 only when every
# step reached its target.
#
#   scripts/demo.sh [6.12|6.1|7.3] [--arch amd64|arm64|arm64-16k]
#                   [--mem MIB] [--steps MIB,MIB,...]
#                   [--timeout S] [--tolerance MIB] [--vmware]
#   scripts/demo.sh --help
#
# Options after the series go to tools/testing/qemu/demo.py.
set -euo pipefail

balloon_help_more() {
	echo
	python3 "$(dirname "$0")/../tools/testing/qemu/demo.py" --help
}
. "$(dirname "$0")/lib.sh"

demo="$BALLOON_REPO/tools/testing/qemu/demo.py"
series=
arch=amd64
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	6.* | 7.*) series=$1 ;;
	--series) series=${2:?--series needs 6.12, 6.1 or 7.3}; shift ;;
	--series=*) series=${1#--series=} ;;
	--arch) arch=${2:?--arch needs amd64, arm64 or arm64-16k}; shift ;;
	--arch=*) arch=${1#--arch=} ;;
	*) args+=("$1") ;;
	esac
	shift
done
# The rig names a kernel by series and flavour: 6.12-arm64, 7.3-arm64-16k
# (16 KiB pages: Debian has them from 7.x, so 7.3 is the default there).
case "$arch" in
amd64) series=${series:-6.12} ;;
arm64) series=${series:-6.12}-arm64 ;;
arm64-16k)
	series=${series:-7.3}
	[ "$series" = 7.3 ] || {
		echo "demo: --arch arm64-16k: 7.3 only (Debian's 16 KiB-page kernels begin with 7.x), not $series" >&2
		exit 2
	}
	series=7.3-arm64-16k
	;;
*)
	echo "demo: --arch: amd64, arm64 or arm64-16k, not $arch" >&2
	exit 2
	;;
esac

echo "checking dependencies (scripts/deps.sh)"
"$BALLOON_REPO/scripts/deps.sh"
kver=$(balloon_kernel_release "$series")
log="$BALLOON_CACHE/demo-build.log"
echo "building our modules for $kver (log: $log)"
# The build and the guest each want both CPUs: one heavy job at a time.
# demo.py takes the same lock again for the guest.
balloon_heavy_lock
balloon_make "$series" >"$log" 2>&1 || {
	tail -n 30 "$log"
	echo "demo: the build failed, see $log" >&2
	exit 1
}
exec 9>&-
exec python3 "$demo" --series "$series" \
	--modules "$BALLOON_REPO/build/modules/$kver" ${args[@]+"${args[@]}"}
