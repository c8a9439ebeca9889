#!/usr/bin/env python3
"""Resolve, download and unpack Debian distro kernels for QEMU testing.

Kernel versions are resolved at run time from the apt package lists, so the
ABI number of a series (e.g. ``6.1.0-56``) is never hard-coded.  Images are
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache
directory; nothing is installed into /boot or /lib/modules of the host.

Command line (also used by the shell build scripts)::

    kernels.py resolve {6.12|6.1} [--headers] [--kdir]
    kernels.py fetch {6.12|6.1} [--cache DIR]
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

#: Series name -> regex matching the kernel release inside a package name.
#: Group 1 is the release string, the remaining groups are numeric sort keys.
SERIES = {
    "6.12": r"(6\.12\.(\d+)\+deb12-amd64)",
    "6.1": r"(6\.1\.0-(\d+)-amd64)",
}

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


def _candidates(series: str, kind: str) -> list[str]:
    """Return release strings of *series* packaged as *kind*, newest first."""
    if series not in SERIES:
        raise ValueError(f"unknown series {series!r} "
                         f"(known: {', '.join(SERIES)})")
    pat = re.compile(rf"^linux-{kind}-{SERIES[series]}$")
    found = {}
    for name in _pkgnames(f"linux-{kind}-{series}"):
        m = pat.match(name)
        if m:
            found[m.group(1)] = tuple(int(g) for g in m.groups()[1:])
    return sorted(found, key=found.__getitem__, reverse=True)


def resolve(series: str, headers: bool = False) -> str:
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
    kind = "headers" if headers else "image"
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
        """Path of the bootable kernel image."""
        return self.root / "boot" / f"vmlinuz-{self.kver}"

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
        for line in path.read_text().splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                key, val = line.split("=", 1)
                conf[key] = val
        return conf

    @property
    def series(self) -> str | None:
        """Series name (``6.12``/``6.1``) or None for unknown releases."""
        return series_of(self.kver)


def fetch(series: str, cache: str | os.PathLike | None = None,
          quiet: bool = False) -> KernelImage:
    """Download and unpack the kernel image of *series* (or a release).

    The package lands in ``<cache>/images/<kver>/``; nothing is done when a
    previous run already unpacked it.  A missing modules.dep (the 6.1
    packages ship none) is generated with ``depmod -b``.
    """
    kver = resolve(series)
    dest = cache_root(cache) / "images" / kver
    stamp = dest / ".unpacked"
    img = KernelImage(kver, dest / "root")
    if stamp.exists():
        return img
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    pkg = f"linux-image-{kver}"
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
    if not (img.moddir / "modules.dep").exists():
        subprocess.run(["depmod", "-b", str(img.moddir.parents[2]), kver],
                       check=True)
    if not img.vmlinuz.exists():
        raise RuntimeError(f"{pkg} has no {img.vmlinuz.name}")
    stamp.touch()
    return img


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``resolve`` or ``fetch`` a kernel series."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("resolve", help="print the newest kernel release")
    rp.add_argument("series", choices=sorted(SERIES))
    rp.add_argument("--headers", action="store_true",
                    help="resolve from linux-headers-* packages")
    rp.add_argument("--kdir", action="store_true",
                    help="print /usr/src/linux-headers-<kver> instead")
    fp = sub.add_parser("fetch", help="download + unpack, print the dir")
    fp.add_argument("series", help="series (6.12, 6.1) or full release")
    fp.add_argument("--cache", help="cache dir (default $BALLOON_CACHE)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "resolve":
            kver = resolve(args.series, headers=args.headers or args.kdir)
            print(f"/usr/src/linux-headers-{kver}" if args.kdir else kver)
        else:
            print(fetch(args.series, args.cache).root)
    except (LookupError, RuntimeError, ValueError) as exc:
        print(f"kernels.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
