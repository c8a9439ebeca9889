#!/usr/bin/env python3
"""Benchmark our balloon_virtio against the in-tree virtio_balloon.

Usage::

    bench.py --modules DIR [--series SERIES] [--reps N] [--mem MIB]
             [--size MIB] [--variant default|noinit ...] [--out DIR]
             [--vmware]

Both drivers run on the same QEMU, the same kernel image and the same
guest size, alternating (in-tree, ours, in-tree, ours...), one fresh guest
per run.  Each run first dirties most of the guest's memory (so that QEMU
has it resident), then inflates the balloon by *size* over QMP, timing
from the ``balloon`` command until ``query-balloon`` reaches the target,
then deflates it back.  It records:

* inflate and deflate wall time;
* guest CPU time spent inflating (all CPUs, from the guest's /proc/stat);
* QEMU process CPU time spent inflating (/proc/<pid>/stat);
* host memory returned: the drop in QEMU's RSS over the inflation,
  divided by the balloon size.

Each is run with the Debian kernel's default command line ("default") and
with ``init_on_alloc=0`` ("noinit"): Debian zeroes every allocated page,
which dominates under emulation.  The report is a table of min / median /
max per driver, the ratio ours / in-tree of the medians (with the
project's targets for it, for information), and for the times the ratio
of ours to the host's own cost of the same work: QEMU 7.2 makes one
``madvise()`` call per 4 KiB page it balloons, which ``hostcost.c`` times
on the host for the same amount of memory, in the same run, before every
repetition.  No driver can go below that floor.  A PNG plot (gnuplot)
shows the balloon's size over time for both drivers.  It exits 0 when
every run was measured, whatever the ratios: it reports, it does not
judge; 2 when a run could not be measured.  Takes the machine's heavy-job
lock; never run it beside a build.

With ``--vmware`` it compares our balloon_vmw with the in-tree
vmw_balloon instead, in VMware guests on the vmware-balloon device of the
QEMU ``scripts/vmw-qemu.sh`` builds, and also counts the hypercalls each
inflation took (the device's counter); the virtio targets do not apply,
and the host floor is not measured (the device's discard is one
``madvise()`` per lock command's contiguous page, not per 4 KiB).

``make bench`` (scripts/bench.sh) builds the modules and runs this, for
virtio and then for VMware.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
from balloonrig import kernels, vmwqemu  # noqa: E402
from balloonrig.guest import (BootSpec, Guest, GuestLost,  # noqa: E402
                              retry_lost)
from balloonrig.prepare import heavy_lock, prepare  # noqa: E402

MIB = 1 << 20
VARIANTS = {"default": (), "noinit": ("init_on_alloc=0",)}
DRIVERS = {"intree": ("intree", "virtio_balloon"),
           "ours": ("ours", "balloon_virtio")}
#: The boot modes with --vmware (no virtio device to wait for).
VMW_MODES = {"intree": "vmw-intree", "ours": "vmw-ours"}
#: (metric, variant or None for all, bound, "le" or "ge") on ours/in-tree.
TARGETS = (
    ("inflate_s", "noinit", 0.33, "le"),
    ("inflate_s", "default", 0.6, "le"),
    ("deflate_s", None, 0.5, "le"),
)
RETURNED_TARGET = 0.98
TITLES = {"intree": "in-tree virtio\\_balloon",
          "ours": "our balloon\\_virtio"}
VMW_TITLES = {"intree": "in-tree vmw\\_balloon", "ours": "our balloon\\_vmw"}


@dataclasses.dataclass
class Run:
    """One inflate + deflate of one driver in one fresh guest."""

    driver: str
    variant: str
    inflate_s: float
    deflate_s: float
    guest_cpu_s: float
    qemu_cpu_s: float
    returned: float
    inflate_curve: list[tuple[float, int]]
    deflate_curve: list[tuple[float, int]]
    #: Backdoor hypercalls while inflating (VMware only).
    hypercalls: int = 0


def _guest_busy_s(g: Guest) -> float:
    """Non-idle CPU seconds of all guest CPUs since boot."""
    f = [int(x) for x in g.check("head -n 1 /proc/stat").split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return (sum(f[:8]) - idle) / 100.0


def _qemu_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def _hypercalls(g: Guest) -> int:
    return int(g.qmp.balloon_prop("hypercalls"))


def one_run(kimg, initrd, driver: str, variant: str, mem: int, size: int,
            workdir: Path, vmw_qemu: Path | None = None) -> Run:
    """Boot a guest with *driver* and measure one inflate/deflate; a
    VMware guest on *vmw_qemu* if given."""
    mode, bound = DRIVERS[driver]
    if vmw_qemu:
        spec = BootSpec.mode(VMW_MODES[driver], mem_mib=mem,
                             cmdline=VARIANTS[variant], qemu=str(vmw_qemu))
    else:
        spec = BootSpec.mode(mode, expect_driver=bound, mem_mib=mem,
                             cmdline=VARIANTS[variant])
    full, target = mem * MIB, (mem - size) * MIB
    with Guest(kimg, initrd, spec, workdir) as g:
        pid = g.proc.pid
        # Make QEMU back most of the guest, as a guest that ran a while.
        g.fill_and_free(mem - 400, timeout=600)
        g.check("sync && echo 3 > /proc/sys/vm/drop_caches")
        time.sleep(1)
        rss0, qcpu0, gcpu0 = g.qemu_rss(), _qemu_cpu_s(pid), _guest_busy_s(g)
        calls0 = _hypercalls(g) if vmw_qemu else 0
        g.qmp.balloon(target)
        up = g.qmp.wait_balloon(target, timeout=300, tolerance=MIB,
                                interval=0.05)
        qcpu1, gcpu1 = _qemu_cpu_s(pid), _guest_busy_s(g)
        calls = _hypercalls(g) - calls0 if vmw_qemu else 0
        time.sleep(0.5)
        rss1 = g.qemu_rss()
        g.qmp.balloon(full)
        down = g.qmp.wait_balloon(full, timeout=300, tolerance=MIB,
                                  interval=0.05)
        if not up.reached or not down.reached:
            raise RuntimeError(f"{driver}/{variant}: balloon did not reach "
                               f"its target (inflate {up.reached}, "
                               f"deflate {down.reached})")
        return Run(driver, variant, up.elapsed, down.elapsed,
                   gcpu1 - gcpu0, qcpu1 - qcpu0,
                   (rss0 - rss1) / (size * MIB),
                   [(t, (full - a) // MIB) for t, a in up.samples],
                   [(t, (full - a) // MIB) for t, a in down.samples],
                   calls)


def host_cost(binary: Path, mib: int) -> dict[str, float]:
    """Time QEMU's per-page madvise() work for *mib* MiB on this host."""
    out = subprocess.run([str(binary), str(mib)], check=True, text=True,
                         capture_output=True).stdout.split()
    return {out[i]: float(out[i + 1]) for i in range(0, len(out), 2)}


def build_host_cost(out: Path) -> Path:
    """Compile hostcost.c into *out*; return the binary."""
    binary = out / "hostcost"
    subprocess.run(["cc", "-O2", "-o", str(binary),
                    str(Path(__file__).resolve().parent / "hostcost.c")],
                   check=True)
    return binary


def _stats(vals: list[float]) -> tuple[float, float, float]:
    return min(vals), statistics.median(vals), max(vals)


METRICS = (("inflate_s", "inflate {size} MiB, s"),
           ("deflate_s", "deflate {size} MiB, s"),
           ("guest_cpu_s", "guest CPU inflating, s"),
           ("qemu_cpu_s", "QEMU CPU inflating, s"),
           ("returned", "host memory returned / balloon"))
VMW_METRICS = METRICS + (("hypercalls", "hypercalls inflating"),)


def report(runs: list[Run], size: int, host: dict[str, list[float]],
           vmware: bool = False) -> tuple[str, int, int]:
    """Return the table, and how many of the targets were met and set.
    For *vmware* runs there is no host floor and only the memory returned
    has a target."""
    lines, met_n, set_n = [], 0, 0
    floor = {k: statistics.median(v) for k, v in host.items() if v}
    if floor:
        lines.append(f"\nhost floor (QEMU's per-4-KiB madvise() for "
                     f"{size} MiB, median of {len(host['inflate_s'])}): "
                     f"inflate {floor['inflate_s']:.2f} s, deflate "
                     f"{floor['deflate_s']:.2f} s")
    for variant in dict.fromkeys(r.variant for r in runs):
        lines.append(f"\n{variant} ({' '.join(VARIANTS[variant]) or 'Debian default command line'}):")
        lines.append(f"  {'metric':34} {'in-tree min/med/max':>24} "
                     f"{'ours min/med/max':>24} {'ours/in-tree':>12} "
                     f"{'ours/host':>9}")
        for key, label in VMW_METRICS if vmware else METRICS:
            per = {d: _stats([getattr(r, key) for r in runs
                              if r.driver == d and r.variant == variant])
                   for d in DRIVERS}
            ratio = per["ours"][1] / per["intree"][1] \
                if per["intree"][1] else float("inf")
            to_host = f"{per['ours'][1] / floor[key]:9.1f}" \
                if floor.get(key) else " " * 9
            verdict = ""
            for metric, var, bound, how in () if vmware else TARGETS:
                if metric == key and var in (None, variant):
                    met = ratio <= bound if how == "le" else ratio >= bound
                    met_n, set_n = met_n + met, set_n + 1
                    verdict = f"  target <= {bound}: " + \
                        ("met" if met else "missed")
            if key == "returned":
                met = per["ours"][1] >= RETURNED_TARGET and \
                    per["ours"][1] >= per["intree"][1] - 0.005
                met_n, set_n = met_n + met, set_n + 1
                verdict = f"  target >= {RETURNED_TARGET} and not below " \
                    f"in-tree: {'met' if met else 'missed'}"
            fmt = "{:6.0f}/{:6.0f}/{:6.0f}" if key == "hypercalls" else \
                "{:6.2f}/{:6.2f}/{:6.2f}"
            lines.append(f"  {label.format(size=size):34} "
                         f"{fmt.format(*per['intree']):>24} "
                         f"{fmt.format(*per['ours']):>24} "
                         f"{ratio:12.2f} {to_host}{verdict}")
    return "\n".join(lines), met_n, set_n


def plot(runs: list[Run], out: Path, size: int,
         titles: dict[str, str] = TITLES) -> Path | None:
    """Balloon size over time, median inflate run of each driver, one
    panel per variant, inflate then deflate.  Returns the PNG or None."""
    if not shutil.which("gnuplot"):
        print("# gnuplot not installed: no plot (apt-get install gnuplot-nox)")
        return None
    variants = list(dict.fromkeys(r.variant for r in runs))
    cmds = [f"set terminal png size 1100,{380 * len(variants)}",
            f"set output '{out / 'bench.png'}'",
            f"set multiplot layout {len(variants)},1",
            "set grid", "set key bottom right",
            "set xlabel 'seconds since the QMP balloon command'",
            "set ylabel 'balloon size, MiB'"]
    for variant in variants:
        series = []
        for driver in DRIVERS:
            mine = sorted((r for r in runs if r.driver == driver and
                           r.variant == variant), key=lambda r: r.inflate_s)
            if not mine:
                continue
            r = mine[len(mine) // 2]
            data = out / f"curve-{variant}-{driver}.dat"
            end = r.inflate_curve[-1][0]
            with data.open("w") as f:
                for t, mib in r.inflate_curve:
                    f.write(f"{t:.3f} {mib}\n")
                for t, mib in r.deflate_curve:
                    f.write(f"{end + 1 + t:.3f} {mib}\n")
            title = titles[driver]
            series.append(f"'{data}' using 1:2 with lines lw 2 "
                          f"title '{title}'")
        cmds.append(f"set title 'inflate {size} MiB, 1 s pause, deflate "
                    f"({variant})'")
        cmds.append("plot " + ", ".join(series))
    cmds.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(cmds), text=True,
                   check=True)
    return out / "bench.png"


def _infra_lost(attempt: int, exc: GuestLost) -> None:
    print(f"# INFRA: guest lost ({exc}); attempt {attempt} of 2", flush=True)


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: at least 1")
    return n


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every run was measured."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", default="6.12")
    ap.add_argument("--modules", required=True, metavar="DIR")
    ap.add_argument("--reps", type=_positive, default=3)
    ap.add_argument("--mem", type=int, default=2048, help="guest MiB")
    ap.add_argument("--size", type=int, default=1024, help="balloon MiB")
    ap.add_argument("--variant", action="append", choices=list(VARIANTS))
    ap.add_argument("--driver", action="append", choices=list(DRIVERS),
                    help="measure only this driver (exploration; no table)")
    ap.add_argument("--out", metavar="DIR", help="results directory")
    ap.add_argument("--cache", metavar="DIR")
    ap.add_argument("--vmware", action="store_true",
                    help="balloon_vmw against vmw_balloon, on the QEMU "
                    "device of scripts/vmw-qemu.sh")
    args = ap.parse_args(argv)

    lock = heavy_lock(args.cache)  # held until exit
    vmw_qemu = None
    if args.vmware:
        try:
            vmw_qemu = vmwqemu.binary(args.cache, lock)
        except (OSError, RuntimeError) as exc:
            print(f"cannot benchmark VMware: {exc}")
            return 2
    prep = prepare(args.series, args.modules, args.cache, fallback=False)
    problem = prep.problem if prep.ours else "no .ko found"
    if problem:
        print(f"cannot benchmark: {problem}")
        return 2
    kimg, initrd = prep.kimg, prep.initrd
    out = Path(args.out) if args.out else \
        kernels.cache_root(args.cache) / "bench" / time.strftime("%Y%m%d-%H%M%S")
    if vmw_qemu:
        # Beside the virtio results of the same make bench, not over them.
        out = out / "vmware"
    out.mkdir(parents=True, exist_ok=True)
    print(f"# kernel {kimg.kver}, {args.mem} MiB guest, {args.size} MiB "
          f"balloon, {args.reps} runs per driver and variant"
          f"{' (VMware, QEMU ' + str(vmw_qemu) + ')' if vmw_qemu else ''}; "
          f"results in {out}", flush=True)

    hostcost = None if vmw_qemu else build_host_cost(out)
    host: dict[str, list[float]] = {"inflate_s": [], "deflate_s": []}
    runs: list[Run] = []
    for variant in args.variant or list(VARIANTS):
        for rep in range(args.reps):
            if hostcost:
                for key, val in host_cost(hostcost, args.size).items():
                    host[key].append(val)
            for driver in args.driver or list(DRIVERS):
                try:
                    r = retry_lost(
                        lambda _attempt: one_run(
                            kimg, initrd, driver, variant, args.mem,
                            args.size, out / f"{variant}-{driver}-{rep}",
                            vmw_qemu),
                        _infra_lost)
                except GuestLost:
                    return 2
                runs.append(r)
                print(f"# {variant:7} {driver:6} run {rep + 1}: inflate "
                      f"{r.inflate_s:5.2f} s, deflate {r.deflate_s:5.2f} s, "
                      f"guest CPU {r.guest_cpu_s:5.2f} s, QEMU CPU "
                      f"{r.qemu_cpu_s:5.2f} s, returned {r.returned:.3f}"
                      + (f", {r.hypercalls} hypercalls" if vmw_qemu else ""),
                      flush=True)
    (out / "runs.json").write_text(json.dumps(
        [dataclasses.asdict(r) for r in runs], indent=1))
    if args.driver:
        return 0
    table, met, targets = report(runs, args.size, host, bool(vmw_qemu))
    print(table)
    png = plot(runs, out, args.size, VMW_TITLES if vmw_qemu else TITLES)
    if png:
        print(f"\nplot: {png}")
    print(f"\n{met} of {targets} targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
