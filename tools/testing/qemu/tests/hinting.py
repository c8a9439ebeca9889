"""Free page hinting, alone and beside free page reporting."""

from __future__ import annotations

from typing import Callable

from balloonrig.runner import Context, expect, rigtest, wait_for

from .helpers import (F_FREE_PAGE_HINT, F_REPORTING, F_STATS_VQ, MIB,
                      balloon_features, debugfs_stats, expect_no_oom_kill,
                      has_feature)
from .reporting import expect_reporting_returns

#: A balloon device that hints free pages; QEMU needs an iothread for it.
#: QEMU 7.2 (Debian 12's) aborts an arm64 guest under TCG the first time
#: that iothread notifies the guest during a migration: it raises the
#: interrupt without the big QEMU lock (gicv3_cpuif_update's, or with the
#: default GICv2 tcg_handle_interrupt's, assertion), with the in-tree
#: driver as with ours.  So these run on amd64 alone.
HINT_DEVICE = {"balloon_props": {"free-page-hint": "on", "iothread": "iot0"},
               "qemu_args": ("-object", "iothread,id=iot0"),
               "arches": ("amd64",),
               "arch_note": "QEMU 7.2's free page hinting aborts arm64 "
                            "TCG guests (its iothread raises the guest's "
                            "interrupt without QEMU's big lock)"}


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
    return wait_for(lambda: debugfs_stats(ctx, "hinting"), done, timeout,
                    lambda st: f"{what} after {timeout:.0f} s "
                    f"({_held_mib(st)} MiB held): {st}", 0.5)


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
    feats = balloon_features(ctx)
    expect(has_feature(feats, F_FREE_PAGE_HINT),
           f"FREE_PAGE_HINT not accepted: {feats}")
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
    during = debugfs_stats(ctx, "hinting")
    expect_no_oom_kill(ctx)
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
    feats = balloon_features(ctx)
    expect(has_feature(feats, F_FREE_PAGE_HINT) and
           has_feature(feats, F_REPORTING) and
           has_feature(feats, F_STATS_VQ), f"features {feats}")
    # Half of it: what matters here is that reports reach the right
    # queue.  The kernel reports an order only while it has more than 32
    # free blocks of it (PAGE_REPORTING_CAPACITY), from 2 MiB up to a
    # pageblock: two orders with 4 KiB pages, five with 16 KiB, where a
    # 512 MiB fill was seen to come back 384 and 410 MiB.
    ctx.info(expect_reporting_returns(ctx, 512, share=0.5))
