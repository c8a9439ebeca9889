"""Inflating and deflating: the in-tree driver and ours, compaction
of ballooned pages, deflate-on-OOM."""

from __future__ import annotations

import dataclasses
import time

from balloonrig.runner import Context, TestSkip, expect, rigtest, wait_for

from .helpers import (GIB, MIB, OUR_MODULES, debugfs_stats, fresh_stats,
                      expect_meminfo_balloon, expect_no_oom_kill,
                      meminfo_avail, meminfo_balloon, move_balloon)


@dataclasses.dataclass
class Cycle:
    """What one 2 GiB -> 1 GiB -> 2 GiB balloon cycle measured."""

    inflate_s: float
    deflate_s: float
    avail: tuple[int, int, int]
    recover_s: float


def _balloon_cycle(ctx: Context, check_guest=None) -> Cycle:
    """Inflate to 1 GiB and back, checking QEMU and the guest agree.

    *check_guest*, if given, is called while the balloon is inflated.
    """
    full = ctx.guest.spec.mem_mib * MIB
    start = ctx.guest.qmp.query_balloon()
    expect(abs(start - full) <= 4 * MIB, f"initial actual {start} != {full}")
    avail0 = meminfo_avail(ctx)

    inflate_s = move_balloon(ctx, GIB, "inflate")
    avail1 = meminfo_avail(ctx)
    drop = avail0 - avail1
    expect(drop >= 0.8 * (full - GIB),
           f"MemAvailable dropped by only {drop // MIB} MiB "
           f"({avail0 // MIB} -> {avail1 // MIB} MiB)")
    if check_guest:
        check_guest()

    deflate_s = move_balloon(ctx, full, "deflate")
    # Deflated pages are freed into the per-cpu page lists, which 6.7+
    # kernels drain only gradually (decay_pcp_high, ~8 MiB/s here), so
    # MemAvailable lags behind "actual": poll for it.
    t0 = time.monotonic()
    avail2 = wait_for(lambda: meminfo_avail(ctx),
                      lambda avail: avail >= avail0 - 0.1 * (full - GIB), 90,
                      lambda avail: f"MemAvailable did not recover in 90 s: "
                      f"{avail0 // MIB} -> {avail // MIB} MiB", 1)
    recover_s = time.monotonic() - t0
    return Cycle(inflate_s, deflate_s, (avail0, avail1, avail2), recover_s)


def _cycle_info(ctx: Context, c: Cycle) -> str:
    a0, a1, a2 = (a // MIB for a in c.avail)
    return (f"boot {ctx.guest.boot_seconds:.1f} s, inflate 1 GiB "
            f"{c.inflate_s:.1f} s, deflate {c.deflate_s:.1f} s, "
            f"MemAvailable {a0} -> {a1} -> {a2} MiB "
            f"(recovered after {c.recover_s:.1f} s)")


@rigtest(mode="intree", mem_mib=2048, smoke=True)
def test_intree_inflate_deflate(ctx: Context) -> None:
    """Inflate the in-tree virtio_balloon to 1 GiB and deflate it again."""
    qmp = ctx.guest.qmp
    cycle = _balloon_cycle(ctx)

    set_at = int(time.time())
    qmp.set_stats_interval(1)
    stats = fresh_stats(ctx, set_at - 1, 15, 0.5)
    total = stats["stats"].get("stat-total-memory", -1)
    expect(total > 0, f"no stat-total-memory in guest stats: {stats}")
    qmp.set_stats_interval(0)
    ctx.info(_cycle_info(ctx, cycle) +
             f", stat-total-memory {total // MIB} MiB")


def _meminfo_balloon_cycle(ctx: Context, ours: bool) -> None:
    """Inflate 1 GiB and back; "Balloon:" in /proc/meminfo follows, with
    our debugfs size too for *ours*.  Skipped at once on kernels without
    the line."""
    start = meminfo_balloon(ctx)
    if start is None:
        raise TestSkip("no Balloon: line in this kernel's /proc/meminfo")
    expect(start == 0, f"Balloon: {start // 1024} kB before inflating")
    full = ctx.guest.spec.mem_mib * MIB
    move_balloon(ctx, full - GIB, "inflate")
    inflated = expect_meminfo_balloon(ctx, "inflated")
    if ours:
        size = debugfs_stats(ctx)["size_kib"] * 1024
        expect(inflated == size, f"Balloon: {inflated // 1024} kB, our "
               f"debugfs {size // 1024} kB")
    expect(abs(inflated - GIB) <= 4 * MIB,
           f"Balloon: {inflated // 1024} kB after inflating 1 GiB")
    move_balloon(ctx, full, "deflate")
    deflated = expect_meminfo_balloon(ctx, "deflated")
    expect(deflated == 0, f"Balloon: {deflated // 1024} kB once deflated")
    ctx.info(f"Balloon: 0 -> {inflated // 1024} -> 0 kB")


@rigtest(mode="intree", mem_mib=2048)
def test_intree_meminfo_balloon(ctx: Context) -> None:
    """On a kernel whose /proc/meminfo has "Balloon:" (7.x), the line shows
    the in-tree virtio_balloon's 1 GiB as QEMU sees it, and 0 once it
    deflated; skipped at once on kernels without the line."""
    _meminfo_balloon_cycle(ctx, ours=False)


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_meminfo_balloon(ctx: Context) -> None:
    """On a kernel whose /proc/meminfo has "Balloon:" (7.x), the line
    shows our balloon: 1 GiB, what our debugfs and QEMU say, after
    inflating, and 0 after deflating; skipped on kernels without it."""
    _meminfo_balloon_cycle(ctx, ours=True)


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio", smoke=True)
def test_ours_virtio_inflate_deflate(ctx: Context) -> None:
    """Our balloon_virtio: inflate 1 GiB and back, debugfs agrees with QEMU,
    and unloading with a full balloon gives every page back."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB

    def debugfs_agrees() -> None:
        stats = debugfs_stats(ctx)
        balloon = full - qmp.query_balloon()
        expect(stats["size_kib"] * 1024 == balloon,
               f"debugfs size {stats['size_kib']} KiB, QEMU says "
               f"{balloon // 1024} KiB")
        expect(stats["target_kib"] * 1024 == full - GIB,
               f"debugfs target {stats['target_kib']} KiB")

    cycle = _balloon_cycle(ctx, debugfs_agrees)
    ctx.info(_cycle_info(ctx, cycle))

    move_balloon(ctx, GIB, "inflate before unload")
    # rmmod, not modprobe -r: busybox's would also try to remove virtio and
    # virtio_ring, which are modules still in use on 6.1.
    g.check("rmmod balloon_virtio")
    actual = qmp.query_balloon()
    expect(actual == full, f"after unloading with a full balloon QEMU's "
           f"actual is {actual // MIB} MiB, not {full // MIB} MiB")
    g.check("rmmod balloon_core")
    expect(not g.modules() & set(OUR_MODULES),
           f"still loaded: {sorted(g.modules() & set(OUR_MODULES))}")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_memory_returned(ctx: Context) -> None:
    """Inflating 1 GiB gives QEMU the memory back: its RSS drops by the
    balloon, once the guest has made nearly all its memory resident.  The
    guest's own counts agree, on every page size: MemTotal (the default
    device makes it shrink with the balloon) drops by what QEMU's actual
    says, and so do our debugfs size, its base and 2 MiB pages, and
    "Balloon:" where the kernel has it.  Deflating gives MemTotal back."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB
    total0 = g.meminfo()["MemTotal"]
    # Everything but 128 MiB of what the guest could hand out is touched
    # and freed: the balloon's pages then come from memory QEMU holds.
    g.fill_and_free(meminfo_avail(ctx) // MIB - 128)
    rss0 = g.qemu_rss()
    move_balloon(ctx, full - GIB, "inflate")
    rss1 = g.qemu_rss()

    balloon = full - qmp.query_balloon()
    stats = debugfs_stats(ctx)
    size = stats["size_kib"] * 1024
    expect(size == balloon, f"debugfs size {size // 1024} kB, QEMU's "
           f"balloon {balloon // 1024} kB")
    parts = stats["pages_4k"] * 4096 + stats["pages_2m"] * 2 * MIB
    expect(parts == size, f"debugfs pages_4k {stats['pages_4k']}, "
           f"pages_2m {stats['pages_2m']}: {parts // 1024} kB, size "
           f"{size // 1024} kB")
    total1 = g.meminfo()["MemTotal"]
    expect(total0 - total1 == balloon,
           f"MemTotal {total0 // 1024} -> {total1 // 1024} kB, QEMU's "
           f"balloon {balloon // 1024} kB")
    shown = meminfo_balloon(ctx)
    expect(shown is None or shown == balloon,
           f"Balloon: {shown} bytes, QEMU's balloon {balloon}")
    expect(rss0 - rss1 >= 0.9 * balloon,
           f"QEMU's RSS {rss0 // MIB} -> {rss1 // MIB} MiB for a balloon "
           f"of {balloon // MIB} MiB")

    move_balloon(ctx, full, "deflate")
    total2 = g.meminfo()["MemTotal"]
    expect(total2 == total0, f"MemTotal {total0 // 1024} kB before, "
           f"{total2 // 1024} kB after deflating")
    ctx.info(f"{g.page_size // 1024} KiB pages: RSS {rss0 // MIB} -> "
             f"{rss1 // MIB} MiB for {balloon // MIB} MiB ballooned; "
             f"MemTotal -{(total0 - total1) // MIB} MiB; "
             f"Balloon: {'-' if shown is None else shown // MIB} MiB")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_compaction(ctx: Context) -> None:
    """Compaction moves our ballooned pages: the host keeps the balloon's
    size, the guest's counters show the moves, nothing is lost."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB
    # Interleave the balloon with files, 64 MiB of each at a time, then
    # free the files: ballooned pages now sit between free holes all over
    # memory, so compaction's migrate scanner (from the bottom) meets some
    # while its free scanner (from the top) finds room above them, wherever
    # the allocator put things.  (One 700 MiB file above the balloon relied
    # on the allocator handing out high memory first; on 6.1 it often did
    # not, and nothing moved.)  Compaction is heuristic, so allow a few
    # rounds before calling it a failure.
    chunks = 10
    target = full - chunks * 64 * MIB
    first = debugfs_stats(ctx)
    for rounds in range(1, 4):
        if rounds > 1:
            move_balloon(ctx, full, "deflate before another round")
        for i in range(1, chunks + 1):
            g.check(f"dd if=/dev/zero of=/tmp/park{i} bs=1M count=64 "
                    "2>/dev/null")
            move_balloon(ctx, full - i * 64 * MIB, "inflate")
        g.check("rm /tmp/park*")
        before = debugfs_stats(ctx)
        for _ in range(3):
            g.check("echo 1 > /proc/sys/vm/compact_memory", timeout=120)
        after = debugfs_stats(ctx)
        if after["migrate"] > first["migrate"]:
            break
    moved = after["migrate"] - first["migrate"]
    vmstat = dict(ln.split() for ln in
                  g.read_file("/proc/vmstat").splitlines() if ln)
    ctx.info(f"compaction moved {moved} ballooned pages in {rounds} "
             f"round(s) ({after['migrate_fail']} refused), "
             f"vmstat balloon_migrate {vmstat.get('balloon_migrate')}")
    expect(moved > 0, "compaction moved no ballooned page")
    expect(int(vmstat.get("balloon_migrate", 0)) == after["migrate"],
           f"/proc/vmstat balloon_migrate {vmstat.get('balloon_migrate')} "
           f"!= debugfs migrate {after['migrate']}")
    expect(after["size_kib"] == before["size_kib"],
           f"balloon size changed: {before['size_kib']} -> "
           f"{after['size_kib']} KiB")
    actual = qmp.query_balloon()
    expect(actual == target, f"QEMU's actual moved to {actual // MIB} MiB")
    move_balloon(ctx, full, "deflate")
    g.check("rmmod balloon_virtio")
    expect(qmp.query_balloon() == full, "balloon not empty after unload")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio",
         balloon_props={"deflate-on-oom": "on"})
def test_ours_virtio_deflate_on_oom(ctx: Context) -> None:
    """With deflate-on-oom, a guest memory hog that needs more than is left
    completes with no OOM kill: the balloon gives memory back first, and
    holds inflation off so that it does not take it straight back."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB
    # 1.5 GiB, or as much as the guest floor allows (on a 16 KiB-page
    # kernel it keeps more than 512 MiB of a 2 GiB guest).
    qmp.balloon(full - 1536 * MIB)
    settled = wait_for(lambda: debugfs_stats(ctx),
                       lambda s: s["size_kib"] == s["target_kib"] > 0 and
                       qmp.query_balloon() == full - s["size_kib"] * 1024,
                       180, lambda s: f"the balloon did not settle: {s}", 0.5)
    balloon = settled["size_kib"] * 1024
    expect(balloon >= 1280 * MIB,
           f"the floor left a balloon of {balloon // MIB} MiB only")
    free = meminfo_avail(ctx)
    hog = free + 300 * MIB
    rc, out = g.run(f"dd if=/dev/zero of=/tmp/hog bs=1M count={hog // MIB}"
                    " 2>&1", timeout=600)
    expect(rc == 0, f"the {hog // MIB} MiB hog failed (rc {rc}): {out}")
    expect_no_oom_kill(ctx)
    stats = debugfs_stats(ctx)
    given = stats["pressure_free"] * 4096
    expect(stats["pressure"] > 0 and given >= hog - free - 64 * MIB,
           f"balloon gave back {given // MIB} MiB under pressure "
           f"({stats['pressure']} times) for a {hog // MIB} MiB hog with "
           f"{free // MIB} MiB available")
    actual = qmp.query_balloon()
    expect(actual >= full - balloon + given - 4 * MIB,
           f"QEMU's actual {actual // MIB} MiB does not show the "
           f"{given // MIB} MiB given back")
    # The host repeats its target (a config interrupt): within the hold-off
    # the balloon must not take the memory straight back.
    # (Memory is at the edge here: a later allocation may deflate it further,
    # which is right; only growing would be the ping-pong.)
    qmp.balloon(full - 1536 * MIB)
    time.sleep(3)
    again = debugfs_stats(ctx)
    expect(again["size_kib"] <= stats["size_kib"],
           f"the balloon re-inflated during its hold-off: "
           f"{stats['size_kib']} -> {again['size_kib']} KiB")
    expect(again["holdoff"] > 0, "no cycle was held off")
    ctx.info(f"hog {hog // MIB} MiB with {free // MIB} MiB available: "
             f"balloon gave back {given // MIB} MiB in {stats['pressure']} "
             f"OOM notifications, held off {again['holdoff']} cycles")
