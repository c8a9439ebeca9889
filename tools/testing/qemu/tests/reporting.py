"""Free page reporting, and the page poison rules that go with it."""

from __future__ import annotations

import time

from balloonrig.runner import Context, expect, rigtest, wait_for

from .helpers import (F_PAGE_POISON, F_REPORTING, GIB, MIB, balloon_features,
                      has_feature, move_balloon)


def expect_reporting_returns(ctx: Context, mib: int,
                             share: float = 0.75) -> str:
    """Fill and free *mib* MiB; QEMU's RSS must drop by *share* of it
    within 60 s, through free page reports alone.  The filled level is read
    while the guest still holds the memory, so reports that go out as soon
    as it is freed cannot race the reading.  Returns what it saw."""
    before = ctx.guest.qemu_rss()
    ctx.guest.fill(mib)
    filled = ctx.guest.qemu_rss()
    ctx.guest.free_fill()
    t0 = time.monotonic()
    now = wait_for(ctx.guest.qemu_rss,
                   lambda rss: filled - rss >= mib * MIB * share, 60,
                   lambda rss: f"QEMU RSS {before // MIB} -> {filled // MIB} "
                   f"MiB after filling {mib} MiB, still {rss // MIB} MiB 60 s "
                   "after freeing it", 1)
    return (f"QEMU RSS {before // MIB} -> {filled // MIB} -> {now // MIB} "
            f"MiB, {time.monotonic() - t0:.1f} s after freeing {mib} MiB")


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio",
         balloon_props={"free-page-reporting": "on"})
def test_ours_virtio_free_page_reporting(ctx: Context) -> None:
    """Free page reporting: freed guest memory goes back to the host (QEMU's
    RSS drops) without ballooning; PAGE_POISON is not accepted, since the
    Debian kernel neither poisons nor zeroes freed pages."""
    feats = balloon_features(ctx)
    expect(has_feature(feats, F_REPORTING),
           f"REPORTING not accepted: {feats}")
    expect(not has_feature(feats, F_PAGE_POISON),
           f"PAGE_POISON accepted: {feats}")
    ctx.info(expect_reporting_returns(ctx, 1024))


@rigtest(mode="ours", needs_modules=True, mem_mib=2048,
         expect_driver="balloon_virtio", cmdline=("page_poison=1",),
         balloon_props={"free-page-reporting": "on"})
def test_ours_virtio_page_poison(ctx: Context) -> None:
    """A guest that poisons freed pages accepts PAGE_POISON and tells the
    device the pattern: QEMU then keeps reported pages (a device that
    dropped them would hand back zeroes, which the guest's poison check
    reports as memory corruption when it allocates them again)."""
    g = ctx.guest
    feats = balloon_features(ctx)
    expect(has_feature(feats, F_PAGE_POISON) and
           has_feature(feats, F_REPORTING),
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
    feats = balloon_features(ctx)
    expect(not has_feature(feats, F_REPORTING) and
           not has_feature(feats, F_PAGE_POISON),
           f"REPORTING or PAGE_POISON accepted: {feats}")
    move_balloon(ctx, 512 * MIB, "inflate")
    move_balloon(ctx, GIB, "deflate")
