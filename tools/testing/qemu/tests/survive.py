"""The balloon never takes the guest down: the guest floor against a
host that asks for everything, a memory hog while the balloon inflates,
the device unplugged and the module unloaded with pages in the balloon."""

from __future__ import annotations

import time

from balloonrig.runner import Context, expect, rigtest, wait_for

from .helpers import (GIB, MIB, debugfs_stats, expect_no_oom_kill,
                      meminfo_avail, move_balloon)

#: What the kernel prints when a task has been stuck for the hung-task
#: timeout (kernel/hung_task.c).
HUNG_TASK = "blocked for more than"


def floor_curve(guest: int) -> int:
    """core/floor.c's automatic floor, in bytes, for *guest* bytes
    (before the watermarks): Hyper-V's piecewise-linear table."""
    mib = guest // MIB
    for limit, base, div in ((128, 8, 2), (512, 40, 4), (2048, 104, 8),
                             (8192, 232, 16)):
        if mib < limit:
            return (base + mib // div) * MIB
    return (488 + mib // 32) * MIB


def high_watermarks(ctx: Context) -> int:
    """The high watermarks of the guest's populated zones, without their
    passing boost, in bytes, as /proc/zoneinfo has them (in the guest's
    pages)."""
    total, high, boost, present = 0, 0, 0, 0
    for line in ctx.guest.read_file("/proc/zoneinfo").splitlines() + \
            ["Node end"]:
        words = line.split()
        if line.startswith("Node"):
            total += high - boost if present else 0
            high = boost = present = 0
        elif len(words) == 2 and words[0] in ("high", "boost", "present"):
            value = int(words[1])
            if words[0] == "high":
                high = value
            elif words[0] == "boost":
                boost = value
            else:
                present = value
    return total * ctx.guest.page_size


def hung_tasks(ctx: Context) -> list[str]:
    """Hung-task reports in the guest's kernel log."""
    return [ln for ln in ctx.guest.dmesg().splitlines() if HUNG_TASK in ln]


def watch_hung_tasks(ctx: Context, seconds: int = 10) -> None:
    """Make the guest report a task stuck for *seconds* (Debian's default
    is 120 s, longer than a test)."""
    ctx.guest.check(f"echo {seconds} > /proc/sys/kernel/hung_task_timeout_secs")


#: A workload that forks and allocates: four jobs, each three times an
#: anonymous buffer (dd's block) and a tmpfs file of {mib} MiB.
WORKLOAD = ("pids=; for i in 1 2 3 4; do ( for r in 1 2 3; do "
            "dd if=/dev/zero of=/dev/null bs={mib}M count=4 2>/dev/null && "
            "dd if=/dev/zero of=/tmp/w$i bs=1M count={mib} 2>/dev/null && "
            "rm /tmp/w$i || exit 1; done ) & pids=\"$pids $!\"; done; "
            "rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_floor_stops_host(ctx: Context) -> None:
    """QEMU's default balloon device (no deflate-on-oom) asks for all but
    1 MiB of a 2 GiB guest, which panics a guest under the in-tree driver:
    the balloon stops at the guest floor (the curve of its size plus the
    zones' high watermarks), QEMU's actual shows it stop there, and the
    guest stays responsive and runs a workload that forks and allocates,
    with no OOM kill and no panic."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB
    qmp.balloon(1 * MIB)
    stats = wait_for(lambda: debugfs_stats(ctx),
                     lambda s: s["floor_refused_kib"] > 0 and
                     s["size_kib"] == s["target_kib"] and
                     qmp.query_balloon() == full - s["size_kib"] * 1024,
                     240, lambda s: f"the balloon did not settle: {s}", 1)
    size = stats["size_kib"] * 1024
    floor = stats["floor_kib"] * 1024
    # The default device makes MemTotal shrink with the balloon.
    guest = g.meminfo()["MemTotal"] + size
    want = floor_curve(guest) + high_watermarks(ctx)
    expect(abs(floor - want) <= 2 * MIB,
           f"floor {floor // MIB} MiB, expected {want // MIB} MiB for a "
           f"guest of {guest // MIB} MiB")
    expect(abs(guest - floor - size) <= 2 * MIB,
           f"balloon {size // MIB} MiB, guest {guest // MIB} MiB, floor "
           f"{floor // MIB} MiB: the balloon did not stop at the floor")
    actual = qmp.query_balloon()

    avail = meminfo_avail(ctx)
    mib = max(4, avail // MIB // 16)
    t0 = time.monotonic()
    rc, out = g.run(WORKLOAD.format(mib=mib), timeout=300)
    took = time.monotonic() - t0
    expect(rc == 0, f"the workload failed (rc {rc}): {out[-300:]}")
    t1 = time.monotonic()
    g.check("true")
    expect(time.monotonic() - t1 < 10, "the guest answers slowly")
    expect_no_oom_kill(ctx)
    after = debugfs_stats(ctx)
    expect(after["size_kib"] == stats["size_kib"],
           f"the balloon moved from {size // MIB} to "
           f"{after['size_kib'] // 1024} MiB without deflate-on-oom")
    ctx.info(f"floor {floor // MIB} MiB of a {guest // MIB} MiB guest; "
             f"actual {actual // MIB} MiB, MemAvailable {avail // MIB} MiB; "
             f"4 jobs of 3 x {mib} + {mib} MiB in {took:.1f} s")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio",
         balloon_props={"deflate-on-oom": "on"})
def test_ours_virtio_hog_during_inflation(ctx: Context) -> None:
    """With deflate-on-oom, the host asks for almost all of the guest and
    a 1 GiB memory hog starts while the balloon inflates: the hog
    completes, nothing is OOM-killed, no task hangs, and the balloon ends
    within the floor.  (Whether the balloon had to give memory back
    depends on who was faster, the hog or the balloon: it is reported,
    not asserted.)"""
    g, qmp = ctx.guest, ctx.guest.qmp
    watch_hung_tasks(ctx)
    g.check("mount -o remount,size=90% /tmp")
    qmp.balloon(64 * MIB)
    start = wait_for(lambda: debugfs_stats(ctx),
                     lambda s: s["size_kib"] >= 128 * 1024, 120,
                     lambda s: f"the balloon did not start inflating: {s}",
                     0.1)
    expect(start["size_kib"] < start["target_kib"],
           f"inflation was over before the hog started: {start}")
    t0 = time.monotonic()
    rc, out = g.run("dd if=/dev/zero of=/tmp/hog bs=1M count=1024 2>&1",
                    timeout=900)
    took = time.monotonic() - t0
    expect(rc == 0, f"the 1 GiB hog failed (rc {rc}): {out[-300:]}")
    expect_no_oom_kill(ctx)
    hung = hung_tasks(ctx)
    expect(not hung, "hung tasks: " + " | ".join(hung[:3]))
    stats = debugfs_stats(ctx)
    expect(stats["size_kib"] <= stats["target_kib"] + 2048,
           f"the balloon is above its target: {stats}")
    g.check("rm /tmp/hog")
    ctx.info(f"hog started at a balloon of {start['size_kib'] // 1024} MiB "
             f"(target {start['target_kib'] // 1024} MiB), took "
             f"{took:.1f} s; {stats['pressure']} pressure deflates gave "
             f"back {stats['pressure_free'] // 256} MiB, "
             f"{stats['reclaiming']} reclaim back-offs; balloon now "
             f"{stats['size_kib'] // 1024} MiB")


def expect_all_back(ctx: Context, before: dict[str, int], what: str) -> None:
    """Every ballooned page is the guest's again: MemTotal as before (the
    default device takes ballooned pages out of it), MemAvailable back."""
    total = ctx.guest.meminfo()["MemTotal"]
    expect(total == before["MemTotal"],
           f"{what}: MemTotal {total // MIB} MiB, was "
           f"{before['MemTotal'] // MIB} MiB")
    wait_for(lambda: meminfo_avail(ctx),
             lambda a: a >= before["MemAvailable"] - 128 * MIB, 60,
             lambda a: f"{what}: MemAvailable {a // MIB} MiB, was "
             f"{before['MemAvailable'] // MIB} MiB", 1)


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_device_del_full_balloon(ctx: Context) -> None:
    """The balloon device is hot-unplugged (QMP device_del) with 1 GiB
    ballooned: the driver gives every page back, and the console shows no
    problem."""
    g, qmp = ctx.guest, ctx.guest.qmp
    before = g.meminfo()
    move_balloon(ctx, GIB, "inflate")
    qmp.execute("device_del", id="balloon0")
    wait_for(qmp.poll_events,
             lambda ev: any(e.get("event") == "DEVICE_DELETED" for e in ev),
             60, lambda ev: "no DEVICE_DELETED event within 60 s", 0.5)
    expect(g.balloon_driver() is None and
           g.balloon_sysfs("device") is None,
           "the balloon device is still in the guest")
    left = g.check("ls /sys/kernel/debug/balloon/").split()
    expect(not left, f"debugfs still has balloons: {left}")
    expect_all_back(ctx, before, "after device_del")
    g.check("rmmod balloon_virtio && rmmod balloon_core")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_rmmod_mid_inflate(ctx: Context) -> None:
    """balloon_virtio is unloaded while the balloon inflates towards
    1.75 GiB (1.5 GiB, the floor allowing): rmmod succeeds, every page is
    the guest's again, and QEMU hears that the balloon is empty."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB
    before = g.meminfo()
    qmp.balloon(256 * MIB)
    # One command, so that no round trip separates the reading from the
    # unload: as soon as 64 MiB of an inflation of 1.5 GiB are done.
    out = g.check("f=$(echo /sys/kernel/debug/balloon/*/stats); i=0; "
                  "while [ $(sed -n 's/^size_kib //p' $f) -lt 65536 ] && "
                  "[ $i -lt 3000 ]; do i=$((i + 1)); usleep 10000; done; "
                  "cat $f; rmmod balloon_virtio && echo unloaded",
                  timeout=120)
    expect(out.rstrip().endswith("unloaded"), f"rmmod: {out[-300:]}")
    stats = dict((k, int(v)) for k, v in
                 (ln.split() for ln in out.splitlines()
                  if len(ln.split()) == 2 and ln.split()[1].isdigit()))
    expect(0 < stats["size_kib"] < stats["target_kib"],
           f"not mid-inflate at rmmod: size {stats['size_kib']} KiB, "
           f"target {stats['target_kib']} KiB")
    expect_all_back(ctx, before, "after rmmod")
    actual = qmp.query_balloon()
    expect(actual == full, f"QEMU's actual {actual // MIB} MiB after unload, "
           f"expected {full // MIB} MiB")
    g.check("rmmod balloon_core")
    ctx.info(f"unloaded at a balloon of {stats['size_kib'] // 1024} MiB "
             f"(target {stats['target_kib'] // 1024} MiB)")
