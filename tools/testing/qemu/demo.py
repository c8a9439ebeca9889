#!/usr/bin/env python3
"""Watch our balloon driver work: a QEMU guest whose balloon the host moves.

Usage::

    demo.py [--series SERIES] [--mem MIB] [--steps MIB,MIB,...]
            [--modules DIR] [--timeout S] [--tolerance MIB] [--cache DIR]
            [--vmware]

SERIES is 6.12 (the default), 6.1 or 7.3, or one of them on arm64
(6.12-arm64, 6.1-arm64, 7.3-arm64, 7.3-arm64-16k: qemu-system-aarch64).
Boots the Debian kernel of the series under QEMU (TCG) with our
balloon_core and balloon_virtio bound to a virtio-balloon device, then,
for each step, asks over QMP for that much guest memory (QEMU's
``balloon`` command) and shows live how QEMU's ``actual`` follows the
target, with the guest's MemAvailable read over the rig's command channel:
one line rewritten in place on a terminal, one line a second otherwise.
At the end it prints our driver's debugfs files and QEMU's guest
statistics.  With ``--vmware`` the guest is a VMware guest instead, with
balloon_core and balloon_vmw on the vmware-balloon device of the QEMU
``scripts/vmw-qemu.sh`` builds (the first time: about 3.5 minutes), and
the end shows what that device counted.  Exits 0 only when every step
reached its target within *tolerance* and *timeout*.  Takes the
machine's heavy-job lock.

``scripts/demo.sh`` (``make demo``) installs what is needed, builds the
modules and runs this.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
from balloonrig import kernels, vmwqemu  # noqa: E402
from balloonrig.guest import (BootError, BootSpec, Guest,  # noqa: E402
                              GuestCommandError, GuestLost, boot,
                              scan_console)
from balloonrig.qmp import QMPError  # noqa: E402
from balloonrig.prepare import (PREPARE_ERRORS, heavy_lock,  # noqa: E402
                                prepare)

MIB = 1 << 20
REPO = Path(__file__).resolve().parents[3]
#: virtio-balloon feature bit of the statistics virtqueue.
VIRTIO_BALLOON_F_STATS_VQ = 1
#: QEMU reports a statistic the guest never sent as (u64)-1.
STAT_UNSET = (1 << 64) - 1


class Progress:
    """A status line: rewritten in place on a terminal, else printed at
    most once per *interval* seconds, so that logs stay readable."""

    def __init__(self, out: TextIO, interval: float = 1.0):
        self.out = out
        self.tty = out.isatty()
        self.interval = interval
        self._last = float("-inf")

    def update(self, text: str) -> None:
        """Show *text* as the current state."""
        if self.tty:
            # A line longer than the terminal would wrap, and "\r" could
            # no longer take it back.
            cols = shutil.get_terminal_size().columns
            self.out.write("\r" + text[:cols - 1] + "\x1b[K")
            self.out.flush()
        elif time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            print(text, file=self.out, flush=True)

    def done(self, text: str) -> None:
        """Show *text* as the final state and end the line."""
        if self.tty:
            self.out.write("\r" + text + "\x1b[K\n")
        else:
            print(text, file=self.out)
        self.out.flush()
        self._last = float("-inf")


@dataclasses.dataclass
class Step:
    """What one balloon step did."""

    target_mib: int
    reached: bool
    seconds: float
    actual_mib: float


def bar(done: float, width: int = 20) -> str:
    """Return a text progress bar for a fraction *done* in [0, 1]."""
    n = round(max(0.0, min(1.0, done)) * width)
    return "[" + "#" * n + "." * (width - n) + "]"


def move(g: Guest, target_mib: int, timeout: float, tolerance_mib: int,
         progress: Progress) -> Step:
    """Set the balloon target and follow it until reached or timed out."""
    target = target_mib * MIB
    start = g.qmp.query_balloon()
    g.qmp.balloon(target)
    t0 = time.monotonic()
    while True:
        now = time.monotonic() - t0
        actual = g.qmp.query_balloon()
        avail = g.meminfo()["MemAvailable"]
        span = start - target
        frac = 1.0 if span == 0 else (start - actual) / span
        reached = abs(actual - target) <= tolerance_mib * MIB
        line = (f"{now:5.1f}s  target {target_mib} MiB  actual "
                f"{actual / MIB:4.0f} MiB {bar(frac, 12)}  MemAvailable "
                f"{avail / MIB:4.0f} MiB")
        if reached or now > timeout:
            progress.done(line)
            return Step(target_mib, reached, now, actual / MIB)
        progress.update(line)
        time.sleep(0.25)


def show_debugfs(g: Guest) -> None:
    """Print our driver's debugfs view of every balloon."""
    dirs = g.check("ls -d /sys/kernel/debug/balloon/*/ 2>/dev/null; true")
    if not dirs.split():
        print("(no /sys/kernel/debug/balloon/*/: is debugfs mounted?)")
    for d in dirs.split():
        print(f"\n-- {d}vmmemctl (VMware's historic layout; the counters "
              f"count transport calls and pages)")
        print(g.check(f"cat {d}vmmemctl").rstrip())
        stats = [ln.split() for ln in g.check(f"cat {d}stats").splitlines()
                 if len(ln.split()) == 2]
        print(f"\n-- {d}stats (every counter; sizes in KiB)")
        cells = [f"{k:<17}{v:>9}" for k, v in stats]
        for i in range(0, len(cells), 3):
            print("  " + "   ".join(cells[i:i + 3]))


def show_guest_stats(g: Guest, since: float) -> None:
    """Print QEMU's guest statistics, or say why there are none.

    With a statistics virtqueue, wait (up to 10 s) for a report sent
    after *since* (epoch seconds), so that the numbers are current.
    """
    features = g.balloon_sysfs("features") or ""
    has_vq = len(features) > VIRTIO_BALLOON_F_STATS_VQ and \
        features[VIRTIO_BALLOON_F_STATS_VQ] == "1"
    stats = g.qmp.guest_stats()
    deadline = time.monotonic() + 10
    while has_vq and stats.get("last-update", 0) < since and \
            time.monotonic() < deadline:
        time.sleep(0.5)
        stats = g.qmp.guest_stats()
    print("\n-- QEMU's guest statistics (qom-get guest-stats on the "
          "balloon device)")
    updated = stats.get("last-update", 0)
    if not updated:
        why = ("the driver did not negotiate the statistics virtqueue "
               "(VIRTIO_BALLOON_F_STATS_VQ): balloon_virtio does not "
               "report statistics yet" if not has_vq else
               "the statistics virtqueue is negotiated, but no report "
               "arrived within 10 s")
        print(f"  none: {why}.")
        return
    print(f"  reported by the guest driver {time.time() - updated:.0f} s "
          f"ago")
    for key, val in sorted(stats.get("stats", {}).items()):
        if val == STAT_UNSET:
            shown = "-"
        elif key.endswith(("-memory", "-caches", "swap-in", "swap-out")):
            shown = f"{val / MIB:.0f} MiB"
        else:
            shown = str(val)
        print(f"  {key:<28} {shown:>12}")


def show_vmw_device(g: Guest) -> None:
    """Print what the vmware-balloon device counted."""
    print("\nthe vmware-balloon device (QOM properties):")
    for prop in ("locked-pages", "target-pages", "hypercalls", "starts",
                 "calls-batched-2m-lock", "calls-batched-lock",
                 "calls-batched-2m-unlock", "calls-batched-unlock",
                 "calls-get-target"):
        print(f"  {prop:24} {g.qmp.balloon_prop(prop)}")


def _lost(attempt: int, exc: GuestLost) -> None:
    if attempt == 1:
        print(f"guest lost while booting ({exc}); trying again", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the command line."""
    ap = argparse.ArgumentParser(
        description="Boot a QEMU guest with our balloon driver and move "
        "its balloon from the host, showing progress live.",
        epilog="scripts/demo.sh (make demo) takes the same options, the "
        "series also bare (scripts/demo.sh 6.1), and installs what is "
        "missing and builds the modules first.")
    ap.add_argument("--series", default="6.12",
                    help="Debian kernel series: 6.12 (default), 6.1, "
                    "7.3, 6.12-arm64, 6.1-arm64, 7.3-arm64 or "
                    "7.3-arm64-16k")
    ap.add_argument("--mem", type=int, default=2048, metavar="MIB",
                    help="guest memory in MiB (default 2048)")
    ap.add_argument("--steps", metavar="MIB,...",
                    help="guest memory sizes to ask for, in order "
                    "(default: half, three quarters, all of --mem)")
    ap.add_argument("--modules", metavar="DIR",
                    default=str(REPO / "build" / "modules"),
                    help="our .ko files, in DIR or DIR/<kver>/ "
                    "(default: build/modules, where scripts/demo.sh "
                    "builds them)")
    ap.add_argument("--timeout", type=float, default=180, metavar="S",
                    help="seconds a step may take (default 180)")
    ap.add_argument("--tolerance", type=int, default=4, metavar="MIB",
                    help="how close to the target counts as reached "
                    "(default 4)")
    ap.add_argument("--cache", metavar="DIR",
                    help="cache dir (default $BALLOON_CACHE or "
                    "~/.cache/balloon-drv)")
    ap.add_argument("--vmware", action="store_true",
                    help="a VMware guest: balloon_vmw against our QEMU "
                    "device (scripts/vmw-qemu.sh builds that QEMU the "
                    "first time)")
    args = ap.parse_args(argv)
    if args.mem < 256:
        ap.error("--mem must be at least 256 MiB")
    if args.steps:
        try:
            args.steps = [int(s) for s in args.steps.split(",") if s]
        except ValueError:
            ap.error(f"--steps wants MiB numbers separated by commas, "
                     f"not {args.steps!r}")
    else:
        args.steps = [args.mem // 2, args.mem * 3 // 4, args.mem]
    bad = [s for s in args.steps if not 128 <= s <= args.mem]
    if bad or not args.steps:
        ap.error(f"every step must be between 128 and --mem ({args.mem}) "
                 f"MiB: {bad or 'none given'}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit status."""
    args = parse_args(argv)
    out = sys.stdout
    if args.vmware and kernels.arch_of(args.series) != kernels.HOST_ARCH:
        print(f"demo: --vmware needs an x86 kernel (VMware's backdoor is "
              f"an x86 I/O port), not {args.series}", file=sys.stderr)
        return 2
    lock = heavy_lock(args.cache)  # held until we exit
    print("preparing the guest kernel and initramfs (the first run "
          "downloads the Debian kernel image)", flush=True)
    try:
        prep = prepare(args.series, args.modules, args.cache, fallback=False)
    except PREPARE_ERRORS as exc:
        print(f"demo: cannot prepare the guest: {exc}", file=sys.stderr)
        return 1
    kimg, initrd = prep.kimg, prep.initrd
    names = sorted(p.name for p in prep.ours)
    transport = "balloon_vmw" if args.vmware else "balloon_virtio"
    if not {"balloon_core.ko", f"{transport}.ko"} <= set(names):
        print(f"demo: no balloon_core.ko and {transport}.ko for "
              f"{kimg.kver} in {args.modules} (found {names}); "
              f"scripts/demo.sh builds them", file=sys.stderr)
        return 1
    if prep.problem:
        print(f"demo: {prep.problem}", file=sys.stderr)
        return 1

    workdir = kernels.cache_root(args.cache) / "runs" / "demo" / \
        (kimg.series or kimg.kver)
    shutil.rmtree(workdir, ignore_errors=True)
    if args.vmware:
        print("the QEMU with the VMware balloon device (scripts/"
              "vmw-qemu.sh; the first time it builds it, about 3.5 "
              "minutes)", flush=True)
        try:
            qemu = vmwqemu.binary(args.cache, lock)
        except (OSError, RuntimeError) as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 1
        spec = BootSpec.mode("vmw-ours", mem_mib=args.mem, qemu=str(qemu))
    else:
        spec = BootSpec.mode("ours", mem_mib=args.mem,
                             expect_driver="balloon_virtio")
    print(f"booting Debian's {kimg.kver} in QEMU (software emulation, "
          f"{spec.smp} CPUs, {args.mem} MiB) with balloon_core and "
          f"{transport}"
          f"{' as a VMware guest' if args.vmware else ''}", flush=True)
    try:
        g = boot(kimg, initrd, spec, workdir, _lost)
    except (GuestLost, BootError) as exc:
        print(f"demo: the guest did not come up: {exc}\n"
              f"  console: {workdir / 'console.log'}", file=sys.stderr)
        return 1

    steps: list[Step] = []
    try:
        if args.vmware:
            print(f"ready after {g.boot_seconds:.1f} s; loaded "
                  f"{g.ready.get('loaded')}")
        else:
            print(f"ready after {g.boot_seconds:.1f} s; the balloon device "
                  f"is bound to {g.ready.get('bound')}")
            g.qmp.set_stats_interval(2)
        print(f"\nThe host now asks the guest, over QMP, for each memory "
              f"size in turn: {' -> '.join(map(str, args.steps))} MiB.\n"
              f"'actual' is QEMU's view of the guest's memory (its "
              f"{args.mem} MiB minus the balloon); MemAvailable is the "
              f"guest's own /proc/meminfo.")
        progress = Progress(out)
        for i, mib in enumerate(args.steps, 1):
            now = round(g.qmp.query_balloon() / MIB)
            verb = ("inflate" if mib < now else "deflate" if mib > now
                    else "hold")
            print(f"\nstep {i}/{len(args.steps)}: {now} -> {mib} MiB "
                  f"({verb} the balloon to {args.mem - mib} MiB)",
                  flush=True)
            step = move(g, mib, args.timeout, args.tolerance, progress)
            steps.append(step)
            if step.reached:
                print(f"  reached in {step.seconds:.1f} s")
            else:
                print(f"  NOT reached: actual {step.actual_mib:.0f} MiB "
                      f"after {step.seconds:.0f} s")
                break
        if any(b.target_mib > a.target_mib for a, b in zip(steps,
                                                            steps[1:])):
            print("  (after a deflate, MemAvailable can trail 'actual' "
                  "for some seconds: the kernel hands the freed pages "
                  "back gradually)")
        since = time.time()
        show_debugfs(g)
        if args.vmware:
            show_vmw_device(g)
        else:
            show_guest_stats(g, since)
    except (GuestLost, GuestCommandError, QMPError) as exc:
        print(f"\ndemo: lost the guest: {exc}\n"
              f"  console: {workdir / 'console.log'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130
    finally:
        g.stop()
        lock.close()

    ok = len(steps) == len(args.steps) and all(s.reached for s in steps)
    bad = scan_console(g.console_since_load())
    if bad:
        ok = False
        print("\nthe guest kernel complained:\n  " + "\n  ".join(bad[:10]))
    print()
    if ok:
        print(f"demo: PASS: all {len(steps)} steps reached their target "
              f"(within {args.tolerance} MiB, {args.timeout:.0f} s each)")
    else:
        print(f"demo: FAIL: {len([s for s in steps if s.reached])} of "
              f"{len(args.steps)} steps reached their target; guest "
              f"console log: {workdir / 'console.log'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
