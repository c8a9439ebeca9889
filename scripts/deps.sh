#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install, from Debian's archive, everything the build, the checks and the
# test rigs need: compilers and kernel build tools, sparse, dkms, the 6.12 kernel
# source (checkpatch, kernel-doc, kunit.py), the newest 6.12 and 6.1
# kernel headers, QEMU and busybox for the guests (and for arm64, QEMU's
# aarch64 system emulator and Debian 12's aarch64 cross compiler, for the
# guests and KUnit; arm64 kernels, their build trees and busybox come
# through private apt lists in the cache, never a foreign architecture in
# dpkg), and what builds, checks
# and installs the Debian package (debhelper, dh-dkms, lintian,
# debootstrap for the throwaway root).  The 7.3 kernel is not installed at
# all: its packages are downloaded into the cache through a private apt
# list and unpacked with dpkg-deb (tools/testing/qemu/balloonrig/
# backports.py); its module tree is prepared with the compilers and tools
# here (bc, bison, flex, libelf-dev, libssl-dev; xz-utils for its source
# tarball).  Idempotent: does nothing when everything is there.  Needs
# root (apt-get).  Arguments name further packages a command needs on top
# (make bench: gnuplot-nox).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

packages=(
	gcc make perl python3 bc bison flex libelf-dev libssl-dev
	cpio xz-utils zstd kmod sparse linux-source-6.12 dkms
	qemu-system-x86 busybox-static python3-docutils
	qemu-system-arm gcc-aarch64-linux-gnu
	build-essential dpkg-dev debhelper dh-dkms lintian debootstrap
	"$@"
)

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null |
		grep -q '^install ok installed$'
}

updated=
apt_update() {
	[ -n "$updated" ] && return 0
	echo "deps: apt-get update" >&2
	apt-get update -qq
	updated=1
}

apt_install() {
	local missing=() p

	for p in "$@"; do
		installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || {
		echo "deps: need root to install: ${missing[*]}" >&2
		return 1
	}
	apt_update
	echo "deps: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

# A package list too old to know the current kernels gets refreshed first.
if ! apt-cache show linux-source-6.12 >/dev/null 2>&1; then
	apt_update
fi
apt_install "${packages[@]}"

headers=()
for series in 6.12 6.1; do
	headers+=("linux-headers-$(balloon_kernel_release "$series")")
done
apt_install "${headers[@]}"
