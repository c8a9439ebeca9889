#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark (make bench; not part of the test run): our balloon_virtio
# against the in-tree virtio_balloon on the same QEMU, kernel and guest
# size, alternating, several runs each (tools/testing/qemu/bench.py), then
# the same for our balloon_vmw against the in-tree vmw_balloon in VMware
# guests on our QEMU device (bench.py --vmware; scripts/vmw-qemu.sh builds
# that QEMU the first time), with the hypercalls each inflation took.
# Prints a table with
# the ratios ours / in-tree and ours / the host's own cost of the same
# work, and writes a PNG plot of the balloon's size over time.  It
# reports, it does not judge: it exits 0 when everything was measured,
# whatever the figures, and non-zero only when something could not be.
# Run it on an otherwise idle machine: a build beside it halves the
# guest's speed.
#
#   scripts/bench.sh [SERIES] [bench.py options, e.g. --reps 5]
#   scripts/bench.sh -h|--help
#
# The series comes first: 6.12 (the default), 6.1 or 7.3, or on arm64
# 6.12-arm64, 6.1-arm64, 7.3-arm64 or 7.3-arm64-16k (qemu-system-aarch64;
# the VMware half is x86's alone, and is left out there).  Every other
# argument goes to bench.py, which gets --series and --modules from this
# script.  --help prints this and bench.py's options, and installs or
# builds nothing.
set -euo pipefail

balloon_help_more() {
	echo
	python3 "$(dirname "$0")/../tools/testing/qemu/bench.py" --help
}
. "$(dirname "$0")/lib.sh"

series=6.12
case "${1:-}" in
6.12 | 6.1 | 7.3 | 6.12-arm64 | 6.1-arm64 | 7.3-arm64 | 7.3-arm64-16k)
	series=$1
	shift
	;;
esac

"$BALLOON_REPO/scripts/deps.sh" gnuplot-nox
kver=$(balloon_kernel_release "$series")
echo "building our modules for $kver"
balloon_make "$series" >"$BALLOON_CACHE/bench-build.log" 2>&1 || {
	cat "$BALLOON_CACHE/bench-build.log"
	exit 1
}

# The VMware half runs even when the virtio half could not measure
# everything; the exit status is the worse of the two.
rc=0
python3 "$BALLOON_REPO/tools/testing/qemu/bench.py" --series "$series" \
	--modules "$BALLOON_REPO/build/modules/$kver" "$@" || rc=$?

case "$series" in
*-arm64*)
	echo
	echo "VMware: not on $series (VMware's backdoor is an x86 I/O port)"
	exit $rc
	;;
esac
echo
echo "VMware: our balloon_vmw against the in-tree vmw_balloon, on our QEMU"
echo "device (scripts/vmw-qemu.sh builds that QEMU the first time):"
vmw_rc=0
python3 "$BALLOON_REPO/tools/testing/qemu/bench.py" --vmware \
	--series "$series" --modules "$BALLOON_REPO/build/modules/$kver" \
	"$@" || vmw_rc=$?
exit $((vmw_rc > rc ? vmw_rc : rc))
