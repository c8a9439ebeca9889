#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build, once, Debian 12's QEMU 7.2 with our VMware balloon host
# (tools/testing/qemu/vmw-balloon/: a "vmware-balloon" ISA device on the
# backdoor port 0x5670), and print the path of its qemu-system-x86_64 on
# the last line.  The source package comes through a private deb-src list
# in the cache ($BALLOON_CACHE/apt-src/; the system's apt sources are never
# touched), is unpacked with dpkg-source (Debian's patches applied), gets
# our patch, and is built for x86_64-softmmu only, with TCG and nothing
# else, under the machine-wide heavy lock (about 3 minutes on two cores).
# The binary is kept in $BALLOON_CACHE/qemu-vmw-<hash>/, the hash being
# that of the patch and of this script: a second run prints it at once.
# Installs what the build needs with apt-get the first time (root).
# Run the binary with -L /usr/share/seabios -L /usr/share/qemu -nic none.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

patch_dir=$BALLOON_REPO/tools/testing/qemu/vmw-balloon
patches=("$patch_dir"/*.patch)
hash=$(cat "${patches[@]}" "$0" | sha256sum | cut -c1-16)
out=$BALLOON_CACHE/qemu-vmw-$hash
bin=$out/qemu-system-x86_64

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

"$BALLOON_REPO/scripts/deps.sh" meson ninja-build libglib2.0-dev \
	libpixman-1-dev libfdt-dev dpkg-dev patch >&2

balloon_heavy_lock
# Another run may have built it while we waited for the lock.
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

dsc=$(python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/backports.py" \
	source "$BALLOON_CACHE/apt-src" bookworm qemu \
	"$BALLOON_CACHE/qemu-src")
echo "vmw-qemu: building $(basename "$dsc" .dsc) with the VMware balloon into $out" >&2

work=$out.tmp
rm -rf "$work"
mkdir -p "$work"
# apt-get checked the files against the signed archive; dpkg-source has
# no Debian keyring to check the .dsc with.
dpkg-source --no-check -x "$dsc" "$work/src" >"$work/unpack.log"
for p in "${patches[@]}"; do
	patch -d "$work/src" -p1 --quiet <"$p"
done
# The dfsg tarball has no edk2 firmware, which meson.build unpacks whenever
# bzip2 is installed: configure fails.  We need none of it.
sed -i 's/^\( *unpack_edk2_blobs = \)bzip2\.found()$/\1false/' \
	"$work/src/meson.build"
grep -q '^ *unpack_edk2_blobs = false$' "$work/src/meson.build"

mkdir -p "$work/src/build"
(
	cd "$work/src/build"
	../configure --target-list=x86_64-softmmu --without-default-features \
		--disable-docs --disable-tools --disable-user --enable-tcg \
		--disable-werror --disable-install-blobs >"$work/configure.log" 2>&1 || {
		tail -20 "$work/configure.log" >&2
		exit 1
	}
	start=$SECONDS
	ninja -j2 >"$work/build.log" 2>&1 || {
		grep -B2 -A10 -m5 'error' "$work/build.log" >&2
		exit 1
	}
	echo "vmw-qemu: built in $((SECONDS - start)) s" >&2
)
cp "$work/src/build/qemu-system-x86_64" "$work/qemu-system-x86_64"
# dpkg-source left a link to the orig tarball beside the tree.
rm -rf "$work/src" "$work"/qemu_*
# Builds of an earlier patch are of no further use.
for old in "$BALLOON_CACHE"/qemu-vmw-*; do
	[ "$old" = "$out.tmp" ] || rm -rf "$old"
done
mv "$work" "$out"
echo "$bin"
