"""The virtio protocol: guest statistics, a target that keeps moving."""

from __future__ import annotations

import time

from balloonrig.runner import Context, expect, rigtest

from .helpers import (F_STATS_VQ, MIB, balloon_features, debugfs_stats,
                      expect_no_oom_kill, fresh_stats, has_feature,
                      move_balloon)

#: Stats QEMU 7.2 knows (tags 0-9); it ignores the newer tags 10-15.
QEMU_STATS = ("stat-swap-in", "stat-swap-out", "stat-major-faults",
              "stat-minor-faults", "stat-free-memory", "stat-total-memory",
              "stat-available-memory", "stat-disk-caches",
              "stat-htlb-pgalloc", "stat-htlb-pgfail")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio")
def test_ours_virtio_stats(ctx: Context) -> None:
    """Guest stats through QMP: every tag QEMU knows, a fresh timestamp on
    each poll, and values that agree with the guest's own numbers."""
    g, qmp = ctx.guest, ctx.guest.qmp
    expect(has_feature(balloon_features(ctx), F_STATS_VQ),
           "STATS_VQ not accepted")
    set_at = int(time.time()) - 1
    qmp.set_stats_interval(1)
    first = fresh_stats(ctx, set_at)
    # Fault some pages in, so that the counters must move.
    g.check("dd if=/dev/zero of=/tmp/s bs=1M count=64 2>/dev/null; rm /tmp/s")
    second = fresh_stats(ctx, first["last-update"])
    third = fresh_stats(ctx, second["last-update"])
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
    settle = move_balloon(ctx, final, "settle after flapping")
    g.check("true")
    expect_no_oom_kill(ctx)
    stats = debugfs_stats(ctx)
    expect(stats["target_kib"] * 1024 == full - final and
           stats["size_kib"] == stats["target_kib"],
           f"debugfs after settling: target {stats['target_kib']} KiB, "
           f"size {stats['size_kib']} KiB")
    ctx.info(f"{n} target changes in 4 s ({stats['kick']} kicks, "
             f"{stats['timer']} cycles, {stats['target_clamped']} clamped); "
             f"settled at {final // MIB} MiB {settle:.1f} s later")
