#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian package the way a user would, "apt-get install
# ./<name>-dkms_<version>_all.deb", then purge it, in a throwaway Debian 12
# root (chroot), never on this machine.  DEBDIR (build/deb/ by default)
# holds the .deb from scripts/deb-build.sh.
#
#   scripts/deb-test.sh [DEBDIR]
#   scripts/deb-test.sh -h|--help
#
# The root: "debootstrap --variant=minbase bookworm" from the host's Debian
# mirror, with the host's apt sources, the headers of the newest Debian
# 6.12 and 6.1 kernels (scripts/deps.sh installs the same on the host; the
# 6.12 headers bring that kernel's image), and the packages of dkms with
# what it depends on and recommends downloaded but not installed, so that
# the install itself needs no network.  It is kept in
# $BALLOON_CACHE/deb-root/<key>/, <key> a hash of what went into it
# (mirror, apt sources, package names and versions, this recipe's
# format), and made again when that changes.  Each run works on a copy
# and deletes it.  DKMS needs /proc: it is mounted in the copy for the
# install and the purge, and unmounted after them and on any exit (nothing
# else is mounted; debootstrap mounts what it needs while it runs, and
# unmounts it).  A modprobe or insmod in the root is refused and recorded
# (it would reach this machine's kernel).
#
# In the copy, before the install, as on a booted machine: the running
# kernel has a /lib/modules directory (without headers, so DKMS skips
# it), and a kernel that dkms.conf's BUILD_EXCLUSIVE_KERNEL refuses has
# headers.  One result line each:
#   deb install              apt-get succeeds; dpkg has the package
#                            installed; nothing ran modprobe or insmod
#   deb install/<series> (<kver>)
#                            "dkms status" says installed; dkms.conf's
#                            modules are in /lib/modules/<kver>/updates/dkms/
#                            with its PACKAGE_VERSION and the kernel's
#                            vermagic, and modules.dep has them
#   deb install/unsupported (<release>)
#                            DKMS skipped it ("BUILD_EXCLUSIVE directive
#                            which does not match", "Skipped.") and
#                            installed nothing for it
#   deb conffile             /etc/modprobe.d/balloon.conf is a conffile of
#                            the package, with the tree's content
#   deb purge                "apt-get purge" succeeds; no file of the
#                            package is left (dpkg's list of its files,
#                            /usr/src/<name>-<version>, DKMS's tree, the
#                            modules and their modules.dep lines, the
#                            conffile, any new path named *balloon* that no
#                            installed package owns), and "dkms status"
#                            prints nothing
# The modules DKMS installed go, decompressed, to DEBDIR/modules/<kver>/,
# and the installed /etc/modprobe.d/balloon.conf to
# DEBDIR/etc/modprobe.d/, for the QEMU blacklist test (scripts/check.sh
# runs it with them).  Result lines go to stdout, apt's and DKMS's output
# to stderr.  Takes the machine's heavy-job lock (DKMS builds) for the
# whole run.  Needs root (debootstrap, chroot).
set -uo pipefail

. "$(dirname "$0")/lib.sh"

debdir=${1:-$BALLOON_REPO/build/deb}
name=$(balloon_conf_value PACKAGE_NAME)
version=$(balloon_conf_value PACKAGE_VERSION)
mapfile -t modules < <(sed -n 's/^BUILT_MODULE_NAME\[[0-9]*\]="\(.*\)"$/\1/p' \
	"$BALLOON_REPO/dkms.conf")
deb="$name-dkms_${version}_all.deb"
conf=etc/modprobe.d/balloon.conf
suite=bookworm
# Bump when the recipe of the root changes: the cached root is then made
# again.
root_format=1

failed=0
say() { echo "# deb-test: $*" >&2; }
pass() { echo "PASS: $1"; }
# fail NAME WHY [DETAIL...]: the details go on indented lines.
fail() {
	echo "FAIL: $1: $2"
	shift 2
	local line
	for line; do echo "    $line"; done
	failed=1
}
elapsed() { echo "$((SECONDS - $1)) s"; }

[ -f "$debdir/$deb" ] || { fail "deb install" "no $debdir/$deb (scripts/deb-build.sh)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { fail "deb install" "needs root (debootstrap, chroot)"; exit 1; }
for tool in debootstrap chroot; do
	command -v "$tool" >/dev/null ||
		{ fail "deb install" "no $tool (run scripts/deps.sh)"; exit 1; }
done

declare -A kver
for series in 6.12 6.1; do
	kver[$series]=$(balloon_kernel_release "$series") ||
		{ fail "deb install" "cannot resolve the $series kernel"; exit 1; }
done
headers=("linux-headers-${kver[6.12]}" "linux-headers-${kver[6.1]}")

top="$BALLOON_CACHE/deb-root"
mkdir -p "$top"

# Unmount anything mounted below DIR (a debootstrap that was killed), deepest
# first, then delete DIR without leaving its file system.
remove_tree() {
	local m

	findmnt -rn -o TARGET | grep -F "$1/" | sort -r | while IFS= read -r m; do
		umount "$m" || umount -l "$m"
	done
	rm -rf --one-file-system "$1"
}

run=
cleanup() {
	[ -n "$run" ] && remove_tree "$run"
	remove_tree "$top/new"
	say "$(elapsed "$locked") from taking the lock to cleaning up"
}
balloon_heavy_lock
locked=$SECONDS
trap cleanup EXIT
trap 'exit 130' INT TERM
for stale in "$top"/run.*; do
	[ -e "$stale" ] && remove_tree "$stale"
done

# Run a command in ROOT with a clean environment.
in_root() {
	local root=$1
	shift
	chroot "$root" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# --- the cached root.
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' \
	'Identifier: Packages' 2>/dev/null | awk -v s="$suite" '$2 == s { print $1; exit }')
mirror=${mirror:-http://deb.debian.org/debian/}
mapfile -t sources < <(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	/etc/apt/sources.list.d/*.sources 2>/dev/null)
versions() {
	local p

	for p; do
		echo "$p $(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')"
	done
}
key=$( {
	echo "format $root_format suite $suite mirror $mirror"
	versions "${headers[@]}" dkms
	for f in "${sources[@]}"; do echo "== $f"; cat "$f"; done
} | sha256sum | cut -c1-16)
root="$top/$key/root"

make_root() {
	local new="$top/new" f k

	remove_tree "$new"
	mkdir -p "$new"
	say "debootstrap $suite from $mirror"
	debootstrap --variant=minbase "$suite" "$new/root" "$mirror" >&2 || return
	# The host's apt sources and the keys they name.
	rm -f "$new/root/etc/apt/sources.list"
	for f in "${sources[@]}"; do
		cp "$f" "$new/root$f" || return
	done
	for k in $(sed -n 's/^Signed-By: *\(\/.*\)$/\1/p; s/.*signed-by=\([^] ]*\).*/\1/p' \
		"${sources[@]}" | sort -u) /etc/apt/trusted.gpg.d/*; do
		[ -f "$k" ] && [ ! -e "$new/root$k" ] &&
			{ mkdir -p "$new/root$(dirname "$k")" && cp "$k" "$new/root$k"; }
	done
	# No service starts in the root, and no module loads from it.
	printf '#!/bin/sh\nexit 101\n' >"$new/root/usr/sbin/policy-rc.d"
	for f in modprobe insmod; do
		printf '#!/bin/sh\necho "%s $*" >>/root/module-loads\necho "refused in this test root: %s $*" >&2\nexit 1\n' \
			"$f" "$f" >"$new/root/usr/local/sbin/$f"
	done
	chmod 755 "$new/root/usr/sbin/policy-rc.d" "$new"/root/usr/local/sbin/*
	in_root "$new/root" apt-get update -q >&2 || return
	# INITRD=No: the 6.12 image needs no initramfs here.
	say "installing ${headers[*]}"
	in_root "$new/root" env INITRD=No apt-get install -y -q \
		--no-install-recommends "${headers[@]}" >&2 || return
	say "downloading dkms and what it depends on and recommends"
	in_root "$new/root" apt-get install -y -q --download-only dkms >&2 || return
	for f in "$top"/*; do
		[[ ${f##*/} =~ ^[0-9a-f]{16}$ ]] && remove_tree "$f"
	done
	mv "$new" "$top/$key"
}

t0=$SECONDS
if [ -d "$root" ]; then
	say "cached root $top/$key"
else
	say "making the root $top/$key"
	make_root || { fail "deb install" "cannot make the Debian $suite root, see stderr"; exit 1; }
	say "root made in $(elapsed "$t0")"
fi

# --- the throwaway copy, as a booted machine with one kernel DKMS refuses.
t0=$SECONDS
run=$(mktemp -d "$top/run.XXXXXX")
cp -a "$root" "$run/root" || { fail "deb install" "cannot copy the root"; exit 1; }
r="$run/root"
say "copied the root in $(elapsed "$t0")"

excl=$(balloon_conf_value BUILD_EXCLUSIVE_KERNEL)
unsupported=
for rel in 5.10.0-0-amd64 4.19.0-0-amd64 3.16.0-0-amd64; do
	[[ $rel =~ $excl ]] || { unsupported=$rel; break; }
done
mkdir -p "$r/lib/modules/$(uname -r)"
[ -n "$unsupported" ] && mkdir -p "$r/lib/modules/$unsupported" &&
	ln -s "/usr/src/linux-headers-${kver[6.1]}" "$r/lib/modules/$unsupported/build"

# Paths named *balloon* before the package: the kernels' own files.
balloon_paths() {
	(cd "$r" && find . -xdev -name '*balloon*' -not -path './var/log/*' \
		-not -path './tmp/*' | sort)
}
balloon_paths >"$run/before"

# What the QEMU test takes from the package; nothing from an earlier run.
rm -rf "${debdir:?}/modules" "${debdir:?}/etc"
mkdir -p "$debdir/modules" "$debdir/$(dirname "$conf")"

# --- install.
mount -t proc proc "$r/proc" || { fail "deb install" "cannot mount /proc in the root"; exit 1; }
mkdir -p "$r/tmp/pkg"
cp "$debdir/$deb" "$r/tmp/pkg/"
t0=$SECONDS
say "apt-get install ./$deb"
# (No pseudo-terminal for dpkg: /dev/pts is not mounted.)
in_root "$r" sh -c "cd /tmp/pkg && apt-get install -y -o Dpkg::Use-Pty=0 ./$deb" \
	>"$run/install.log" 2>&1
rc=$?
cat "$run/install.log" >&2
say "apt-get install took $(elapsed "$t0") (exit $rc)"
rm -rf "$r/tmp/pkg"
status=$(in_root "$r" dpkg-query -W -f='${Status}' "$name-dkms" 2>/dev/null)
if [ $rc -ne 0 ] || [ "$status" != "install ok installed" ]; then
	mapfile -t tail < <(tail -n 20 "$run/install.log")
	fail "deb install" "apt-get exited $rc, package \"$status\"" "${tail[@]}"
	exit 1
elif [ -s "$r/root/module-loads" ]; then
	mapfile -t tail <"$r/root/module-loads"
	fail "deb install" "the install tried to load modules" "${tail[@]}"
else
	pass "deb install (apt-get install ./$deb)"
fi

for series in 6.12 6.1; do
	k=${kver[$series]}
	problems=()
	dkms_status=$(in_root "$r" dkms status -m "$name" -v "$version" -k "$k" 2>&1)
	[[ $dkms_status == *": installed"* ]] || problems+=("dkms status: \"$dkms_status\"")
	mkdir -p "$debdir/modules/$k"
	for m in "${modules[@]}"; do
		ko=$(find "$r/lib/modules/$k/updates/dkms" -name "$m.ko*" 2>/dev/null | head -n 1)
		if [ -z "$ko" ]; then
			problems+=("no /lib/modules/$k/updates/dkms/$m.ko*")
			continue
		fi
		v=$(modinfo -F version "$ko")
		[ "$v" = "$version" ] || problems+=("$m version \"$v\"")
		magic=$(modinfo -F vermagic "$ko")
		[ "${magic%% *}" = "$k" ] || problems+=("$m vermagic \"$magic\"")
		grep -q "^updates/dkms/$m\.ko[^:]*:" "$r/lib/modules/$k/modules.dep" 2>/dev/null ||
			problems+=("$m not in /lib/modules/$k/modules.dep")
		case "$ko" in
		*.xz) xz -dc "$ko" ;;
		*.zst) zstd -qdc "$ko" ;;
		*.gz) gzip -dc "$ko" ;;
		*) cat "$ko" ;;
		esac >"$debdir/modules/$k/$m.ko" || problems+=("cannot copy $ko")
	done
	if [ ${#problems[@]} -eq 0 ]; then
		pass "deb install/$series ($k)"
	else
		fail "deb install/$series ($k)" "${problems[0]}" "${problems[@]:1}"
	fi
done

if [ -z "$unsupported" ]; then
	echo "SKIP: deb install/unsupported: BUILD_EXCLUSIVE_KERNEL matches every release tried"
else
	problems=()
	said=$(grep -xF -A4 "Building initial module for $unsupported" "$run/install.log")
	if ! grep -q "BUILD_EXCLUSIVE directive which does not match" <<<"$said" ||
		! grep -qx "Skipped." <<<"$said"; then
		problems+=("DKMS did not say it skipped $unsupported: \"$said\"")
	fi
	left=$(find "$r/lib/modules/$unsupported" -name '*.ko*')
	[ -z "$left" ] || problems+=("installed for $unsupported: $left")
	if [ ${#problems[@]} -eq 0 ]; then
		pass "deb install/unsupported ($unsupported)"
	else
		fail "deb install/unsupported ($unsupported)" "${problems[@]}"
	fi
fi

problems=()
in_root "$r" dpkg-query -W -f='${Conffiles}\n' "$name-dkms" | grep -q "^ /$conf " ||
	problems+=("/$conf is not a conffile of $name-dkms")
cmp -s "$r/$conf" "$BALLOON_REPO/$conf" || problems+=("/$conf is not the tree's")
cp "$r/$conf" "$debdir/$conf" || problems+=("no /$conf")
if [ ${#problems[@]} -eq 0 ]; then
	pass "deb conffile (/$conf)"
else
	fail "deb conffile (/$conf)" "${problems[@]}"
fi

# --- purge.
in_root "$r" dpkg-query -L "$name-dkms" >"$run/files"
t0=$SECONDS
say "apt-get purge $name-dkms"
in_root "$r" apt-get purge -y -o Dpkg::Use-Pty=0 "$name-dkms" >"$run/purge.log" 2>&1
rc=$?
cat "$run/purge.log" >&2
say "apt-get purge took $(elapsed "$t0") (exit $rc)"
problems=()
[ $rc -eq 0 ] || problems+=("apt-get purge exited $rc")
in_root "$r" dpkg-query -W "$name-dkms" >/dev/null 2>&1 &&
	problems+=("dpkg still knows $name-dkms")
while IFS= read -r f; do
	# Directories other packages share (/usr/src, /etc/modprobe.d...) stay.
	[ -e "$r$f" ] && ! [ -d "$r$f" ] && problems+=("left: $f")
done <"$run/files"
for f in "/usr/src/$name-$version" "/var/lib/dkms/$name" "/$conf"; do
	[ -e "$r$f" ] && problems+=("left: $f")
done
for f in "$r"/lib/modules/*/modules.dep; do
	grep -qE "(^|/)($(IFS='|'; echo "${modules[*]}"))\.ko" "$f" &&
		problems+=("${f#"$r"} still lists our modules")
done
# New paths of the packages apt installed with ours (dkms, the compiler,
# linux-libc-dev's virtio_balloon.h...) are theirs, not leftovers.
balloon_paths >"$run/after"
while IFS= read -r f; do
	in_root "$r" dpkg-query -S "${f#.}" >/dev/null 2>&1 ||
		problems+=("left: ${f#.}")
done < <(comm -13 "$run/before" "$run/after")
dkms_status=$(in_root "$r" dkms status 2>&1)
[ -z "$dkms_status" ] || problems+=("dkms status: \"$dkms_status\"")
[ -s "$r/root/module-loads" ] && problems+=("modprobe or insmod ran: $(cat "$r/root/module-loads")")
umount "$r/proc"
if [ ${#problems[@]} -eq 0 ]; then
	pass "deb purge (apt-get purge $name-dkms)"
else
	fail "deb purge (apt-get purge $name-dkms)" "${problems[@]}"
fi
exit $failed
