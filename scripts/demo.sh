#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# See the driver work (the README's first command; "make demo" runs it):
# install what is missing (scripts/deps.sh, needs root the first time),
# build our modules for a Debian kernel (6.12 by default, 6.1 or 7.3), boot
# that kernel in QEMU with balloon_core and balloon_virtio, and move the
# balloon from the host over QMP (a 2 GiB guest: 1024 -> 1536 -> 2048 MiB),
# showing target, actual and the guest's MemAvailable as it happens; then
# our debugfs view and QEMU's guest statistics.  Exits 0 only when every
# step reached its target.
#
#   scripts/demo.sh [6.12|6.1|7.3] [--mem MIB] [--steps MIB,MIB,...]
#                   [--timeout S] [--tolerance MIB]
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
series=6.12
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	6.* | 7.*) series=$1 ;;
	--series) series=${2:?--series needs 6.12, 6.1 or 7.3}; shift ;;
	--series=*) series=${1#--series=} ;;
	*) args+=("$1") ;;
	esac
	shift
done

echo "checking dependencies (scripts/deps.sh)"
"$BALLOON_REPO/scripts/deps.sh"
kver=$(balloon_kernel_release "$series")
log="$BALLOON_CACHE/demo-build.log"
echo "building balloon_core, balloon_vmw, balloon_virtio for $kver (log: $log)"
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
