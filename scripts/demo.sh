#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# See the driver work: build our modules for a Debian kernel (6.12 by
# default, or 6.1), boot that kernel in QEMU with them, and run the QEMU
# tests of our virtio transport verbosely: the balloon moved from the host
# over QMP (2 GiB guest -> 1 GiB -> 2 GiB, then an unload with a full
# balloon), compaction moving ballooned pages, and deflate-on-OOM, printing
# the balloon's size as it moves.  Needs root for the first run (apt-get).
#
#   scripts/demo.sh [6.12|6.1]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

series=${1:-6.12}
"$BALLOON_REPO/scripts/deps.sh"
kver=$(balloon_kernel_release "$series")
echo "building our modules for $kver"
balloon_make "$series" >"$BALLOON_CACHE/demo-build.log" 2>&1 || {
	cat "$BALLOON_CACHE/demo-build.log"
	exit 1
}
exec python3 "$BALLOON_REPO/tools/testing/qemu/run_tests.py" \
	--series "$series" --modules "$BALLOON_REPO/build/modules/$kver" \
	-k ours_virtio -v
