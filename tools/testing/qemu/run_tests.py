#!/usr/bin/env python3
"""End-to-end balloon tests in QEMU/TCG guests running Debian kernels.

Usage::

    run_tests.py --series 6.12|6.1 [--modules DIR] [--cache DIR]
                 [-k NAME] [-v] [--list]

Prints one ``PASS:``/``FAIL:``/``SKIP: <series>/<test>`` line per test,
``# ...`` lines for information, an ``INFRA:`` line when a guest could not
be booted twice in a row, and ``N passed, N failed, N skipped`` last.
Exits 0 iff nothing failed.  Console logs of failed tests are kept under
``<cache>/runs/<series>/<test>/``.

The framework and runner are in :mod:`balloonrig.runner`.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
from balloonrig import initramfs  # noqa: E402
from balloonrig.runner import Context, expect, main, rigtest  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
OUR_MODULES = ("balloon_core", "balloon_vmw", "balloon_virtio")
#: The modprobe.d file ``make install`` installs.
MODPROBE_CONF = Path(__file__).resolve().parents[3] / "etc" / "modprobe.d" \
    / "balloon.conf"


# -- tests -------------------------------------------------------------------

def _meminfo_avail(ctx: Context) -> int:
    return ctx.guest.meminfo()["MemAvailable"]


@dataclasses.dataclass
class Cycle:
    """What one 2 GiB -> 1 GiB -> 2 GiB balloon cycle measured."""

    inflate_s: float
    deflate_s: float
    avail: tuple[int, int, int]
    recover_s: float


def _move_balloon(ctx: Context, target: int, what: str) -> float:
    """Set the balloon target and wait for QEMU's actual to reach it."""
    def progress(t: float, actual: int) -> None:
        ctx.log(f"t={t:6.2f}s actual={actual // MIB} MiB")

    ctx.guest.qmp.balloon(target)
    res = ctx.guest.qmp.wait_balloon(target, timeout=180, tolerance=4 * MIB,
                                     interval=0.25, on_sample=progress)
    expect(res.reached, f"{what}: actual {res.actual // MIB} MiB after "
           f"{res.elapsed:.0f} s (target {target // MIB} MiB)")
    return res.elapsed


def _balloon_cycle(ctx: Context, check_guest=None) -> Cycle:
    """Inflate to 1 GiB and back, checking QEMU and the guest agree.

    *check_guest*, if given, is called while the balloon is inflated.
    """
    full = ctx.guest.spec.mem_mib * MIB
    start = ctx.guest.qmp.query_balloon()
    expect(abs(start - full) <= 4 * MIB, f"initial actual {start} != {full}")
    avail0 = _meminfo_avail(ctx)

    inflate_s = _move_balloon(ctx, GIB, "inflate")
    avail1 = _meminfo_avail(ctx)
    drop = avail0 - avail1
    expect(drop >= 0.8 * (full - GIB),
           f"MemAvailable dropped by only {drop // MIB} MiB "
           f"({avail0 // MIB} -> {avail1 // MIB} MiB)")
    if check_guest:
        check_guest()

    deflate_s = _move_balloon(ctx, full, "deflate")
    # Deflated pages are freed into the per-cpu page lists, which 6.7+
    # kernels drain only gradually (decay_pcp_high, ~8 MiB/s here), so
    # MemAvailable lags behind "actual": poll for it.
    t0 = time.monotonic()
    while True:
        avail2 = _meminfo_avail(ctx)
        recover_s = time.monotonic() - t0
        if avail2 >= avail0 - 0.1 * (full - GIB):
            break
        expect(recover_s < 90, f"MemAvailable did not recover in 90 s: "
               f"{avail0 // MIB} -> {avail2 // MIB} MiB")
        time.sleep(1)
    return Cycle(inflate_s, deflate_s, (avail0, avail1, avail2), recover_s)


def _cycle_info(ctx: Context, c: Cycle) -> str:
    a0, a1, a2 = (a // MIB for a in c.avail)
    return (f"boot {ctx.guest.boot_seconds:.1f} s, inflate 1 GiB "
            f"{c.inflate_s:.1f} s, deflate {c.deflate_s:.1f} s, "
            f"MemAvailable {a0} -> {a1} -> {a2} MiB "
            f"(recovered after {c.recover_s:.1f} s)")


def _debugfs_stats(ctx: Context, name: str = "stats") -> dict[str, int]:
    """Read one of our balloon's "key value" debugfs files as a dict."""
    text = ctx.guest.check(f"cat /sys/kernel/debug/balloon/*/{name}")
    return {k: int(v) for k, v in (ln.split() for ln in text.splitlines()
                                   if ln.strip())}


@rigtest(mode="intree", mem_mib=2048)
def test_intree_inflate_deflate(ctx: Context) -> None:
    """Inflate the in-tree virtio_balloon to 1 GiB and deflate it again."""
    qmp = ctx.guest.qmp
    cycle = _balloon_cycle(ctx)

    set_at = int(time.time())
    qmp.set_stats_interval(1)
    deadline = time.monotonic() + 15
    while True:
        stats = qmp.guest_stats()
        if stats.get("last-update", 0) >= set_at:
            break
        expect(time.monotonic() < deadline,
               f"guest stats not refreshed after 15 s: {stats}")
        time.sleep(0.5)
    total = stats["stats"].get("stat-total-memory", -1)
    expect(total > 0, f"no stat-total-memory in guest stats: {stats}")
    qmp.set_stats_interval(0)
    ctx.info(_cycle_info(ctx, cycle) +
             f", stat-total-memory {total // MIB} MiB")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_inflate_deflate(ctx: Context) -> None:
    """Our balloon_virtio: inflate 1 GiB and back, debugfs agrees with QEMU,
    and unloading with a full balloon gives every page back."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB

    def debugfs_agrees() -> None:
        stats = _debugfs_stats(ctx)
        balloon = full - qmp.query_balloon()
        expect(stats["size_kib"] * 1024 == balloon,
               f"debugfs size {stats['size_kib']} KiB, QEMU says "
               f"{balloon // 1024} KiB")
        expect(stats["target_kib"] * 1024 == full - GIB,
               f"debugfs target {stats['target_kib']} KiB")

    cycle = _balloon_cycle(ctx, debugfs_agrees)
    ctx.info(_cycle_info(ctx, cycle))

    _move_balloon(ctx, GIB, "inflate before unload")
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
    first = _debugfs_stats(ctx)
    for rounds in range(1, 4):
        if rounds > 1:
            _move_balloon(ctx, full, "deflate before another round")
        for i in range(1, chunks + 1):
            g.check(f"dd if=/dev/zero of=/tmp/park{i} bs=1M count=64 "
                    "2>/dev/null")
            _move_balloon(ctx, full - i * 64 * MIB, "inflate")
        g.check("rm /tmp/park*")
        before = _debugfs_stats(ctx)
        for _ in range(3):
            g.check("echo 1 > /proc/sys/vm/compact_memory", timeout=120)
        after = _debugfs_stats(ctx)
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
    _move_balloon(ctx, full, "deflate")
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
    balloon = 1536 * MIB
    _move_balloon(ctx, g.spec.mem_mib * MIB - balloon, "inflate")
    free = _meminfo_avail(ctx)
    hog = free + 300 * MIB
    rc, out = g.run(f"dd if=/dev/zero of=/tmp/hog bs=1M count={hog // MIB}"
                    " 2>&1", timeout=600)
    expect(rc == 0, f"the {hog // MIB} MiB hog failed (rc {rc}): {out}")
    killed = [ln for ln in g.dmesg().splitlines()
              if "Out of memory" in ln or "oom-kill" in ln]
    expect(not killed, "the OOM killer ran: " + " | ".join(killed[:3]))
    stats = _debugfs_stats(ctx)
    given = stats["pressure_free"] * 4096
    expect(stats["pressure"] > 0 and given >= hog - free - 64 * MIB,
           f"balloon gave back {given // MIB} MiB under pressure "
           f"({stats['pressure']} times) for a {hog // MIB} MiB hog with "
           f"{free // MIB} MiB available")
    actual = qmp.query_balloon()
    expect(actual >= g.spec.mem_mib * MIB - balloon + given - 4 * MIB,
           f"QEMU's actual {actual // MIB} MiB does not show the "
           f"{given // MIB} MiB given back")
    # The host repeats its target (a config interrupt): within the hold-off
    # the balloon must not take the memory straight back.
    # (Memory is at the edge here: a later allocation may deflate it further,
    # which is right; only growing would be the ping-pong.)
    qmp.balloon(g.spec.mem_mib * MIB - balloon)
    time.sleep(3)
    again = _debugfs_stats(ctx)
    expect(again["size_kib"] <= stats["size_kib"],
           f"the balloon re-inflated during its hold-off: "
           f"{stats['size_kib']} -> {again['size_kib']} KiB")
    expect(again["holdoff"] > 0, "no cycle was held off")
    ctx.info(f"hog {hog // MIB} MiB with {free // MIB} MiB available: "
             f"balloon gave back {given // MIB} MiB in {stats['pressure']} "
             f"OOM notifications, held off {again['holdoff']} cycles")


# -- virtio protocol (issue 6) ----------------------------------------------

#: Stats QEMU 7.2 knows (tags 0-9); it ignores the newer tags 10-15.
QEMU_STATS = ("stat-swap-in", "stat-swap-out", "stat-major-faults",
              "stat-minor-faults", "stat-free-memory", "stat-total-memory",
              "stat-available-memory", "stat-disk-caches",
              "stat-htlb-pgalloc", "stat-htlb-pgfail")

#: virtio balloon feature bits (include/uapi/linux/virtio_balloon.h).
F_STATS_VQ, F_FREE_PAGE_HINT, F_PAGE_POISON, F_REPORTING = 1, 3, 4, 5


def _balloon_features(ctx: Context) -> str:
    """The balloon device's negotiated features, "0"/"1" per bit."""
    return ctx.guest.check(
        "for d in /sys/bus/virtio/devices/virtio*; do "
        "[ \"$(cat $d/device)\" = 0x0005 ] && cat $d/features; done").strip()


def _has(features: str, bit: int) -> bool:
    return len(features) > bit and features[bit] == "1"


def _fresh_stats(ctx: Context, newer_than: int, timeout: float = 20):
    """Wait for QMP guest stats updated after *newer_than* (epoch s)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = ctx.guest.qmp.guest_stats()
        if stats.get("last-update", 0) > newer_than:
            return stats
        expect(time.monotonic() < deadline,
               f"guest stats not refreshed after {timeout} s: {stats}")
        time.sleep(0.2)


def _oom_kills(ctx: Context) -> list[str]:
    return [ln for ln in ctx.guest.dmesg().splitlines()
            if "Out of memory" in ln or "oom-kill" in ln]


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_stats(ctx: Context) -> None:
    """Guest stats through QMP: every tag QEMU knows, a fresh timestamp on
    each poll, and values that agree with the guest's own numbers."""
    g, qmp = ctx.guest, ctx.guest.qmp
    expect(_has(_balloon_features(ctx), F_STATS_VQ), "STATS_VQ not accepted")
    set_at = int(time.time()) - 1
    qmp.set_stats_interval(1)
    first = _fresh_stats(ctx, set_at)
    # Fault some pages in, so that the counters must move.
    g.check("dd if=/dev/zero of=/tmp/s bs=1M count=64 2>/dev/null; rm /tmp/s")
    second = _fresh_stats(ctx, first["last-update"])
    third = _fresh_stats(ctx, second["last-update"])
    mem = g.meminfo()
    qmp.set_stats_interval(0)

    st = third["stats"]
    missing = [k for k in QEMU_STATS if st.get(k, -1) < 0]
    expect(not missing, f"stats missing: {missing} in {st}")
    now = time.time()
    expect(now - third["last-update"] < 5,
           f"last-update {third['last-update']} is {now - third['last-update']:.0f} s old")
    total = st["stat-total-memory"]
    expect(total == mem["MemTotal"],
           f"stat-total-memory {total} != MemTotal {mem['MemTotal']}")
    expect(0 < st["stat-free-memory"] <= total and
           0 < st["stat-available-memory"] <= total,
           f"free/available out of range: {st}")
    avail_diff = abs(st["stat-available-memory"] - mem["MemAvailable"])
    expect(avail_diff < 64 * MIB,
           f"stat-available-memory {st['stat-available-memory'] // MIB} MiB, "
           f"MemAvailable {mem['MemAvailable'] // MIB} MiB")
    faults = [s["stats"]["stat-minor-faults"] for s in (first, second, third)]
    expect(faults[0] < faults[1] <= faults[2],
           f"minor faults did not move between refreshes: {faults}")
    ctx.info(f"3 refreshes, last-update {third['last-update'] - set_at} s "
             f"after enabling; total {total // MIB} MiB, available "
             f"{st['stat-available-memory'] // MIB} MiB, minor faults "
             f"{faults}")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_flapping_target(ctx: Context) -> None:
    """The host moves the target every few milliseconds for a few seconds,
    between nothing, "all of it", above-RAM values and sizes in between:
    the guest stays alive, nothing is OOM-killed, and the balloon ends at
    the final target."""
    g, qmp = ctx.guest, ctx.guest.qmp
    full = g.spec.mem_mib * MIB
    # QMP "balloon" takes the guest size wanted: 1 byte means "balloon all
    # of it" (num_pages = all of RAM), a size above RAM means num_pages 0.
    values = (1, full // 2, 1 << 62, full - 64 * MIB, 1, full, 768 * MIB)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 4:
        qmp.balloon(values[n % len(values)])
        n += 1
        time.sleep(0.005)
    final = 1536 * MIB
    settle = _move_balloon(ctx, final, "settle after flapping")
    g.check("true")
    killed = _oom_kills(ctx)
    expect(not killed, "the OOM killer ran: " + " | ".join(killed[:3]))
    stats = _debugfs_stats(ctx)
    expect(stats["target_kib"] * 1024 == full - final and
           stats["size_kib"] == stats["target_kib"],
           f"debugfs after settling: target {stats['target_kib']} KiB, "
           f"size {stats['size_kib']} KiB")
    ctx.info(f"{n} target changes in 4 s ({stats['kick']} kicks, "
             f"{stats['timer']} cycles, {stats['target_clamped']} clamped); "
             f"settled at {final // MIB} MiB {settle:.1f} s later")


def _expect_reporting_returns(ctx: Context, mib: int) -> str:
    """Fill and free *mib* MiB; QEMU's RSS must drop by 3/4 of it within
    60 s, through free page reports alone.  The filled level is read while
    the guest still holds the memory, so reports that go out as soon as it
    is freed cannot race the reading.  Returns what it saw."""
    before = ctx.guest.qemu_rss()
    ctx.guest.fill(mib)
    filled = ctx.guest.qemu_rss()
    ctx.guest.free_fill()
    t0 = time.monotonic()
    while True:
        now = ctx.guest.qemu_rss()
        if filled - now >= mib * MIB * 3 // 4:
            break
        expect(time.monotonic() - t0 < 60,
               f"QEMU RSS {before // MIB} -> {filled // MIB} MiB after "
               f"filling {mib} MiB, still {now // MIB} MiB 60 s after "
               "freeing it")
        time.sleep(1)
    return (f"QEMU RSS {before // MIB} -> {filled // MIB} -> {now // MIB} "
            f"MiB, {time.monotonic() - t0:.1f} s after freeing {mib} MiB")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio",
         balloon_props={"free-page-reporting": "on"})
def test_ours_virtio_free_page_reporting(ctx: Context) -> None:
    """Free page reporting: freed guest memory goes back to the host (QEMU's
    RSS drops) without ballooning; PAGE_POISON is not accepted, since the
    Debian kernel neither poisons nor zeroes freed pages."""
    feats = _balloon_features(ctx)
    expect(_has(feats, F_REPORTING), f"REPORTING not accepted: {feats}")
    expect(not _has(feats, F_PAGE_POISON), f"PAGE_POISON accepted: {feats}")
    ctx.info(_expect_reporting_returns(ctx, 1024))


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio", cmdline=("page_poison=1",),
         balloon_props={"free-page-reporting": "on"})
def test_ours_virtio_page_poison(ctx: Context) -> None:
    """A guest that poisons freed pages accepts PAGE_POISON and tells the
    device the pattern: QEMU then keeps reported pages (a device that
    dropped them would hand back zeroes, which the guest's poison check
    reports as memory corruption when it allocates them again)."""
    g = ctx.guest
    feats = _balloon_features(ctx)
    expect(_has(feats, F_PAGE_POISON) and _has(feats, F_REPORTING),
           f"PAGE_POISON and REPORTING not both accepted: {feats}")
    before = ctx.guest.qemu_rss()
    ctx.guest.fill(512)
    filled = ctx.guest.qemu_rss()
    ctx.guest.free_fill()
    time.sleep(15)  # reports go out within a few seconds of the free
    kept = ctx.guest.qemu_rss()
    # Allocate it all again: every page is checked for the poison pattern.
    ctx.guest.fill_and_free(1024)
    bad = [ln for ln in g.dmesg().splitlines() if "corruption" in ln]
    expect(not bad, "poisoned pages came back changed: " + " | ".join(bad[:3]))
    ctx.info(f"QEMU RSS {before // MIB} -> {filled // MIB} -> {kept // MIB} "
             "MiB 15 s after freeing 512 MiB (QEMU keeps poisoned pages)")


@rigtest(mode="ours", needs_modules=True, mem_mib=1024,
         expect_driver="balloon_virtio", cmdline=("init_on_free=1",),
         balloon_props={"free-page-reporting": "on", "page-poison": "off"})
def test_ours_virtio_no_reporting_without_poison(ctx: Context) -> None:
    """A guest that zeroes freed pages, on a device without PAGE_POISON,
    does not report free pages (the device could not keep them zeroed)."""
    feats = _balloon_features(ctx)
    expect(not _has(feats, F_REPORTING) and not _has(feats, F_PAGE_POISON),
           f"REPORTING or PAGE_POISON accepted: {feats}")
    _move_balloon(ctx, 512 * MIB, "inflate")
    _move_balloon(ctx, GIB, "deflate")


#: A balloon device that hints free pages; QEMU needs an iothread for it.
HINT_DEVICE = {"balloon_props": {"free-page-hint": "on", "iothread": "iot0"},
               "qemu_args": ("-object", "iothread,id=iot0")}


def _migrate_to_null(ctx: Context, bandwidth: int) -> int:
    """Migrate the guest into /dev/null, let it run on; return how many
    bytes of ordinary (not all-zero) pages QEMU copied."""
    qmp = ctx.guest.qmp
    qmp.migrate_to_null(bandwidth)
    info = qmp.wait_migration()
    expect(info["status"] == "completed", f"migration {info['status']}: "
           f"{info.get('error-desc', '')}")
    qmp.execute("cont")
    return int(info["ram"]["normal-bytes"])


def _held_mib(st: dict[str, int]) -> int:
    return st["held"] * st["block_kib"] // 1024


def _wait_hinting(ctx: Context, done: Callable[[dict[str, int]], bool],
                  timeout: float, what: str) -> dict[str, int]:
    """Poll the driver's hinting counters until *done(counters)*; return
    them.  Fails with *what* and the counters after *timeout* s."""
    deadline = time.monotonic() + timeout
    while True:
        st = _debugfs_stats(ctx, "hinting")
        if done(st):
            return st
        expect(time.monotonic() < deadline, f"{what} after {timeout:.0f} s "
               f"({_held_mib(st)} MiB held): {st}")
        time.sleep(0.5)


def _wait_hints_back(ctx: Context) -> dict[str, int]:
    """Wait until the driver holds no hinted block; return the counters."""
    return _wait_hinting(ctx, lambda st: st["held"] == 0, 30,
                         "hinted blocks still held after the host said DONE")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio", **HINT_DEVICE)
def test_ours_virtio_free_page_hinting(ctx: Context) -> None:
    """Free page hinting: a live migration does not copy the guest's free
    memory.  The guest dirties and frees 1 GiB and migrates, twice: first
    without balloon_virtio (the control), then with it.  With it QEMU copies
    far less, and once the host says DONE the guest has every hinted block
    back."""
    g = ctx.guest
    feats = _balloon_features(ctx)
    expect(_has(feats, F_FREE_PAGE_HINT), f"FREE_PAGE_HINT not accepted: "
           f"{feats}")
    g.check("rmmod balloon_virtio")
    g.fill_and_free(1024, nonzero=True)
    control = _migrate_to_null(ctx, 256 * MIB)
    expect(control >= 900 * MIB, f"the control migration copied only "
           f"{control // MIB} MiB: it cannot show what hinting saves")

    g.check("modprobe balloon_virtio")
    expect(g.balloon_driver() == "balloon_virtio", "balloon_virtio did not "
           "bind again")
    g.fill_and_free(1024, nonzero=True)
    free = g.meminfo()["MemFree"]
    hinted = _migrate_to_null(ctx, 256 * MIB)
    st = _wait_hints_back(ctx)
    expect(hinted <= 0.6 * control, f"with hinting QEMU copied "
           f"{hinted // MIB} MiB, without {control // MIB} MiB")
    hinted_mib = st["hinted"] * st["block_kib"] // 1024
    expect(st["runs"] >= 1 and hinted_mib >= 512,
           f"hinted {hinted_mib} MiB in {st['runs']} runs: {st}")
    after = g.meminfo()["MemFree"]
    expect(after >= free - 128 * MIB, f"MemFree {free // MIB} MiB before "
           f"the migration, {after // MIB} MiB after the blocks came back")
    ctx.info(f"QEMU copied {control // MIB} MiB without hinting, "
             f"{hinted // MIB} MiB with; {st['runs']} runs hinted "
             f"{hinted_mib} MiB, all given back (MemFree {free // MIB} -> "
             f"{after // MIB} MiB)")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio", **HINT_DEVICE)
def test_ours_virtio_hinting_under_pressure(ctx: Context) -> None:
    """While a slow migration runs, the hinted blocks hold nearly all the
    guest's free memory.  A guest that then needs 1 GiB gets it (the
    shrinker hands blocks back) with no OOM kill, and cancelling the
    migration gives back the rest."""
    g, qmp = ctx.guest, ctx.guest.qmp
    qmp.migrate_to_null(8 * MIB)
    held_mib = _held_mib(_wait_hinting(
        ctx, lambda st: _held_mib(st) >= 1024, 60,
        "less than 1024 MiB hinted into the migration"))
    g.fill_and_free(1024)
    during = _debugfs_stats(ctx, "hinting")
    killed = _oom_kills(ctx)
    expect(not killed, "the OOM killer ran: " + " | ".join(killed[:3]))
    expect(during["shrunk"] > 0, f"no block given back under pressure: "
           f"{during}")
    qmp.execute("migrate_cancel")
    info = qmp.wait_migration()
    expect(info["status"] == "cancelled", f"migration {info['status']}")
    st = _wait_hints_back(ctx)
    ctx.info(f"held {held_mib} MiB; filling 1 GiB took back "
             f"{during['shrunk'] * st['block_kib'] // 1024} MiB through the "
             f"shrinker; the rest came back on cancel")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio",
         balloon_props={**HINT_DEVICE["balloon_props"],
                        "free-page-reporting": "on"},
         qemu_args=HINT_DEVICE["qemu_args"])
def test_ours_virtio_hinting_and_reporting(ctx: Context) -> None:
    """A device with both free page hinting and reporting: both accepted,
    and reports reach QEMU's reporting queue, which comes after the
    hinting queue (QEMU's RSS drops), so the queues line up."""
    feats = _balloon_features(ctx)
    expect(_has(feats, F_FREE_PAGE_HINT) and _has(feats, F_REPORTING) and
           _has(feats, F_STATS_VQ), f"features {feats}")
    ctx.info(_expect_reporting_returns(ctx, 512))


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_virtio_alias_one_driver(ctx: Context) -> None:
    """The module alias matches the balloon device, as the in-tree driver's
    does; with both loaded, whichever came first keeps the device, and the
    other loads and unloads cleanly without binding."""
    g = ctx.guest
    alias = g.check(
        "for d in /sys/bus/virtio/devices/virtio*; do "
        "[ \"$(cat $d/device)\" = 0x0005 ] && cat $d/modalias; done").strip()
    expect(alias.startswith("virtio:d00000005"), f"modalias {alias!r}")
    table = g.check("cat /lib/modules/$(uname -r)/modules.alias")
    owners = sorted({ln.split()[-1] for ln in table.splitlines()
                     if ln.startswith("alias virtio:d00000005")})
    expect(owners == ["balloon_virtio", "virtio_balloon"],
           f"modules claiming the balloon alias: {owners}")
    for first, second in (("balloon_virtio", "virtio_balloon"),
                          ("virtio_balloon", "balloon_virtio")):
        g.check(f"modprobe {first} && modprobe {second}")
        bound = g.balloon_driver()
        expect(bound == first, f"loaded {first} then {second}: the device "
               f"is bound to {bound}")
        g.check(f"rmmod {second} && rmmod {first}")
    g.check("rmmod balloon_core")
    ctx.info(f"{alias} -> {owners}; the first loaded keeps the device")


@rigtest(mode="none", needs_modules=True)
def test_ours_load_unload(ctx: Context) -> None:
    """Load and unload our modules; no oops/WARNING allowed."""
    g = ctx.guest
    present = {p.name.removesuffix(".ko") for p in ctx.our_modules}
    expect("balloon_core" in present,
           f"no balloon_core.ko among {sorted(present)}")
    g.check("modprobe balloon_core")
    expect("balloon_core" in g.modules(), "balloon_core not in /proc/modules")
    for mod in ("balloon_vmw", "balloon_virtio"):
        if mod in present:
            rc, out = g.run(f"modprobe {mod}")
            ctx.info(f"modprobe {mod}: rc={rc} {out.strip()[-200:]}")
    ctx.info(f"balloon device bound to: {g.balloon_driver()}")
    loaded = g.modules()
    for mod in reversed(OUR_MODULES):
        if mod in loaded:
            g.check(f"rmmod {mod}")
    left = g.modules() & set(OUR_MODULES)
    expect(not left, f"still loaded after rmmod: {sorted(left)}")
    ctx.log("taint: " + g.read_file("/proc/sys/kernel/tainted").strip())


PARAMS = "/sys/module/balloon_core/parameters"


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_load_parameters(ctx: Context) -> None:
    """Parameters given at load are judged together, whatever their order:
    a bad one is clamped or ignored with one log line and the module
    loads.  Later, a bad write through sysfs is refused."""
    g = ctx.guest
    # (modprobe arguments, values then, warnings logged), from defaults
    # alloc_min 512, alloc_max 2048, range 1..65536.
    cases = (
        ("alloc_min=4096 alloc_max=8192", (4096, 8192), 0),
        ("alloc_max=8192 alloc_min=4096", (4096, 8192), 0),
        ("alloc_min=4096", (2048, 2048), 1),
        ("alloc_min=4096 alloc_max=100000", (4096, 65536), 1),
        ("alloc_min=lots alloc_max=8192", (512, 8192), 1),
    )
    for n, (args, want, warned) in enumerate(cases):
        mark = f"balloon-test: load {n}"
        g.check(f"echo '{mark}' > /dev/kmsg && modprobe balloon_core {args}")
        got = tuple(int(g.read_file(f"{PARAMS}/{p}"))
                    for p in ("alloc_min", "alloc_max"))
        log = g.dmesg().split(mark, 1)[1]
        # (Not the taint lines the first load of the module logs.)
        lines = [ln for ln in log.splitlines()
                 if "balloon_core: alloc_" in ln]
        g.check("rmmod balloon_core")
        expect(got == want, f"modprobe balloon_core {args}: alloc_min, "
               f"alloc_max = {got}, expected {want}")
        expect(len(lines) == warned, f"modprobe balloon_core {args}: "
               f"{len(lines)} log lines, expected {warned}: {lines}")
        ctx.log(f"{args} -> {got} {lines}")

    g.check("modprobe balloon_core")
    rc, _ = g.run(f"echo 70000 > {PARAMS}/alloc_max")
    expect(rc != 0, "a write of alloc_max=70000 was accepted")
    rc, _ = g.run(f"echo 4096 > {PARAMS}/alloc_min")
    expect(rc != 0, "a write of alloc_min=4096 above alloc_max was accepted")
    got = g.read_file(f"{PARAMS}/alloc_max").strip()
    expect(got == "2048", f"alloc_max is {got} after refused writes")
    g.check("rmmod balloon_core")
    ctx.info(f"{len(cases)} load-time combinations loaded; bad sysfs "
             "writes refused")


TRACE_EVENTS = ("balloon_core_target", "balloon_core_inflate",
                "balloon_core_deflate", "balloon_core_refused",
                "balloon_core_reset", "balloon_core_pressure")


def _trace_fields(text: str, event: str) -> list[dict[str, str]]:
    """Return the key=value fields of every *event* line of a trace."""
    out = []
    for ln in text.splitlines():
        if f" {event}: " in ln:
            body = ln.split(f" {event}: ", 1)[1]
            out.append(dict(f.split("=", 1) for f in body.split()[1:]
                            if "=" in f))
    return out


@rigtest(mode="ours", needs_modules=True, mem_mib=1024,
         expect_driver="balloon_virtio")
def test_ours_tracepoints(ctx: Context) -> None:
    """Our tracepoints, read through tracefs: the target the host set, and
    inflate and deflate batches that add up to the balloon's moves."""
    g = ctx.guest
    tr = "/sys/kernel/tracing"
    g.check(f"[ -e {tr}/trace ] || mount -t tracefs nodev {tr}")
    events = set(g.check(f"ls {tr}/events/balloon_core").split())
    expect(set(TRACE_EVENTS) <= events,
           f"tracefs has {sorted(events)}, expected {TRACE_EVENTS}")
    g.check(f"echo 1 > {tr}/events/balloon_core/enable && echo > {tr}/trace")

    full = g.spec.mem_mib * MIB
    units = 64 * MIB // 4096
    _move_balloon(ctx, full - 64 * MIB, "inflate")
    _move_balloon(ctx, full, "deflate")
    g.check(f"echo 0 > {tr}/events/balloon_core/enable")
    text = g.check(f"cat {tr}/trace")

    targets = [int(f["target"]) for f in _trace_fields(text, "balloon_core_target")]
    expect(units in targets and 0 in targets,
           f"targets traced: {sorted(set(targets))}, expected {units} and 0")
    infl = _trace_fields(text, "balloon_core_inflate")
    defl = _trace_fields(text, "balloon_core_deflate")
    put = sum(int(f["done"]) << int(f["order"]) for f in infl)
    took = sum(int(f["done"]) << int(f["order"]) for f in defl)
    expect(put == units and took == units,
           f"traced {put} pages in and {took} out, expected {units} each")
    expect(all(f["ret"] == "0" for f in infl + defl),
           f"failed batches: {[f for f in infl + defl if f['ret'] != '0']}")
    ctx.info(f"{len(infl)} inflate and {len(defl)} deflate batches traced, "
             f"{put} pages each way")


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_vmw_not_vmware(ctx: Context) -> None:
    """Off VMware, modprobe balloon_vmw fails with ENODEV: it loads nothing
    else (no vmw_vmci), logs nothing, and balloon_core still unloads."""
    g = ctx.guest
    present = {p.name.removesuffix(".ko") for p in ctx.our_modules}
    expect("balloon_vmw" in present,
           f"no balloon_vmw.ko among {sorted(present)}")
    before = g.check("dmesg").count("\n")
    rc, out = g.run("modprobe balloon_vmw")
    expect(rc != 0 and "No such device" in out,
           f"modprobe balloon_vmw: rc={rc} {out.strip()!r}")
    loaded = g.modules()
    expect("balloon_vmw" not in loaded and "vmw_vmci" not in loaded,
           f"loaded after the failed modprobe: {sorted(loaded)}")
    said = [ln for ln in g.check("dmesg").splitlines()[before:]
            if "balloon_vmw" in ln or "vmw_vmci" in ln]
    expect(not said, f"kernel log: {said}")
    expect("balloon_core" in loaded, "balloon_core was not pulled in")
    g.check("rmmod balloon_core")
    expect("balloon_core" not in g.modules(), "balloon_core still loaded")
    ctx.info(f"modprobe balloon_vmw: {out.strip()}")


def _balloon_modalias(ctx: Context) -> str:
    """Return the modalias of the guest's virtio balloon device (id 5)."""
    out = ctx.guest.check(
        "for d in /sys/bus/virtio/devices/virtio*; do "
        "[ \"$(cat $d/device)\" = 0x0005 ] && cat $d/modalias; done; true")
    expect(out.strip(), "no virtio balloon device in the guest")
    return out.split()[0]


def _modprobe_plan(ctx: Context, args: str) -> list[str]:
    """Return the modules ``modprobe -D args`` would insert, in order."""
    out = ctx.guest.check(f"modprobe -D {args}")
    return [initramfs.modname(ln.split()[1]) for ln in out.splitlines()
            if ln.startswith("insmod ")]


@rigtest(mode="none", needs_modules=True, mem_mib=1024)
def test_ours_modprobe_blacklist(ctx: Context) -> None:
    """With our modprobe.d file installed, resolving the balloon device's
    modalias (as udev does) loads balloon_core and balloon_virtio, and not
    the in-tree virtio_balloon."""
    g = ctx.guest
    alias = _balloon_modalias(ctx)
    expect(g.balloon_driver() is None,
           f"balloon device already bound to {g.balloon_driver()}")
    # Without the file both drivers match the alias: the blacklist matters.
    before = _modprobe_plan(ctx, alias)
    expect("virtio_balloon" in before and "balloon_virtio" in before,
           f"without the blacklist {alias} resolves to {before}, expected "
           f"both virtio_balloon and balloon_virtio")

    conf = base64.b64encode(MODPROBE_CONF.read_bytes()).decode()
    g.check(f"mkdir -p /etc/modprobe.d && echo {conf} | base64 -d "
            f"> /etc/modprobe.d/{MODPROBE_CONF.name}")
    after = _modprobe_plan(ctx, f"-b {alias}")
    ours = [m for m in after if m in OUR_MODULES]
    expect(ours == ["balloon_core", "balloon_virtio"] and
           "virtio_balloon" not in after,
           f"with the blacklist {alias} resolves to {after}")

    g.check(f"modprobe -b {alias}")
    loaded = g.modules()
    expect({"balloon_core", "balloon_virtio"} <= loaded and
           "virtio_balloon" not in loaded,
           f"modprobe -b {alias} loaded {sorted(loaded)}")
    drivers = set(g.check("ls /sys/bus/virtio/drivers").split())
    expect("virtio_balloon" not in drivers,
           f"virtio_balloon registered: {sorted(drivers)}")
    bound = g.balloon_driver()
    expect(bound == "balloon_virtio", f"balloon device bound to {bound}")
    ctx.info(f"{alias}: {' '.join(before)} without the blacklist, "
             f"{' '.join(after)} with it; bound to {bound}")

if __name__ == "__main__":
    sys.exit(main())
