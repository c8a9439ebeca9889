#!/bin/sh
# /init of the balloon test rig initramfs (busybox ash, runs as PID 1).
#
# Kernel command line parameters (all optional):
#   rig.load=a,b,c  modules to modprobe in order (built-in ones are skipped)
#   rig.bind=1      wait until the virtio balloon device (id 0x0005) has a
#                   bound driver before reporting ready
#   rig.bindwait=N  seconds to wait for that (default 30)
#   rig.chan=DEV    command channel tty (default /dev/ttyS1; a virtio
#                   console, /dev/hvcN, gets virtio_pci and virtio_console
#                   loaded first)
#
# Console markers (ttyS0, ttyAMA0 on arm64): "rig: init started",
# "rig: loading modules",
# "rig: ready".  Command channel protocol (one request per line):
#   host  -> guest: "<id> <base64 of a shell command>"
#   guest -> host : "RIG-BEGIN <id>", base64 of stdout+stderr (wrapped),
#                   "RIG-END <id> <exit status>"
# Before serving, the guest sends once:
#   "RIG-READY kver=<release> arch=<uname -m> pagesize=<KiB>
#    loaded=<m,...> failed=<m:rc,...> bound=<drv>" (one line)

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs none /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
echo "rig: init started"

LOAD=""
BIND=0
BINDWAIT=30
CHAN=/dev/ttyS1
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	rig.load=*) LOAD=${arg#rig.load=} ;;
	rig.bind=*) BIND=${arg#rig.bind=} ;;
	rig.bindwait=*) BINDWAIT=${arg#rig.bindwait=} ;;
	rig.chan=*) CHAN=${arg#rig.chan=} ;;
	esac
done
KVER=$(uname -r)

# Print the sysfs dir of the virtio balloon device, if it exists.
balloon_dev() {
	for d in /sys/bus/virtio/devices/virtio*; do
		[ "$(cat "$d/device" 2>/dev/null)" = 0x0005 ] && echo "$d" && return
	done
}

builtin() {
	grep -q "/$1\.ko" "/lib/modules/$KVER/modules.builtin"
}

# The command channel of an arm64 guest is a virtio console, whose
# drivers may be modules: the rig's own plumbing, loaded before the
# marker below, as part of the boot.
case "$CHAN" in
/dev/hvc*)
	for m in virtio_pci virtio_console; do
		builtin "$m" || modprobe "$m"
	done
	i=0
	while [ ! -e "$CHAN" ] && [ $i -lt 100 ]; do
		usleep 100000
		i=$((i + 1))
	done
	;;
esac

echo "rig: loading modules: $LOAD"
LOADED=""
FAILED=""
for m in $(echo "$LOAD" | tr , ' '); do
	if builtin "$m"; then
		LOADED="$LOADED,$m(builtin)"
		continue
	fi
	modprobe "$m"
	rc=$?
	if [ $rc -eq 0 ]; then
		LOADED="$LOADED,$m"
	else
		FAILED="$FAILED,$m:$rc"
	fi
done

BOUND=none
i=0
while :; do
	dev=$(balloon_dev)
	if [ -n "$dev" ] && [ -e "$dev/driver" ]; then
		BOUND=$(basename "$(readlink "$dev/driver")")
		break
	fi
	[ "$BIND" = 1 ] && [ $i -lt $((BINDWAIT * 10)) ] || break
	i=$((i + 1))
	usleep 100000
done
[ -z "$dev" ] && BOUND=nodevice

exec 3<>"$CHAN"
stty -F "$CHAN" raw -echo
ARCH=$(uname -m)
PAGESIZE=$(awk '/^KernelPageSize:/ { print $2; exit }' /proc/self/smaps)
READY="RIG-READY kver=$KVER arch=$ARCH pagesize=$PAGESIZE"
READY="$READY loaded=${LOADED#,} failed=${FAILED#,} bound=$BOUND"
echo "rig: ready: $READY"
echo "$READY" >&3

cd /
while read -r id b64 <&3; do
	[ -n "$id" ] || continue
	if echo "$b64" | base64 -d >/tmp/.rig.cmd 2>/dev/null; then
		sh -c "$(cat /tmp/.rig.cmd)" </dev/null >/tmp/.rig.out 2>&1
		rc=$?
	else
		echo "rig: undecodable request" >/tmp/.rig.out
		rc=255
	fi
	{
		echo "RIG-BEGIN $id"
		base64 /tmp/.rig.out
		echo "RIG-END $id $rc"
	} >&3
done
echo "rig: command channel closed"
poweroff -f
