"""The test framework and runner of ``run_tests.py``.

Add a test by decorating a function ``fn(ctx)`` with :func:`rigtest`; it
gets a fresh guest booted per its :class:`~balloonrig.guest.BootSpec` and
fails by raising :class:`TestFailure` (see :func:`expect`).  Importing a
module of tests registers them in :data:`TESTS`; :func:`main` parses
``run_tests.py``'s command line and runs them with a :class:`Runner`,
which prints one ``PASS:``/``FAIL:``/``SKIP:`` line per test.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Callable, TypeVar

from . import kernels, vmwqemu
from .guest import (BOOT_ATTEMPTS, BootError, BootSpec, Guest,
                    GuestCommandError, GuestLost, boot, scan_console)
from .prepare import PREPARE_ERRORS, heavy_lock, prepare
from .qmp import QMPError

#: The modprobe.d file that keeps the in-tree balloon drivers off, as the
#: tree has it (``make install`` installs it); ``--modprobe-conf`` names
#: another copy, e.g. the one the Debian package installed.
MODPROBE_CONF = Path(__file__).resolve().parents[4] / "etc" / "modprobe.d" \
    / "balloon.conf"


class TestFailure(AssertionError):
    """The test found a problem."""


class TestSkip(Exception):
    """The test cannot run in this configuration."""


def expect(cond: object, msg: str) -> None:
    """Raise :class:`TestFailure` with *msg* unless *cond* is true."""
    if not cond:
        raise TestFailure(msg)


T = TypeVar("T")


def wait_for(poll: Callable[[], T], done: Callable[[T], bool],
             timeout: float, what: Callable[[T], str],
             interval: float) -> T:
    """Call *poll* every *interval* s until *done* holds for what it
    returned, and return that.  Raise :class:`TestFailure` with
    *what(last value)* once *timeout* s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = poll()
        if done(value):
            return value
        expect(time.monotonic() < deadline, what(value))
        time.sleep(interval)


@dataclasses.dataclass
class RigTest:
    """A registered test."""

    name: str
    fn: Callable[["Context"], None]
    spec: BootSpec
    needs_modules: bool
    #: The kernel series the test runs on; empty: all of them.
    series: tuple[str, ...] = ()
    #: Is it one of the few that ``--smoke`` runs?
    smoke: bool = False
    #: The Debian architectures it runs on (empty: all), and why not on
    #: the others.
    arches: tuple[str, ...] = ()
    arch_note: str = ""


TESTS: list[RigTest] = []


#: Why the VMware modes run on x86 alone.
VMW_ARCH_NOTE = "VMware's backdoor is an x86 I/O port"


def rigtest(mode: str = "intree", needs_modules: bool = False,
            series: tuple[str, ...] = (), smoke: bool = False,
            arches: tuple[str, ...] = (), arch_note: str = "",
            **spec_kwargs) -> Callable:
    """Register ``fn(ctx)`` as a test booting a guest in boot *mode*.

    *series*, when given, are the only kernel series it runs on, and
    *arches* the only Debian architectures, for the reason *arch_note*
    (on the others it is skipped without a boot; the ``vmw-`` modes run
    on amd64 alone).  *smoke* puts it among the tests ``--smoke`` runs
    (inflate, deflate, unload: a kernel tested lightly).  *spec_kwargs* go
    to :meth:`BootSpec.mode` (mem_mib, cmdline, balloon_props,
    expect_driver, ...).
    """
    if mode.startswith("vmw-"):
        arches, arch_note = (kernels.HOST_ARCH,), VMW_ARCH_NOTE

    def wrap(fn: Callable[["Context"], None]) -> Callable:
        TESTS.append(RigTest(fn.__name__.removeprefix("test_"), fn,
                             BootSpec.mode(mode, **spec_kwargs),
                             needs_modules, tuple(series), smoke,
                             tuple(arches), arch_note))
        return fn
    return wrap


@dataclasses.dataclass
class Context:
    """What a test function gets: the booted guest and run settings."""

    series: str
    name: str
    guest: Guest
    our_modules: list[Path]
    verbose: bool
    #: The modprobe.d file a test installs in the guest.
    modprobe_conf: Path

    def info(self, msg: str) -> None:
        """Print an informational ``# info`` line."""
        print(f"# info: {self.series}/{self.name}: {msg}", flush=True)

    def log(self, msg: str) -> None:
        """Print *msg* in verbose mode only."""
        if self.verbose:
            self.info(msg)




@dataclasses.dataclass
class Runner:
    """Boots one guest per test and reports results."""

    series: str
    kimg: kernels.KernelImage
    initrd: Path
    our_modules: list[Path]
    modules_problem: str | None
    rundir: Path
    verbose: bool
    modprobe_conf: Path
    counts: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"PASS": 0, "FAIL": 0, "SKIP": 0})
    #: The cache directory (--cache), and the heavy lock's open file, for
    #: building the VMware modes' QEMU (:mod:`vmwqemu`) under it.
    cache: str | None = None
    lock_file: IO | None = None
    #: That QEMU's path, or why it cannot be had; found once.
    _vmw_qemu: Path | str | None = None

    def vmw_qemu(self) -> Path | str:
        """The QEMU binary of the VMware modes, or why there is none."""
        if self._vmw_qemu is None:
            try:
                self._vmw_qemu = vmwqemu.binary(self.cache, self.lock_file)
                print(f"# VMware balloon QEMU: {self._vmw_qemu}", flush=True)
            except (OSError, RuntimeError) as exc:
                self._vmw_qemu = str(exc)
        return self._vmw_qemu

    def report(self, test: RigTest, status: str, reason: str = "") -> None:
        """Print the one result line of *test*."""
        self.counts[status] += 1
        line = f"{status}: {self.series}/{test.name}"
        print(line + (f": {reason}" if reason else ""), flush=True)

    def boot(self, test: RigTest, workdir: Path) -> Guest:
        """Boot a guest for *test*, retrying once if it is lost."""
        def lost(attempt: int, exc: GuestLost) -> None:
            print(f"# {self.series}/{test.name}: guest lost on boot "
                  f"attempt {attempt}: {exc} (console: {exc.console})",
                  flush=True)

        g = boot(self.kimg, self.initrd, test.spec, workdir, lost)
        if self.verbose:
            print(f"# {self.series}/{test.name}: booted in "
                  f"{g.boot_seconds:.1f} s: {g.ready}", flush=True)
        return g

    def run(self, test: RigTest) -> None:
        """Run one test and print its result line.  A guest lost during
        the test, with a console that names none of our modules, is the
        emulator's (or the guest kernel's) failure, as a lost boot is: the
        test runs once more in a fresh guest."""
        if test.arches and self.kimg.arch not in test.arches:
            self.report(test, "SKIP", f"runs on {' and '.join(test.arches)}"
                        f" only, not {self.kimg.arch}: {test.arch_note}")
            return
        if test.series and self.series not in test.series:
            self.report(test, "SKIP",
                        f"runs on {' and '.join(test.series)} only")
            return
        if test.needs_modules and not self.our_modules:
            self.report(test, "SKIP", "needs --modules DIR")
            return
        if test.needs_modules and self.modules_problem:
            self.report(test, "FAIL", self.modules_problem)
            return
        if test.spec.vmware and not test.spec.qemu:
            qemu = self.vmw_qemu()
            if isinstance(qemu, str):
                self.report(test, "SKIP", "no QEMU with the VMware balloon: "
                            + qemu)
                return
            test.spec = dataclasses.replace(test.spec, qemu=str(qemu))
        workdir = self.rundir / test.name
        lost = self._run_once(test, workdir, retry=True)
        if lost:
            print(f"INFRA: {self.series}/{test.name}: guest lost during the "
                  f"test, in no module of ours; running it once more "
                  f"(console: {lost})", flush=True)
            self._run_once(test, workdir, retry=False)

    def _run_once(self, test: RigTest, workdir: Path,
                  retry: bool) -> Path | None:
        """Run *test* in a fresh guest and report it; or, with *retry*,
        when the guest is lost in no module of ours, keep its console and
        return where it is, reporting nothing."""
        if retry:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for f in workdir.glob("*"):
                if f.is_file() and not f.name.startswith("lost-"):
                    f.unlink()
        try:
            g = self.boot(test, workdir)
        except GuestLost as exc:
            lost = f"guest lost {BOOT_ATTEMPTS} times"
            print(f"INFRA: {self.series}/{test.name}: {lost}: {exc}",
                  flush=True)
            self.report(test, "FAIL", f"INFRA: {lost} (infrastructure, "
                        f"not the test): {exc}; logs: {workdir}")
            return None
        except BootError as exc:
            self._finish(test, workdir, None, "FAIL", str(exc))
            return None

        ctx = Context(self.series, test.name, g, self.our_modules,
                      self.verbose, self.modprobe_conf)
        status, reason = "PASS", ""
        try:
            test.fn(ctx)
        except TestSkip as exc:
            status, reason = "SKIP", str(exc)
        except TestFailure as exc:
            status, reason = "FAIL", str(exc)
        except GuestLost as exc:
            status, reason = "FAIL", f"guest lost during test: {exc}"
            if retry and not names_our_modules(g.console()):
                g.stop()
                kept = workdir / "lost-test-console.log"
                kept.write_text(g.console())
                return kept
        except (GuestCommandError, QMPError) as exc:
            status, reason = "FAIL", str(exc)
        except Exception as exc:  # pylint: disable=broad-except
            if self.verbose:
                traceback.print_exc(file=sys.stdout)
            status, reason = "FAIL", f"{type(exc).__name__}: {exc}"
        finally:
            g.stop()
        self._finish(test, workdir, g, status, reason)
        return None

    def _finish(self, test: RigTest, workdir: Path, g: Guest | None,
                status: str, reason: str) -> None:
        """Scan the console, report, and keep logs of failures."""
        text = g.console_since_load() if g else \
            (workdir / "console.log").read_text(errors="replace")
        bad = [ln for ln in scan_console(text) if ln not in reason]
        if bad:
            msg = "console: " + " | ".join(bad[:4])
            if status == "FAIL":
                reason += "; " + msg
            else:
                status, reason = "FAIL", msg
        if status == "FAIL":
            reason += f" (console log: {workdir / 'console.log'})"
        elif not any(workdir.glob("lost-*")):
            shutil.rmtree(workdir, ignore_errors=True)
        self.report(test, status, reason)

#: How a kernel log names code of our modules (a call trace's frames).
OUR_FRAME = re.compile(r"\[(balloon_core|balloon_virtio|balloon_vmw)\]")


def names_our_modules(console: str) -> bool:
    """Does the kernel log show our modules' code in a trace?"""
    return bool(OUR_FRAME.search(console))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare kernel + initramfs, run the tests."""
    ap = argparse.ArgumentParser(
        description="QEMU end-to-end tests for the balloon drivers")
    ap.add_argument("--series", required=True,
                    help="kernel series (" + ", ".join(kernels.SERIES) +
                    ") or a full release")
    ap.add_argument("--modules", metavar="DIR",
                    help="dir with our .ko files (or <DIR>/<kver>/)")
    ap.add_argument("--modprobe-conf", metavar="FILE", type=Path,
                    default=MODPROBE_CONF,
                    help="the modprobe.d file the blacklist test installs "
                         "(default: the tree's etc/modprobe.d/balloon.conf)")
    ap.add_argument("--cache", metavar="DIR",
                    help="cache dir (default $BALLOON_CACHE or "
                         "~/.cache/balloon-drv)")
    ap.add_argument("-k", metavar="NAME", action="append",
                    help="run only tests whose name contains NAME")
    ap.add_argument("--smoke", action="store_true",
                    help="run only the smoke tests (inflate, deflate, "
                    "unload), for a kernel tested lightly")
    ap.add_argument("--append", metavar="ARGS", action="append", default=[],
                    help="extra kernel command line, e.g. init_on_alloc=0")
    ap.add_argument("--balloon-prop", metavar="K=V", action="append",
                    default=[], help="extra virtio-balloon-pci property, "
                    "e.g. deflate-on-oom=on")
    ap.add_argument("--smp", type=int, help="guest CPUs (default: per test)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--list", action="store_true", help="list tests")
    args = ap.parse_args(argv)
    if not args.modprobe_conf.is_file():
        ap.error(f"--modprobe-conf: no file {args.modprobe_conf}")

    tests = [t for t in TESTS
             if (not args.k or any(k in t.name for k in args.k)) and
             (t.smoke or not args.smoke)]
    if args.list:
        for t in tests:
            print(f"{t.name}: {(t.fn.__doc__ or '').strip()}")
        return 0

    # One heavy job at a time on this machine (scripts/lib.sh has the
    # same lock for kernel builds); held until this process exits.
    lock = heavy_lock(args.cache)  # noqa: F841 (held until exit)
    t0 = time.monotonic()
    try:
        prep = prepare(args.series, args.modules, args.cache)
    except PREPARE_ERRORS as exc:
        print(f"FAIL: {args.series}/setup: INFRA: cannot prepare kernel "
              f"and initramfs: {' '.join(str(exc).split())}")
        print("0 passed, 1 failed, 0 skipped")
        return 1
    kimg, initrd = prep.kimg, prep.initrd
    if args.modules and args.verbose:
        print(f"# our modules: {[str(p) for p in prep.ours]}", flush=True)
    print(f"# kernel {kimg.kver}, initramfs {initrd.name} "
          f"({time.monotonic() - t0:.1f} s to prepare)", flush=True)

    series = kimg.series or kimg.kver
    runner = Runner(series, kimg, initrd, prep.ours, prep.problem,
                    kernels.cache_root(args.cache) / "runs" / series,
                    args.verbose, args.modprobe_conf, cache=args.cache,
                    lock_file=lock)
    props = dict(p.split("=", 1) for p in args.balloon_prop)
    extra = tuple(a for arg in args.append for a in arg.split())
    for test in tests:
        # --balloon-prop names virtio-balloon-pci properties.
        test.spec = dataclasses.replace(
            test.spec, cmdline=test.spec.cmdline + extra,
            balloon_props={**test.spec.balloon_props,
                           **({} if test.spec.vmware else props)},
            smp=args.smp or test.spec.smp)
        runner.run(test)
    c = runner.counts
    print(f"{c['PASS']} passed, {c['FAIL']} failed, {c['SKIP']} skipped",
          flush=True)
    return 1 if c["FAIL"] else 0

