#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every test of the project, from nothing: dependencies, then for the newest
# Debian 6.12 and 6.1 kernels a W=1 build, a sparse run and a DKMS build
# (dkms.conf, with the real dkms, in a private tree), the Debian package
# (built, lintian, installed and purged in a throwaway Debian 12 root),
# checkpatch --strict, kernel-doc and a reStructuredText check of
# Documentation/, the QEMU rig's unit tests, the KUnit suites in both
# variants (kunit.py, UML), and the QEMU guests on both kernels, the
# blacklist test again with the package's modules and modprobe.d file.
# Each result is one line,
# "PASS: name", "FAIL: name: why" or "SKIP: name: why"; the last line is
# the count, "N passed, N failed, N skipped".  Exits non-zero on failure.
#
#   scripts/check.sh [--no-kunit] [--no-qemu]
#   scripts/check.sh -h|--help
#
# --no-kunit leaves out the KUnit runs, --no-qemu the QEMU guests (each is
# then one SKIP line).  Logs go to build/check/.  Caches (kernel source,
# KUnit build dirs, kernel images, initramfs) live in $BALLOON_CACHE, else
# $XDG_CACHE_HOME/balloon-drv, else ~/.cache/balloon-drv.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

do_kunit=1
do_qemu=1
for arg; do
	case "$arg" in
	--no-kunit) do_kunit= ;;
	--no-qemu) do_qemu= ;;
	*) echo "usage: $0 [--no-kunit] [--no-qemu] [--help]" >&2; exit 2 ;;
	esac
done

logs="$BALLOON_REPO/build/check"
rm -rf "$logs" && mkdir -p "$logs"
passed=0 failed=0 skipped=0

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
skip() { echo "SKIP: $1: $2"; skipped=$((skipped + 1)); }
fail() {
	echo "FAIL: $1: $2"
	failed=$((failed + 1))
}

summary() {
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
	exit
}

# Run a command as one test: it passes when it exits 0 and its log has no
# line matching the pattern in $3 (warnings count as failures).
step() {
	local name=$1 log="$logs/$2.log" pattern=$3 rc
	shift 3

	"$@" >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "$name" "exit $rc, see $log"
		tail -n 20 "$log" | sed 's/^/    /'
	elif [ -n "$pattern" ] && grep -Eq "$pattern" "$log"; then
		fail "$name" "warnings in $log"
		grep -E "$pattern" "$log" | head -n 20 | sed 's/^/    /'
	else
		pass "$name"
	fi
}

# Fold a sub-runner's "PASS:/FAIL:/SKIP:" lines into our counts.
fold_results() {
	local line

	while IFS= read -r line; do
		case "$line" in
		PASS:*) passed=$((passed + 1)); echo "$line" ;;
		FAIL:*) failed=$((failed + 1)); echo "$line" ;;
		SKIP:*) skipped=$((skipped + 1)); echo "$line" ;;
		INFRA:*|"    "*) echo "$line" ;;
		esac
	done
}

if ! "$BALLOON_REPO/scripts/deps.sh" >"$logs/deps.log" 2>&1; then
	fail deps "installing dependencies failed, see $logs/deps.log"
	tail -n 20 "$logs/deps.log"
	summary
fi
src=$(balloon_kernel_source) || { fail source "no kernel source"; summary; }

# --- builds: W=1, then sparse over every file, on each kernel.
warn='(warning|error|WARNING|ERROR):'
for series in 6.12 6.1; do
	kver=$(balloon_kernel_release "$series")
	step "build/$series ($kver, W=1)" "build-$series" "$warn" \
		balloon_make "$series" W=1
	step "sparse/$series ($kver)" "sparse-$series" "$warn" \
		make -C "$BALLOON_REPO/build/$kver" \
		KDIR="/usr/src/linux-headers-$kver" W=1 C=2
done

# --- the kernel developer's build, through kbuild alone: no Makefile of
# ours, no variable on the command line, and all three modules.
kbuild_only() {
	local kver=$1 tree="$BALLOON_REPO/build/kbuild-$1" ko rc=0

	balloon_tree "$tree" || return
	make -C "/usr/src/linux-headers-$kver" M="$tree" || return
	for ko in core/balloon_core.ko transports/balloon_vmw.ko \
		transports/balloon_virtio.ko; do
		[ -f "$tree/$ko" ] || { echo "no $ko built"; rc=1; }
	done
	return $rc
}
for series in 6.12 6.1; do
	kver=$(balloon_kernel_release "$series")
	step "kbuild-only build/$series (make -C <headers> M=...)" \
		"kbuild-$series" "$warn" kbuild_only "$kver"
done

# --- DKMS: the real dkms builds dkms.conf against each kernel's headers, in
# a private tree (scripts/dkms-build.sh changes nothing on this machine).
for series in 6.12 6.1; do
	kver=$(balloon_kernel_release "$series")
	step "dkms build/$series ($kver)" "dkms-$series" "$warn" \
		"$BALLOON_REPO/scripts/dkms-build.sh" "$series"
done

# --- the Debian package: built from a copy of the tree (its version is
# dkms.conf's), lintian on the .deb and the source package, then
# installed and purged in a throwaway Debian 12 root (scripts/deb-test.sh),
# which copies the modules DKMS built there and the installed modprobe.d
# file to $debdir for the QEMU blacklist test below.
debdir="$BALLOON_REPO/build/deb"
pkgname=$(balloon_conf_value PACKAGE_NAME)
pkgversion=$(balloon_conf_value PACKAGE_VERSION)
deb="$debdir/$pkgname-dkms_${pkgversion}_all.deb"
deb_tested=
step "deb build ($(basename "$deb"))" deb-build "$warn" \
	"$BALLOON_REPO/scripts/deb-build.sh" "$debdir"
if [ -f "$deb" ]; then
	step "lintian (.deb and source package)" lintian '^[EW]: ' \
		lintian --fail-on error,warning "$deb" "$debdir"/*.dsc
	"$BALLOON_REPO/scripts/deb-test.sh" "$debdir" \
		>"$logs/deb-test.results" 2>"$logs/deb-test.log"
	rc=$?
	deb_tested=1
	fold_results <"$logs/deb-test.results"
	if [ $rc -ne 0 ] && ! grep -q '^FAIL:' "$logs/deb-test.results"; then
		fail "deb test" "deb-test.sh exited $rc, see $logs/deb-test.log"
	fi
else
	skip "deb lintian, install and purge" "no package built"
fi

# --- style: checkpatch --strict and kernel-doc, from the 6.12 source tree.
mapfile -t csrc < <(cd "$BALLOON_REPO" && git ls-files -co --exclude-standard -- \
	'*.c' '*.h' 'Kconfig' '*Kbuild' 'Makefile')
mapfile -t docsrc < <(cd "$BALLOON_REPO" && git ls-files -co --exclude-standard -- '*.c' '*.h')
# checkpatch cannot see identifiers the kernel generates with macros, and
# flags them as CamelCase (it does so in upstream vmw_balloon.c too).  These
# kernel APIs, and nothing else, are allowed; every other report fails, and
# the verdict comes from the reports, not from checkpatch's exit status.
kernel_camelcase='__SetPageOffline|__ClearPageOffline'
checkpatch_all() {
	local out rc

	out=$(cd "$BALLOON_REPO" &&
		"$src/scripts/checkpatch.pl" --strict --no-tree --terse -f "${csrc[@]}" 2>&1)
	rc=$?
	echo "$out" | grep -vE "CHECK: Avoid CamelCase: <($kernel_camelcase)>$"
	# 0: clean, 1: reports (judged by the pattern); else it did not run.
	[ "$rc" -le 1 ]
}
step "checkpatch --strict" checkpatch 'ERROR:|WARNING:|CHECK:' checkpatch_all
step "kernel-doc -Wall" kernel-doc '.' \
	bash -c 'cd "$1" && shift && "$@"' _ "$BALLOON_REPO" \
	"$src/scripts/kernel-doc" -none -Wall "${docsrc[@]}"

step "Documentation (reStructuredText)" rst '' \
	bash -c 'cd "$1" && python3 scripts/check-rst.py Documentation/*.rst' \
	_ "$BALLOON_REPO"

# --- the QEMU rig's own helpers (parsers, cpio writer, ...): unittest.
step "rig unit tests" rig-unit '' \
	bash -c 'cd "$1" && python3 -m unittest discover \
		-s tools/testing/qemu/unit -t tools/testing/qemu' _ "$BALLOON_REPO"

# --- KUnit under kunit.py (UML), both variants.
kernel_bad='BUG:|WARNING:|KASAN:|Oops|circular locking|inconsistent lock state|Call Trace'

kunit_variant() {
	local variant=$1 log json ktest rc results parsed

	log="$logs/kunit-$variant.log"
	json="$logs/kunit-$variant.json"
	"$BALLOON_REPO/scripts/kunit.sh" --json="$json" "$variant" >"$log" 2>&1
	rc=$?
	# One line per case, each parameter of a parameterised case as a case
	# of its own, from kunit.py's JSON; it fails when there is none.
	results=$(python3 "$BALLOON_REPO/scripts/kunit-results.py" \
		"$variant" "$json" "$log")
	parsed=$?
	echo "$results"
	[ "$parsed" -eq 0 ] || tail -n 30 "$log" | sed 's/^/    /'
	# kunit.py fails a run whose kernel crashed or whose test plan came
	# up short; the cases that did not run have no line of their own.
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL:' <<<"$results"; then
		echo "FAIL: kunit/$variant: kunit.sh exited $rc, see $log"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
	# The kernel's own UML build warns; our files must not.
	if grep -Eq 'drivers/balloon/.*(warning|error):' "$log"; then
		echo "FAIL: kunit/$variant: build warnings in our files, see $log"
		grep -E 'drivers/balloon/.*(warning|error):' "$log" | sed 's/^/    /'
	fi
	# kunit.py shows only KTAP: a KASAN, lockdep or sleep-in-atomic report
	# is in the kernel's log, from the first test on (UML's own boot
	# warnings come before it).
	ktest="$BALLOON_CACHE/kunit-$variant/test.log"
	if sed -n '/KTAP version/,$p' "$ktest" 2>/dev/null |
		grep -Eq "$kernel_bad"; then
		echo "FAIL: kunit/$variant: the kernel reported a problem, see $ktest"
		sed -n '/KTAP version/,$p' "$ktest" | grep -E "$kernel_bad" |
			head -n 10 | sed 's/^/    /'
	fi
}

if [ -n "$do_kunit" ]; then
	for variant in default debug; do
		kunit_variant "$variant" > "$logs/kunit-$variant.results"
		fold_results < "$logs/kunit-$variant.results"
	done
else
	skip kunit "--no-kunit given"
fi

# --- QEMU guests, one kernel after the other (never two guests at once).
if [ -n "$do_qemu" ]; then
	for series in 6.12 6.1; do
		kver=$(balloon_kernel_release "$series")
		python3 "$BALLOON_REPO/tools/testing/qemu/run_tests.py" \
			--series "$series" \
			--modules "$BALLOON_REPO/build/modules/$kver" \
			>"$logs/qemu-$series.log" 2>&1
		fold_results < "$logs/qemu-$series.log"
		grep -q '^[0-9]* passed, [0-9]* failed' "$logs/qemu-$series.log" ||
			fail "qemu/$series" "the rig gave no summary, see $logs/qemu-$series.log"
	done
	# The blacklist test with what the package installed in the throwaway
	# root: the modules DKMS built and /etc/modprobe.d/balloon.conf.
	for series in 6.12 6.1; do
		name="deb qemu/$series/ours_modprobe_blacklist"
		kver=$(balloon_kernel_release "$series")
		if [ -z "$deb_tested" ] || [ ! -f "$debdir/etc/modprobe.d/balloon.conf" ]; then
			skip "$name" "the package was not installed"
			continue
		elif ! ls "$debdir/modules/$kver"/*.ko >/dev/null 2>&1; then
			skip "$name" "DKMS installed no module for $kver"
			continue
		fi
		log="$logs/qemu-deb-$series.log"
		python3 "$BALLOON_REPO/tools/testing/qemu/run_tests.py" \
			--series "$series" --modules "$debdir/modules" \
			--modprobe-conf "$debdir/etc/modprobe.d/balloon.conf" \
			-k ours_modprobe_blacklist >"$log" 2>&1
		fold_results < <(sed -E 's#^(PASS|FAIL|SKIP|INFRA): #\1: deb qemu/#' "$log")
		grep -Eq '^(PASS|FAIL|SKIP): [^ ]*/ours_modprobe_blacklist' "$log" ||
			fail "$name" "the rig gave no result, see $log"
	done
else
	skip qemu "--no-qemu given"
fi

summary
