#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A sparse that can check every kernel the tests build for, built once into
# the cache; prints its path on the last line.  Debian 12's sparse (0.6.4)
# does not know __typeof_unqual__, which kbuild asks of a checker since
# Linux 6.14 (scripts/checker-valid.sh): on 7.3 "make C=2" then says "C=2
# specified, but sparse is not available or not up to date" and checks
# nothing.  This builds Debian unstable's sparse (0.6.5~rc1 or newer), its
# source package fetched through a private deb-src list in the cache (the
# system's sources are never touched) and built with Debian's patches and
# the machine's gcc (Debian's patch names gcc-16; CC=gcc overrides it): a
# program that needs only libc, about 15 s to build.  The cache keeps it
# under the source's version.
#
#   scripts/sparse.sh
#   scripts/sparse.sh -h|--help
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dsc=$(python3 "$BALLOON_REPO/tools/testing/qemu/balloonrig/backports.py" \
	source "$BALLOON_CACHE/apt-src-sid" sid sparse \
	"$BALLOON_CACHE/sparse-src")
out=$BALLOON_CACHE/$(basename "$dsc" .dsc)
bin=$out/sparse

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

"$BALLOON_REPO/scripts/deps.sh" dpkg-dev >&2
balloon_heavy_lock
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

echo "sparse: building $(basename "$dsc" .dsc) into $out" >&2
work=$out.tmp
rm -rf "$work"
mkdir -p "$work"
dpkg-source --no-check -x "$dsc" "$work/src" >"$work/unpack.log"
make -C "$work/src" -j"$(nproc)" CC=gcc HAVE_LLVM=no HAVE_GTK=no \
	HAVE_SQLITE=no sparse >"$work/build.log" 2>&1 || {
	tail -n 20 "$work/build.log" >&2
	exit 1
}
# What kbuild will ask of it (scripts/checker-valid.sh of Linux 6.14+).
cat >"$work/unqual.c" <<'EOF'
static inline int u(const int *q)
{
	__typeof_unqual__(*q) v = *q;
	return v;
}
EOF
if "$work/src/sparse" "$work/unqual.c" 2>&1 | grep -q error; then
	echo "sparse: $(basename "$dsc" .dsc) does not know __typeof_unqual__" >&2
	exit 1
fi
cp "$work/src/sparse" "$work/sparse"
rm -rf "$work/src"
for old in "$BALLOON_CACHE"/sparse_*; do
	[ "$old" = "$work" ] || rm -rf "$old"
done
mv "$work" "$out"
echo "$bin"
