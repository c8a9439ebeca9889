#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Every test of the project, from nothing: dependencies, then for the newest
# Debian 6.12 and 6.1 kernels and trixie-backports' newest 7.3, on amd64
# and (cross-built) on arm64, 7.3 also with 16 KiB pages, a W=1 build,
# a sparse run, a kbuild-only build and a DKMS build (dkms.conf, with the
# real dkms, in a private tree), the Debian package (built, lintian,
# installed and purged in a throwaway Debian 12 root), checkpatch --strict,
# kernel-doc and a reStructuredText check of Documentation/, the QEMU rig's
# unit tests, the KUnit suites in both variants (kunit.py, UML) on 6.12
# and 7.3 and on arm64 with 64 KiB pages (QEMU), Debian's QEMU with our
# VMware balloon device (built once), and the QEMU guests on all three
# kernels (VMware guests too) and on arm64 (the virtio tests on 6.12 and
# 7.3-16k, but hinting in a migration, which QEMU 7.2 cannot run there;
# the smoke tests on 6.1), the
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
# $XDG_CACHE_HOME/balloon-drv, else ~/.cache/balloon-drv; 7.3's packages
# come through a private apt list there (apt-trixie-backports/), and its
# modules are built against linux-source-7.3 prepared there (kbuild-<kver>/).
# build/check/timings.log has how long each step took.
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
start=$SECONDS

# How long a step took, into timings.log.
timed() {
	local name=$1 t0=$SECONDS rc
	shift

	"$@"
	rc=$?
	printf '%5d s  %s\n' $((SECONDS - t0)) "$name" >>"$logs/timings.log"
	return $rc
}

pass() { echo "PASS: $1"; passed=$((passed + 1)); }
skip() { echo "SKIP: $1: $2"; skipped=$((skipped + 1)); }
fail() {
	echo "FAIL: $1: $2"
	failed=$((failed + 1))
}

summary() {
	printf '%5d s  total\n' $((SECONDS - start)) >>"$logs/timings.log"
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
	exit
}

# Run a command as one test: it passes when it exits 0 and its log has no
# line matching the pattern in $3 (warnings count as failures).
step() {
	local name=$1 log="$logs/$2.log" pattern=$3 rc
	shift 3

	timed "$name" "$@" >"$log" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		fail "$name" "exit $rc, see $log"
		tail -n 20 "$log" | sed 's/^/    /'
		return 1
	elif [ -n "$pattern" ] && grep -Eq "$pattern" "$log"; then
		fail "$name" "warnings in $log"
		grep -E "$pattern" "$log" | head -n 20 | sed 's/^/    /'
		return 1
	fi
	pass "$name"
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

if ! timed deps "$BALLOON_REPO/scripts/deps.sh" >"$logs/deps.log" 2>&1; then
	fail deps "installing dependencies failed, see $logs/deps.log"
	tail -n 20 "$logs/deps.log"
	summary
fi
src=$(balloon_kernel_source) || { fail source "no kernel source"; summary; }

# --- each kernel's release and module build tree: Debian's headers for
# 6.x, linux-source-7.3 prepared in the cache for 7.3 (downloaded through
# the private apt list, unpacked and prepared once).  A series whose tree
# cannot be had is one FAIL line, and its builds are left out.
declare -A kver kdir built
series_ok=()
for series in "${BALLOON_SERIES[@]}"; do
	log="$logs/kdir-$series.log"
	if kver[$series]=$(balloon_kernel_release "$series" 2>"$log") &&
		kdir[$series]=$(timed "kdir/$series" balloon_kdir "$series" 2>>"$log"); then
		series_ok+=("$series")
	else
		fail "kdir/$series" "no kernel release or build tree, see $log"
		tail -n 5 "$log" | sed 's/^/    /'
	fi
done

# --- builds: W=1, then sparse over every file, on each kernel.  The other
# builds of a series whose W=1 build failed would fail the same way: they
# are skipped, and its QEMU tests run without our modules.  sparse is
# Debian unstable's, built once (scripts/sparse.sh): Debian 12's cannot
# check 7.x, whose kbuild then checks nothing and says so, which fails the
# step, as does a run that checked no file.
warn='(warning|error|WARNING|ERROR):'
sparse_warn="$warn|is not available or not up to date"
sparse=
if step "sparse (Debian unstable's, built once)" sparse-build '' \
	"$BALLOON_REPO/scripts/sparse.sh"; then
	sparse=$(tail -n 1 "$logs/sparse-build.log")
fi
sparse_check() {
	local out rc

	out=$(make "$@" 2>&1)
	rc=$?
	echo "$out"
	[ $rc -eq 0 ] || return $rc
	grep -q '^  CHECK ' <<<"$out" || {
		echo "sparse checked no file"
		return 1
	}
}
for series in "${series_ok[@]}"; do
	k=${kver[$series]}
	read -r -a cross <<<"$(balloon_make_args "$series")"
	if step "build/$series ($k, W=1)" "build-$series" "$warn" \
		balloon_make "$series" W=1; then
		built[$series]=1
		if [ -n "$sparse" ]; then
			step "sparse/$series ($k)" "sparse-$series" \
				"$sparse_warn" sparse_check \
				-C "$BALLOON_REPO/build/$k" \
				KDIR="${kdir[$series]}" "${cross[@]}" W=1 C=2 \
				CHECK="$sparse"
		else
			fail "sparse/$series ($k)" "no sparse, see $logs/sparse-build.log"
		fi
	else
		skip "sparse/$series ($k)" "build/$series failed"
	fi
done

# --- the kernel developer's build, through kbuild alone: no Makefile of
# ours, no variable on the command line but a cross build's ARCH and
# CROSS_COMPILE, and all three modules (on arm64 two: balloon_vmw is x86
# only, and must not be built).
#   kbuild_only KDIR KVER DEBIAN-ARCH [make arguments]
kbuild_only() {
	local dir=$1 tree="$BALLOON_REPO/build/kbuild-$2" arch=$3 ko rc=0 cross
	local vmw
	shift 3

	cross=("$@")
	balloon_tree "$tree" || return
	make -C "$dir" M="$tree" "${cross[@]}" || return
	for ko in core/balloon_core.ko transports/balloon_virtio.ko; do
		[ -f "$tree/$ko" ] || { echo "no $ko built"; rc=1; }
	done
	vmw="$tree/transports/balloon_vmw.ko"
	if [ "$arch" = arm64 ]; then
		[ ! -f "$vmw" ] || { echo "balloon_vmw.ko built for arm64"; rc=1; }
	else
		[ -f "$vmw" ] || { echo "no balloon_vmw.ko built"; rc=1; }
	fi
	return $rc
}
for series in "${series_ok[@]}"; do
	name="kbuild-only build/$series (make -C <kdir> M=...)"
	if [ -n "${built[$series]:-}" ]; then
		read -r -a cross <<<"$(balloon_make_args "$series")"
		step "$name" "kbuild-$series" "$warn" \
			kbuild_only "${kdir[$series]}" "${kver[$series]}" \
			"$(balloon_arch "$series")" "${cross[@]}"
	else
		skip "$name" "build/$series failed"
	fi
done

# --- DKMS: the real dkms builds dkms.conf against each kernel's tree, in
# a private tree (scripts/dkms-build.sh changes nothing on this machine).
for series in "${series_ok[@]}"; do
	name="dkms build/$series (${kver[$series]})"
	if [ -n "${built[$series]:-}" ]; then
		step "$name" "dkms-$series" "$warn" \
			"$BALLOON_REPO/scripts/dkms-build.sh" "$series"
	else
		skip "$name" "build/$series failed"
	fi
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

# --- KUnit under kunit.py (UML), both variants, on 6.12 and 7.3 (each in
# its own unconfigured source tree and build directories); then the
# default variant on arm64 with 64 KiB pages (6.12, QEMU TCG).
kernel_bad='BUG:|WARNING:|KASAN:|Oops|circular locking|inconsistent lock state|Call Trace'
ours_bad='drivers/balloon/.*(warning|error):'

# kunit_variant KERNEL VARIANT [ARCH]: UML's runs are named KERNEL/VARIANT,
# another architecture's ARCH/VARIANT (its kernel is 6.12).
kunit_variant() {
	local kernel=$1 variant=$2 arch=${3:-um} name tag log json ktest rc
	local results parsed

	if [ "$arch" = um ]; then
		name="$kernel/$variant" tag="$kernel-$variant"
	else
		name="$arch/$variant" tag="$arch-$variant"
	fi
	log="$logs/kunit-$tag.log"
	json="$logs/kunit-$tag.json"
	timed "kunit/$name" "$BALLOON_REPO/scripts/kunit.sh" --kernel "$kernel" \
		--arch "$arch" --json="$json" "$variant" >"$log" 2>&1
	rc=$?
	# No JSON: kunit.py ran no kernel (the build failed, or the tree could
	# not be had).  One line, with our files' errors if that is why.
	if [ ! -s "$json" ]; then
		echo "FAIL: kunit/$name: no results (kunit.sh exited $rc), see $log"
		if grep -Eq "$ours_bad" "$log"; then
			grep -E "$ours_bad" "$log" | head -n 10 | sed 's/^/    /'
		else
			tail -n 20 "$log" | sed 's/^/    /'
		fi
		return
	fi
	# One line per case, each parameter of a parameterised case as a case
	# of its own, from kunit.py's JSON; it fails when there is none.
	results=$(python3 "$BALLOON_REPO/scripts/kunit-results.py" \
		"$name" "$json" "$log")
	parsed=$?
	echo "$results"
	[ "$parsed" -eq 0 ] || tail -n 30 "$log" | sed 's/^/    /'
	# kunit.py fails a run whose kernel crashed or whose test plan came
	# up short; the cases that did not run have no line of their own.
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL:' <<<"$results"; then
		echo "FAIL: kunit/$name: kunit.sh exited $rc, see $log"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
	# The kernel's own build warns; our files must not.
	if grep -Eq "$ours_bad" "$log"; then
		echo "FAIL: kunit/$name: build warnings in our files, see $log"
		grep -E "$ours_bad" "$log" | sed 's/^/    /'
	fi
	# kunit.py shows only KTAP: a KASAN, lockdep or sleep-in-atomic report
	# is in the kernel's log (test.log in the build directory, for UML and
	# QEMU alike), from the first test on (UML's own boot warnings come
	# before it).
	ktest="$("$BALLOON_REPO/scripts/kunit.sh" --builddir --kernel "$kernel" \
		--arch "$arch" "$variant")/test.log"
	if sed -n '/KTAP version/,$p' "$ktest" 2>/dev/null |
		grep -Eq "$kernel_bad"; then
		echo "FAIL: kunit/$name: the kernel reported a problem, see $ktest"
		sed -n '/KTAP version/,$p' "$ktest" | grep -E "$kernel_bad" |
			head -n 10 | sed 's/^/    /'
	fi
}

if [ -n "$do_kunit" ]; then
	for kernel in 6.12 7.3; do
		for variant in default debug; do
			res="$logs/kunit-$kernel-$variant.results"
			kunit_variant "$kernel" "$variant" >"$res"
			fold_results <"$res"
		done
	done
	res="$logs/kunit-arm64-64k-default.results"
	kunit_variant 6.12 default arm64-64k >"$res"
	fold_results <"$res"
else
	skip kunit "--no-kunit given"
fi

# --- QEMU guests, one kernel after the other (never two guests at once).
# A series whose build failed runs without our modules: the tests that
# need them are skipped (its build already failed the run).
if [ -n "$do_qemu" ]; then
	# Debian's QEMU with our VMware balloon device, built once into the
	# cache (about 3.5 minutes; at once after that): each kernel's QEMU
	# step below runs the VMware tests on it (the rig takes the binary
	# from $BALLOON_VMW_QEMU), and skips them if it failed, without
	# building it again.
	if step "qemu with the VMware balloon" vmw-qemu '' \
		"$BALLOON_REPO/scripts/vmw-qemu.sh"; then
		BALLOON_VMW_QEMU=$(tail -n 1 "$logs/vmw-qemu.log")
	else
		BALLOON_VMW_QEMU="(none: the step 'qemu with the VMware balloon' failed, see $logs/vmw-qemu.log)"
	fi
	export BALLOON_VMW_QEMU
	# Every test on each amd64 kernel, on arm64's 6.12 (4 KiB pages) and
	# 7.3-16k (16 KiB) (the rig skips there, each with its reason, the
	# VMware tests and hinting in a migration), the smoke tests (inflate,
	# deflate, unload) on arm64's 6.1.  7.3's arm64 4 KiB flavour is built above, not booted:
	# its page size is 6.12-arm64's, its kernel code 7.3-arm64-16k's.
	declare -A qemu_how=([6.12]=all [6.1]=all [7.3]=all
		[6.12-arm64]=all [7.3-arm64-16k]=all [6.1-arm64]=--smoke)
	for series in "${BALLOON_SERIES[@]}"; do
		if [ -z "${qemu_how[$series]:-}" ]; then
			skip "qemu/$series" "built, not booted (its page size is 6.12-arm64's, its kernel 7.3-arm64-16k's)"
			continue
		fi
		log="$logs/qemu-$series.log"
		mods=()
		if [ -n "${built[$series]:-}" ]; then
			mods=(--modules "$BALLOON_REPO/build/modules/${kver[$series]}")
		fi
		[ "${qemu_how[$series]}" = all ] || mods+=("${qemu_how[$series]}")
		timed "qemu/$series" python3 \
			"$BALLOON_REPO/tools/testing/qemu/run_tests.py" \
			--series "$series" "${mods[@]}" >"$log" 2>&1
		fold_results <"$log"
		grep -q '^[0-9]* passed, [0-9]* failed' "$log" ||
			fail "qemu/$series" "the rig gave no summary, see $log"
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
