#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the DKMS package with the real dkms for Debian's newest 6.12 and
# 6.1 kernels (or the series given: 6.12, 6.1, 7.3), against their
# installed headers, or for 7.3 the tree prepared from linux-source-7.3 in
# the cache (scripts/lib.sh's balloon_kdir), without changing this
# machine: a copy of the sources goes into a private source tree, dkms
# gets a private DKMS tree and a throwaway signing key, and only "dkms
# add" and "dkms build" run (never install, never load).  Building a
# copy also keeps kbuild's objects out of the repository.
#
# Checks that each build produced the three modules of dkms.conf, that
# their MODULE_VERSION is dkms.conf's PACKAGE_VERSION and their vermagic the
# target kernel, that dkms signed them, and that BUILD_EXCLUSIVE_KERNEL
# accepts the kernels being built (and 6.1 to 6.12) but nothing older than
# 6.1.  One line per kernel; exits non-zero on any failure, printing
# dkms's make.log.
#
#   scripts/dkms-build.sh [6.12|6.1|7.3]...
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
mapfile -t modules < <(sed -n 's/^BUILT_MODULE_NAME\[[0-9]*\]="\(.*\)"$/\1/p' "$conf")
if [ -z "$name" ] || [ -z "$version" ] || [ ${#modules[@]} -eq 0 ]; then
	echo "dkms: cannot read PACKAGE_NAME, PACKAGE_VERSION, BUILT_MODULE_NAME from $conf" >&2
	exit 1
fi

# dkms.conf must take every kernel the Kbuild builds for: here, the ones
# being built and 6.1 to 6.12; and refuse what is older than 6.1, as the
# Kbuild does.  (Where a newer kernel is refused is dkms.conf's choice.)
excl=$(conf_value BUILD_EXCLUSIVE_KERNEL)
accept=(6.1.0-56-amd64 6.1 6.5.0-1-amd64 6.10.3 6.12.117+deb12-amd64)
for series in "$@"; do
	accept+=("$(balloon_kernel_release "$series")")
done
for rel in "${accept[@]}" 5.10.0-30-amd64 6.0.12 5.19.1; do
	case "$rel" in
	5.*|6.0*) want=no ;;
	*) want=yes ;;
	esac
	got=no
	[[ $rel =~ $excl ]] && got=yes
	[ "$got" = "$want" ] || {
		echo "dkms: BUILD_EXCLUSIVE_KERNEL \"$excl\" matches $rel: $got, expected $want" >&2
		exit 1
	}
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
	# /lib/modules/<kver>/build, which a prepared 7.3 tree is not.
	export sign_file="$kdir/scripts/sign-file"
	log="$work/build-$kver.log"
	if ! dkms build "${dkms_args[@]}" -m "$name" -v "$version" \
		-k "$kver" --kernelsourcedir "$kdir" >"$log" 2>&1; then
		echo "FAIL dkms build $name/$version for $kver:"
		cat "$log"
		cat "$work/tree/$name/$version/build/make.log" 2>/dev/null || true
		status=1
		continue
	fi
	base="$work/tree/$name/$version/$kver/$(uname -m)"
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
		echo "ok dkms build $name/$version for $kver: ${modules[*]}," \
		     "signed by \"$(modinfo -F signer "$ko")\""
	fi
done
exit $status
