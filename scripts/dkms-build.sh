#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the DKMS package with the real dkms for Debian's newest 6.12 and
# 6.1 kernels (or the series given: 6.12, 6.1, 7.3, 6.12-arm64, 6.1-arm64,
# 7.3-arm64, 7.3-arm64-16k), against their installed headers, or the tree
# prepared from linux-source-X.Y in the cache for 7.3 and arm64
# (scripts/lib.sh's balloon_kdir; arm64 cross-built with dkms's -a
# aarch64 and make's ARCH and CROSS_COMPILE), without changing this
# machine: a copy of the sources goes into a private source tree, dkms
# gets a private DKMS tree and a throwaway signing key, and only "dkms
# add" and "dkms build" run (never install, never load).  Building a
# copy also keeps kbuild's objects out of the repository.
#
# Checks that each build produced the modules dkms.conf names for that
# kernel (balloon_vmw for x86 kernels only), that their MODULE_VERSION is
# dkms.conf's PACKAGE_VERSION and their vermagic the target kernel, that
# dkms stripped and signed them, that BUILD_EXCLUSIVE_KERNEL accepts the kernels being
# built (and 6.1 to 6.12) but nothing older than 6.1, and that
# BUILD_EXCLUSIVE_ARCH takes x86 and aarch64 and no other.  One line
# per kernel; exits non-zero on any failure, printing dkms's make.log.
#
#   scripts/dkms-build.sh [SERIES]...
#   scripts/dkms-build.sh -h|--help
set -euo pipefail

. "$(dirname "$0")/lib.sh"

command -v dkms >/dev/null || { echo "dkms: not installed (scripts/deps.sh)" >&2; exit 1; }
[ $# -gt 0 ] || set -- 6.12 6.1

conf="$BALLOON_REPO/dkms.conf"
conf_value() {
	sed -n "s/^$1=\"\\(.*\\)\"\$/\\1/p" "$conf"
}
name=$(conf_value PACKAGE_NAME)
version=$(conf_value PACKAGE_VERSION)
if [ -z "$name" ] || [ -z "$version" ]; then
	echo "dkms: cannot read PACKAGE_NAME, PACKAGE_VERSION from $conf" >&2
	exit 1
fi

# The modules dkms.conf names for a kernel tree and architecture, as dkms
# reads the file (sourced, with $kernel_source_dir, $kernel_config and
# $arch set, and without this script's set -u: dkms runs it without).
conf_modules() {
	# shellcheck disable=SC1090,SC2034
	(
		set +eu
		kernel_source_dir=$1
		kernel_config=$1/.config
		arch=$2
		. "$conf"
		echo "${BUILT_MODULE_NAME[*]}"
	)
}

# Stop unless dkms.conf's regex NAME matches VALUE, when WANT is yes, or
# does not, when it is no.
expect_match() {
	local name=$1 value=$2 want=$3 regex got=no

	regex=$(conf_value "$name")
	[[ $value =~ $regex ]] && got=yes
	[ "$got" = "$want" ] || {
		echo "dkms: $name \"$regex\" matches $value: $got, expected $want" >&2
		exit 1
	}
}

for arch in x86_64 aarch64 i686 ppc64le s390x riscv64 armv7l; do
	case "$arch" in
	x86_64|aarch64|i686) expect_match BUILD_EXCLUSIVE_ARCH "$arch" yes ;;
	*) expect_match BUILD_EXCLUSIVE_ARCH "$arch" no ;;
	esac
done

# dkms.conf must take every kernel the Kbuild builds for: here, the ones
# being built and 6.1 to 6.12; and refuse what is older than 6.1, as the
# Kbuild does.  (Where a newer kernel is refused is dkms.conf's choice.)
accept=(6.1.0-56-amd64 6.1 6.5.0-1-amd64 6.10.3 6.12.117+deb12-amd64)
for series in "$@"; do
	accept+=("$(balloon_kernel_release "$series")")
done
for rel in "${accept[@]}" 5.10.0-30-amd64 6.0.12 5.19.1; do
	case "$rel" in
	5.*|6.0*) expect_match BUILD_EXCLUSIVE_KERNEL "$rel" no ;;
	*) expect_match BUILD_EXCLUSIVE_KERNEL "$rel" yes ;;
	esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/balloon-dkms.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/src/$name-$version"
mkdir -p "$src" "$work/tree" "$work/tmp"
# Tracked and new files, not build products nor other ignored files.
(cd "$BALLOON_REPO" && git ls-files -co --exclude-standard -z -- \
	Kbuild Makefile Kconfig dkms.conf LICENSE etc include core transports kunit |
	xargs -0 cp --parents -t "$src")

# Signing: dkms would create /var/lib/dkms/mok.key; give it a key here.
export mok_signing_key="$work/mok.key" mok_certificate="$work/mok.pub"
export TMPDIR="$work/tmp"
dkms_args=(--dkmstree "$work/tree" --sourcetree "$work/src")
dkms add "${dkms_args[@]}" -m "$name" -v "$version" >"$work/add.log" 2>&1 || {
	cat "$work/add.log"
	exit 1
}

status=0
for series in "$@"; do
	kver=$(balloon_kernel_release "$series")
	kdir=$(balloon_kdir "$series")
	# dkms looks for sign-file in Debian's kbuild package or under
	# /lib/modules/<kver>/build, which a prepared tree is not.
	export sign_file="$kdir/scripts/sign-file"
	log="$work/build-$kver.log"
	# A cross build: dkms's architecture (uname -m's name), and make's
	# ARCH and CROSS_COMPILE through the environment, where kbuild reads
	# them (dkms.conf's MAKE line stays the one users run).
	read -r -a cross <<<"$(balloon_make_args "$series")"
	debarch=$(balloon_arch "$series")
	arch=$(uname -m)
	[ "$debarch" = arm64 ] && arch=aarch64
	mapfile -t modules < <(conf_modules "$kdir" "$arch" | tr ' ' '\n')
	case "$arch" in
	x86_64) want="balloon_core balloon_virtio balloon_vmw" ;;
	*) want="balloon_core balloon_virtio" ;;
	esac
	if [ "${modules[*]}" != "$want" ]; then
		echo "FAIL dkms build $name/$version for $kver: dkms.conf names" \
		     "\"${modules[*]}\" for $arch, expected \"$want\""
		status=1
		continue
	fi
	# dkms strips each module with "strip -g", the machine's, which does
	# not know arm64: a cross build gets the cross strip under that name.
	path=$PATH
	if [ "$debarch" = arm64 ]; then
		mkdir -p "$work/cross-bin"
		ln -sf "$(command -v aarch64-linux-gnu-strip)" "$work/cross-bin/strip"
		path=$work/cross-bin:$PATH
	fi
	if ! env PATH="$path" "${cross[@]}" dkms build "${dkms_args[@]}" -m "$name" \
		-v "$version" -k "$kver" -a "$arch" --kernelsourcedir "$kdir" \
		>"$log" 2>&1; then
		echo "FAIL dkms build $name/$version for $kver:"
		cat "$log"
		cat "$work/tree/$name/$version/build/make.log" 2>/dev/null || true
		status=1
		continue
	fi
	base="$work/tree/$name/$version/$kver/$arch"
	problems=()
	for m in "${modules[@]}"; do
		ko=$(find "$base/module" -name "$m.ko*" | head -n 1)
		if [ -z "$ko" ]; then
			problems+=("no $m.ko")
			continue
		fi
		v=$(modinfo -F version "$ko")
		[ "$v" = "$version" ] || problems+=("$m version \"$v\"")
		magic=$(modinfo -F vermagic "$ko")
		[ "${magic%% *}" = "$kver" ] || problems+=("$m vermagic \"$magic\"")
		[ -n "$(modinfo -F signer "$ko")" ] || problems+=("$m not signed")
		elf=$ko
		case "$ko" in
		*.xz) elf=$work/elf.ko && xz -dc "$ko" >"$elf" ;;
		*.zst) elf=$work/elf.ko && zstd -qdc "$ko" >"$elf" ;;
		esac
		if ! readelf -S "$elf" >"$work/sections" 2>&1; then
			problems+=("$m: readelf failed")
		elif grep -q '\.debug_info' "$work/sections"; then
			problems+=("$m not stripped")
		fi
	done
	if grep -Eq '(warning|error):' "$base/log/make.log"; then
		problems+=("warnings in make.log")
		grep -E '(warning|error):' "$base/log/make.log"
	fi
	if [ ${#problems[@]} -gt 0 ]; then
		echo "FAIL dkms build $name/$version for $kver: ${problems[*]}"
		cat "$log"
		status=1
	else
		echo "ok dkms build $name/$version for $kver ($arch): ${modules[*]}," \
		     "signed by \"$(modinfo -F signer "$ko")\""
	fi
done
exit $status
