#!/usr/bin/env python3
"""Resolve, download and unpack Debian distro kernels for QEMU testing.

Kernel versions are resolved at run time from the apt package lists, so the
ABI number of a series (e.g. ``6.1.0-56``) is never hard-coded.  Images are
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache
directory; nothing is installed into /boot or /lib/modules of the host.

The 6.x series come from the system's own apt sources (Debian 12).  The
series in :data:`BACKPORTS` come from Debian 13's ``trixie-backports``,
through a private apt list in the cache (:mod:`balloonrig.backports`).  The
arm64 series (:data:`ARCH`: ``6.12-arm64``, ``6.1-arm64``, ``7.3-arm64``,
``7.3-arm64-16k``) come through private lists of that architecture alone
(Debian 12's suites, or trixie-backports), never through the system's
apt, and boot in ``qemu-system-aarch64``.  Since 7.x an image is
split into ``linux-binary-KVER`` (``vmlinuz``),
``linux-modules-KVER`` and ``linux-base-KVER`` (config, System.map,
modules.builtin), all under ``usr/lib/modules/KVER/``.  Their headers
package does not run on Debian 12 (nor does an arm64 one):
:mod:`balloonrig.trees` prepares a module build tree from
``linux-source-X.Y`` instead.

Command line (also used by the shell build scripts)::

    kernels.py resolve SERIES [--headers] [--kdir]
    kernels.py kdir SERIES            module build tree (prepared if need be)
    kernels.py make-args SERIES       make's ARCH= and CROSS_COMPILE= for it
    kernels.py arch SERIES            its Debian architecture (amd64, arm64)
    kernels.py source 7.3             unconfigured source tree (kunit.py)
    kernels.py fetch SERIES [--cache DIR]

SERIES is one of :data:`SERIES`: 6.12, 6.1, 7.3 (amd64), 6.12-arm64,
6.1-arm64, 7.3-arm64, 7.3-arm64-16k.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

try:
    from . import backports
except ImportError:  # run as a script (scripts/lib.sh)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from balloonrig import backports  # type: ignore[no-redef]

#: Series name -> regex matching the kernel release inside a package name.
#: Group 1 is the release string, the remaining groups are numeric sort keys.
SERIES = {
    "6.12": r"(6\.12\.(\d+)\+deb12-amd64)",
    "6.1": r"(6\.1\.0-(\d+)-amd64)",
    "7.3": r"(7\.3\.(\d+)\+deb(\d+)-amd64)",
    "6.12-arm64": r"(6\.12\.(\d+)\+deb12-arm64)",
    "6.1-arm64": r"(6\.1\.0-(\d+)-arm64)",
    "7.3-arm64": r"(7\.3\.(\d+)\+deb(\d+)-arm64)",
    "7.3-arm64-16k": r"(7\.3\.(\d+)\+deb(\d+)-arm64-16k)",
}

#: Series fetched from trixie-backports with a private apt list.
BACKPORTS = ("7.3", "7.3-arm64", "7.3-arm64-16k")

#: The Debian architecture of each series that is not amd64.
ARCH = {"6.12-arm64": "arm64", "6.1-arm64": "arm64", "7.3-arm64": "arm64",
        "7.3-arm64-16k": "arm64"}

#: The machine's own architecture: its series use the system's apt for
#: Debian 12's kernels.
HOST_ARCH = "amd64"

#: make's arguments that build for a Debian architecture (kbuild's ARCH=
#: and the Debian 12 cross compiler's prefix).
MAKE_ARGS = {"amd64": (), "arm64": ("ARCH=arm64",
                                    "CROSS_COMPILE=aarch64-linux-gnu-")}

#: The packages of a backports kernel image (7.x splits linux-image-KVER,
#: now an empty metapackage, into these).
BACKPORTS_IMAGE = ("linux-binary-{kver}", "linux-modules-{kver}",
                   "linux-base-{kver}")

_apt_updated = False


def cache_root(override: str | os.PathLike | None = None) -> Path:
    """Return the cache directory: *override*, $BALLOON_CACHE or XDG cache."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("BALLOON_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "balloon-drv"


def backports_apt(cache: str | os.PathLike | None = None,
                  quiet: bool = False,
                  arch: str = HOST_ARCH) -> backports.PrivateApt:
    """The private apt configuration for trixie-backports in the cache
    (for *arch*'s packages, in a directory of its own when it is not the
    machine's)."""
    if arch == HOST_ARCH:
        return backports.PrivateApt(
            cache_root(cache) / "apt-trixie-backports", quiet=quiet)
    return backports.PrivateApt(
        cache_root(cache) / f"apt-trixie-backports-{arch}", quiet=quiet,
        arch=arch)


#: Debian 12's suites, for the arm64 6.x kernels: the point release and
#: the security archive (where the newest 6.1 and 6.12 are).
BOOKWORM_SUITES = ("bookworm", "bookworm-updates", "bookworm-security")


def arch_of(series: str) -> str:
    """The Debian architecture of *series* (a series name or release; a
    release of no known series by the flavour it ends with)."""
    known = series_of(series) or series
    if known in SERIES:
        return ARCH.get(known, HOST_ARCH)
    return "arm64" if re.search(r"-arm64(-\w+)?$", series) else HOST_ARCH


def base_series(series: str) -> str:
    """The kernel version of *series*: ``7.3`` for ``7.3-arm64-16k``."""
    return series.split("-", 1)[0]


def series_apt(series: str, cache: str | os.PathLike | None = None,
               quiet: bool = False) -> backports.PrivateApt | None:
    """The private apt configuration *series*' packages come from, or
    None for the system's own (Debian 12's amd64 kernels)."""
    arch = arch_of(series)
    if (series_of(series) or series) in BACKPORTS:
        return backports_apt(cache, quiet, arch)
    if arch == HOST_ARCH:
        return None
    return bookworm_apt(arch, cache, quiet)


def bookworm_apt(arch: str, cache: str | os.PathLike | None = None,
                 quiet: bool = False) -> backports.PrivateApt:
    """The private apt configuration for Debian 12's packages of another
    architecture *arch* (kernels, busybox-static)."""
    return backports.PrivateApt(cache_root(cache) / f"apt-bookworm-{arch}",
                                quiet=quiet, suites=BOOKWORM_SUITES,
                                arch=arch)


def flavour(series: str) -> str:
    """The kernel flavour of *series*, the suffix of its releases and of
    its metapackage ``linux-image-FLAVOUR`` (``amd64``, ``arm64-16k``)."""
    return series.split("-", 1)[1] if "-" in series else HOST_ARCH


def _pkgnames(prefix: str) -> list[str]:
    out = subprocess.run(["apt-cache", "pkgnames", prefix],
                         check=False, capture_output=True, text=True).stdout
    return out.split()


def _apt_update() -> None:
    global _apt_updated
    if _apt_updated:
        return
    _apt_updated = True
    print("kernels: running apt-get update", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=False,
                   stdout=subprocess.DEVNULL)


def _candidates(series: str, kind: str,
                pkgnames: Callable[[str], list[str]] = _pkgnames) -> list[str]:
    """Return release strings of *series* packaged as *kind*, newest first
    (package names from *pkgnames*, the system's apt by default)."""
    if series not in SERIES:
        raise ValueError(f"unknown series {series!r} "
                         f"(known: {', '.join(SERIES)})")
    pat = re.compile(rf"^linux-{kind}-{SERIES[series]}$")
    found = {}
    for name in pkgnames(f"linux-{kind}-{base_series(series)}"):
        m = pat.match(name)
        if m:
            found[m.group(1)] = tuple(int(g) for g in m.groups()[1:])
    return sorted(found, key=found.__getitem__, reverse=True)


def newest_backports(series: str, image_depends: list[str],
                     binaries: list[str]) -> str | None:
    """Return the newest release of *series* in trixie-backports: the one
    its metapackage (``linux-image-amd64``, ``linux-image-arm64-16k``...)
    depends on (*image_depends*) when it is of the series, else the newest
    among the ``linux-binary-*`` packages named in *binaries*."""
    pat = re.compile(rf"^linux-(?:image|binary)-{SERIES[series]}$")
    for name in image_depends:
        m = pat.match(name)
        if m:
            return m.group(1)
    found = {}
    for name in binaries:
        m = pat.match(name)
        if m:
            found[m.group(1)] = tuple(int(g) for g in m.groups()[1:])
    return max(found, key=found.__getitem__) if found else None


def _resolve_backports(series: str,
                       cache: str | os.PathLike | None = None) -> str:
    apt = series_apt(series, cache)
    for attempt in range(2):
        if attempt:
            apt.update(force=True)
        deps = backports.parse_depends(
            apt.fields(f"linux-image-{flavour(series)}").get("Depends", ""))
        kver = newest_backports(
            series, deps, apt.pkgnames(f"linux-binary-{base_series(series)}."))
        if kver:
            return kver
    raise LookupError(f"no linux-binary-{base_series(series)}.* package "
                      f"of {series} in {', '.join(apt.suites)}")


def resolve(series: str, headers: bool = False,
            cache: str | os.PathLike | None = None) -> str:
    """Return the newest kernel release of *series* (e.g. ``6.1.0-56-amd64``).

    With *headers*, resolve against ``linux-headers-*`` instead of
    ``linux-image-*`` packages.  A full release string (anything that is not
    a series name) is returned unchanged.
    """
    if series not in SERIES:
        if re.fullmatch(r"\d+\.\d+", series):
            raise ValueError(f"unknown series {series!r} "
                             f"(known: {', '.join(SERIES)})")
        return series
    if series in BACKPORTS:
        # Images and headers come from one source package: one release.
        return _resolve_backports(series, cache)
    kind = "headers" if headers else "image"
    apt = series_apt(series, cache)
    if apt:
        found = _candidates(series, kind, apt.pkgnames)
        if not found:
            apt.update(force=True)
            found = _candidates(series, kind, apt.pkgnames)
    else:
        found = _candidates(series, kind)
        if not found:
            _apt_update()
            found = _candidates(series, kind)
    if not found:
        raise LookupError(f"no linux-{kind} package found for series "
                          f"{series}")
    return found[0]


def series_of(kver: str) -> str | None:
    """Return the series name a release string belongs to, if any."""
    for name, regex in SERIES.items():
        if re.fullmatch(regex, kver):
            return name
    return None


@dataclasses.dataclass
class KernelImage:
    """An unpacked distro kernel: vmlinuz, module tree and config."""

    kver: str
    root: Path

    @property
    def vmlinuz(self) -> Path:
        """Path of the bootable kernel image (``boot/vmlinuz-KVER``, or
        since 7.x ``usr/lib/modules/KVER/vmlinuz``)."""
        path = self.root / "boot" / f"vmlinuz-{self.kver}"
        if path.exists():
            return path
        for base in ("usr/lib", "lib"):
            alt = self.root / base / "modules" / self.kver / "vmlinuz"
            if alt.exists():
                return alt
        return path

    @property
    def moddir(self) -> Path:
        """Path of lib/modules/<kver> inside the unpacked package."""
        for base in ("lib", "usr/lib"):
            path = self.root / base / "modules" / self.kver
            if path.is_dir():
                return path
        raise FileNotFoundError(f"no module tree for {self.kver} under "
                                f"{self.root}")

    def config(self) -> dict[str, str]:
        """Return the kernel .config as a dict (``CONFIG_X`` -> value)."""
        conf = {}
        path = self.root / "boot" / f"config-{self.kver}"
        if not path.exists():  # 7.x: linux-base-KVER
            path = self.moddir / "config"
        for line in path.read_text().splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                key, val = line.split("=", 1)
                conf[key] = val
        return conf

    @property
    def series(self) -> str | None:
        """Series name (``6.12``/``6.1``) or None for unknown releases."""
        return series_of(self.kver)

    @property
    def arch(self) -> str:
        """Debian architecture of the kernel (``amd64``, ``arm64``)."""
        return arch_of(self.kver)


def fetch(series: str, cache: str | os.PathLike | None = None,
          quiet: bool = False) -> KernelImage:
    """Download and unpack the kernel image of *series* (or a release).

    The package lands in ``<cache>/images/<kver>/``; nothing is done when a
    previous run already unpacked it.  A missing modules.dep (the 6.1
    packages ship none) is generated with ``depmod -b``.
    """
    kver = resolve(series, cache=cache)
    dest = cache_root(cache) / "images" / kver
    stamp = dest / ".unpacked"
    img = KernelImage(kver, dest / "root")
    if stamp.exists():
        return img
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if series_of(kver) in BACKPORTS:
        _fetch_backports(img, cache, quiet)
    else:
        _fetch_image(img, cache, quiet)
    if not (img.moddir / "modules.dep").exists():
        subprocess.run(["depmod", "-b", str(img.moddir.parents[2]), kver],
                       check=True)
    if not img.vmlinuz.exists():
        raise RuntimeError(f"no {img.vmlinuz.name} in the packages of "
                           f"{kver}")
    stamp.touch()
    return img


def _fetch_backports(img: KernelImage, cache: str | os.PathLike | None,
                     quiet: bool) -> None:
    """Download and unpack the split image of a backports kernel."""
    apt = series_apt(img.kver, cache, quiet)
    for pattern in BACKPORTS_IMAGE:
        backports.extract(apt.download(pattern.format(kver=img.kver)),
                          img.root)


def _fetch_image(img: KernelImage, cache: str | os.PathLike | None,
                 quiet: bool) -> None:
    """Download and unpack linux-image-KVER from the system's sources (or,
    for another architecture, from its private list)."""
    kver = img.kver
    dest = img.root.parent
    pkg = f"linux-image-{kver}"
    apt = series_apt(kver, cache, quiet)
    if apt:
        backports.extract(apt.download(pkg), img.root)
        return
    if not quiet:
        print(f"kernels: downloading {pkg}", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        res = subprocess.run(["apt-get", "download", "-qq", pkg], cwd=tmp,
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            _apt_update()
            res = subprocess.run(["apt-get", "download", "-qq", pkg],
                                 cwd=tmp, capture_output=True, text=True,
                                 check=False)
        debs = list(Path(tmp).glob("*.deb"))
        if res.returncode != 0 or len(debs) != 1:
            raise RuntimeError(f"apt-get download {pkg} failed: "
                               f"{res.stderr.strip()}")
        subprocess.run(["dpkg", "-x", str(debs[0]), str(img.root)],
                       check=True)


def _trees():
    """:mod:`balloonrig.trees`, imported late (it imports this module)."""
    # pylint: disable=import-outside-toplevel
    try:
        from . import trees
    except ImportError:  # run as a script
        from balloonrig import trees  # type: ignore[no-redef]
    return trees


def kdir(series: str, cache: str | os.PathLike | None = None) -> Path:
    """Return the tree to build modules for *series* against: Debian's
    installed headers for amd64 6.x, a tree prepared in the cache for the
    backports series and for arm64 (:func:`balloonrig.trees.module_tree`)."""
    if series_apt(series, cache):
        return _trees().module_tree(series_of(series) or series, cache)
    return Path(f"/usr/src/linux-headers-{resolve(series, headers=True)}")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``resolve``, ``kdir``, ``source`` or ``fetch``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="cache dir (default $BALLOON_CACHE)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("resolve", help="print the newest kernel release")
    rp.add_argument("series", choices=sorted(SERIES))
    rp.add_argument("--headers", action="store_true",
                    help="resolve from linux-headers-* packages")
    rp.add_argument("--kdir", action="store_true",
                    help="print the module build tree instead (see kdir)")
    kp = sub.add_parser("kdir", help="print the module build tree: "
                        "/usr/src/linux-headers-<kver> (6.x), or one "
                        "prepared in the cache (backports series)")
    kp.add_argument("series", choices=sorted(SERIES))
    mp = sub.add_parser("make-args", help="print make's ARCH= and "
                        "CROSS_COMPILE= for the series (nothing for amd64)")
    mp.add_argument("series", choices=sorted(SERIES))
    arp = sub.add_parser("arch", help="print the series' Debian "
                         "architecture (amd64, arm64)")
    arp.add_argument("series", choices=sorted(SERIES))
    sp = sub.add_parser("source", help="print an unconfigured source tree "
                        "(for kunit.py), unpacked into the cache")
    sp.add_argument("series", choices=("7.3",))
    fp = sub.add_parser("fetch", help="download + unpack, print the dir")
    fp.add_argument("series", help="series (6.12, 6.1, 7.3, 6.12-arm64, "
                    "6.1-arm64, 7.3-arm64, 7.3-arm64-16k) or full release")
    fp.add_argument("--cache", dest="fetch_cache",
                    help="cache dir (default $BALLOON_CACHE)")
    args = ap.parse_args(argv)
    cache = getattr(args, "fetch_cache", None) or args.cache
    try:
        if args.cmd == "resolve" and not args.kdir:
            print(resolve(args.series, headers=args.headers, cache=cache))
        elif args.cmd in ("resolve", "kdir"):
            print(kdir(args.series, cache))
        elif args.cmd == "make-args":
            print(" ".join(MAKE_ARGS[arch_of(args.series)]))
        elif args.cmd == "arch":
            print(arch_of(args.series))
        elif args.cmd == "source":
            print(_trees().source_tree(args.series, cache))
        else:
            print(fetch(args.series, cache).root)
    except (LookupError, RuntimeError, ValueError, OSError,
            subprocess.CalledProcessError) as exc:
        print(f"kernels.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
