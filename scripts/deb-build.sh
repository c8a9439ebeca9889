#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the Debian package from debian/: the source package
# (dpkg-buildpackage -S: <name>_<version>.dsc and .tar.xz) and the binary
# one (dpkg-buildpackage -b: <name>-dkms_<version>_all.deb), into OUTDIR
# (build/deb/ by default; "make deb" runs this).  <name> and <version>
# are dkms.conf's PACKAGE_NAME and PACKAGE_VERSION, the project's one
# version: debian/rules refuses a debian/changelog that says another.
#
# dpkg-buildpackage writes next to the tree it builds, so it builds a copy
# of the tracked and new files in a temporary directory, which also keeps
# build products out of the package.  Then it checks the .deb: its name,
# Package and Version, the sources under /usr/src/<name>-<version>/ (the
# files the tree has, dkms.conf among them), and /etc/modprobe.d/balloon.conf
# as a conffile with the tree's content.  Exits non-zero on any failure.
# Nothing is compiled and nothing installed: scripts/deb-test.sh does that,
# in a throwaway Debian root.
#
#   scripts/deb-build.sh [OUTDIR]
#   scripts/deb-build.sh -h|--help
set -euo pipefail

. "$(dirname "$0")/lib.sh"

out=${1:-$BALLOON_REPO/build/deb}
for tool in dpkg-buildpackage dh dh_dkms; do
	command -v "$tool" >/dev/null ||
		{ echo "deb: no $tool (run scripts/deps.sh)" >&2; exit 1; }
done

name=$(balloon_conf_value PACKAGE_NAME)
version=$(balloon_conf_value PACKAGE_VERSION)
if [ -z "$name" ] || [ -z "$version" ]; then
	echo "deb: no PACKAGE_NAME or PACKAGE_VERSION in dkms.conf" >&2
	exit 1
fi
deb="$name-dkms_${version}_all.deb"
conf=etc/modprobe.d/balloon.conf

work=$(mktemp -d "${TMPDIR:-/tmp}/balloon-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/$name-$version"
mkdir -p "$src"
(cd "$BALLOON_REPO" && git ls-files -co --exclude-standard -z |
	xargs -0 cp --parents -t "$src")

# No package of an earlier run is left to be taken for this one's, nor
# what scripts/deb-test.sh took out of its installation.
source=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Source)
mkdir -p "$out"
rm -f "$out/$source"_* "$out/$name"-dkms_*
rm -rf "${out:?}/modules" "${out:?}/etc"

# Source first, from the clean copy; then the .deb.
(cd "$src" && dpkg-buildpackage -S -us -uc && dpkg-buildpackage -b -us -uc)
cp "$work"/*.deb "$work"/*.dsc "$work"/*.tar.* "$work"/*.changes \
	"$work"/*.buildinfo "$out/"

problems=()
[ -f "$out/$deb" ] || problems+=("no $deb (built: $(cd "$work" && echo *.deb))")
if [ ${#problems[@]} -eq 0 ]; then
	for field in "Package=$name-dkms" "Version=$version" "Architecture=all"; do
		got=$(dpkg-deb -f "$out/$deb" "${field%%=*}")
		[ "$got" = "${field#*=}" ] ||
			problems+=("${field%%=*} is \"$got\", expected \"${field#*=}\"")
	done
	dpkg-deb -e "$out/$deb" "$work/control"
	grep -qx "/$conf" "$work/control/conffiles" 2>/dev/null ||
		problems+=("/$conf is not a conffile")
	dpkg-deb -x "$out/$deb" "$work/root"
	cmp -s "$BALLOON_REPO/$conf" "$work/root/$conf" ||
		problems+=("/$conf missing or not the tree's")
	usrsrc="$work/root/usr/src/$name-$version"
	for f in dkms.conf Kbuild Makefile; do
		[ -f "$usrsrc/$f" ] || problems+=("no /usr/src/$name-$version/$f")
	done
	while IFS= read -r -d '' f; do
		cmp -s "$f" "$BALLOON_REPO/${f#"$usrsrc"/}" ||
			problems+=("/usr/src/$name-$version/${f#"$usrsrc"/} is not the tree's")
	done < <(find "$usrsrc" -type f -print0 2>/dev/null)
fi

if [ ${#problems[@]} -gt 0 ]; then
	printf 'FAIL deb build: %s\n' "${problems[@]}"
	exit 1
fi
echo "ok deb build: $out/$deb ($(find "$usrsrc" -type f | wc -l) files" \
	"in /usr/src/$name-$version, /$conf a conffile), $out/${source}_$version.dsc"
