"""What the tests of several areas share."""

from __future__ import annotations

from balloonrig.parse import parse_counters
from balloonrig.runner import Context, expect, wait_for

MIB = 1 << 20
GIB = 1 << 30
OUR_MODULES = ("balloon_core", "balloon_vmw", "balloon_virtio")

#: virtio balloon feature bits (include/uapi/linux/virtio_balloon.h).
F_STATS_VQ, F_FREE_PAGE_HINT, F_PAGE_POISON, F_REPORTING = 1, 3, 4, 5


def meminfo_avail(ctx: Context) -> int:
    return ctx.guest.meminfo()["MemAvailable"]


def meminfo_balloon(ctx: Context) -> int | None:
    """The guest's ``Balloon:`` line of /proc/meminfo, in bytes: the pages
    balloon drivers hold (NR_BALLOON_PAGES; Debian's 7.3 has the line,
    its 6.1 and 6.12 do not).  None on a kernel without it."""
    return ctx.guest.meminfo().get("Balloon")


def expect_meminfo_balloon(ctx: Context, what: str,
                           timeout: float = 15) -> int:
    """Wait until /proc/meminfo's ``Balloon:`` equals what QEMU says is
    ballooned (guest memory - ``actual``), and return it.  The two are read
    one after the other, so a balloon still moving is polled until they
    agree; the test fails after *timeout* s.  Only for kernels with the
    line (:func:`meminfo_balloon` is not None)."""
    full = ctx.guest.spec.mem_mib * MIB

    def both() -> tuple[int | None, int]:
        return meminfo_balloon(ctx), full - ctx.guest.qmp.query_balloon()

    def show(v: tuple[int | None, int]) -> str:
        shown = "none" if v[0] is None else f"{v[0] // 1024} kB"
        return (f"{what}: /proc/meminfo Balloon: {shown}, QEMU's "
                f"balloon {v[1] // 1024} kB (for {timeout:.0f} s)")

    return wait_for(both, lambda v: v[0] == v[1], timeout, show, 0.5)[0]


def move_balloon(ctx: Context, target: int, what: str) -> float:
    """Set the balloon target and wait for QEMU's actual to reach it."""
    def progress(t: float, actual: int) -> None:
        ctx.log(f"t={t:6.2f}s actual={actual // MIB} MiB")

    ctx.guest.qmp.balloon(target)
    res = ctx.guest.qmp.wait_balloon(target, timeout=180, tolerance=4 * MIB,
                                     interval=0.25, on_sample=progress)
    expect(res.reached, f"{what}: actual {res.actual // MIB} MiB after "
           f"{res.elapsed:.0f} s (target {target // MIB} MiB)")
    return res.elapsed


def fresh_stats(ctx: Context, newer_than: int, timeout: float = 20,
                interval: float = 0.2) -> dict:
    """Wait for QMP guest stats updated after *newer_than* (epoch s)."""
    return wait_for(
        ctx.guest.qmp.guest_stats,
        lambda stats: stats.get("last-update", 0) > newer_than, timeout,
        lambda stats: f"guest stats not refreshed after {timeout} s: {stats}",
        interval)


def debugfs_stats(ctx: Context, name: str = "stats") -> dict[str, int]:
    """Read one of our balloon's "key value" debugfs files as a dict."""
    return parse_counters(
        ctx.guest.check(f"cat /sys/kernel/debug/balloon/*/{name}"))


def balloon_features(ctx: Context) -> str:
    """The balloon device's negotiated features, "0"/"1" per bit."""
    return ctx.guest.balloon_sysfs("features") or ""


def has_feature(features: str, bit: int) -> bool:
    return len(features) > bit and features[bit] == "1"


def expect_no_oom_kill(ctx: Context) -> None:
    """Fail if the guest's OOM killer ran."""
    killed = ctx.guest.oom_kills()
    expect(not killed, "the OOM killer ran: " + " | ".join(killed[:3]))
