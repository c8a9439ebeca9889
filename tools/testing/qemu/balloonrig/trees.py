"""Kernel source trees of the trixie-backports and arm64 series.

Debian's ``linux-headers-KVER`` of a 7.x kernel needs gcc 14 and a newer
glibc than Debian 12's, and an arm64 one carries arm64 programs, so
modules are built against a tree of our own: ``linux-source-X.Y`` with
the headers package's ``.config`` and ``Module.symvers``, ``make
olddefconfig`` and ``make KERNELRELEASE=KVER modules_prepare`` under the
host's gcc (for arm64, Debian 12's ``aarch64-linux-gnu-`` cross gcc and
``ARCH=arm64``: :data:`balloonrig.kernels.MAKE_ARGS`).  Modules built
there carry the image's vermagic and load in it (the symbol CRCs of
MODVERSIONS kernels come from the image's own ``Module.symvers``).

kunit.py wants an unconfigured tree, so the source is unpacked twice from
the one downloaded ``.deb`` (never written out as a tarball):

* ``<cache>/linux-source-7.3/``: unconfigured, for kunit.py
  (:func:`source_tree`), replaced when the package's version changes;
* ``<cache>/kbuild-KVER/``: prepared for module builds
  (:func:`module_tree`), keyed by the kernel release.

Both carry a stamp file naming the ``.deb`` they came from; a tree
without its stamp (an interrupted run) is made again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import backports, kernels, lock

#: Written last into a finished tree: the source .deb's file name.
STAMP = ".balloon-tree"


def source_package(series: str) -> str:
    """The Debian package holding *series*' source tarball
    (``linux-source-7.3`` for ``7.3-arm64-16k``)."""
    return f"linux-source-{kernels.base_series(series)}"


def _source_deb(series: str, cache) -> Path:
    """The source package of *series*, downloaded once: trixie-backports'
    through the amd64 list for every 7.3 flavour (the package is
    architecture-independent), Debian 12's through the list the series'
    images come from."""
    if series in kernels.BACKPORTS:
        apt = kernels.backports_apt(cache)
    else:
        apt = kernels.series_apt(series, cache)
    if apt is None:
        raise ValueError(f"no source tree for series {series!r} here "
                         f"(its headers are installed)")
    return apt.download(source_package(series))


def _unpack(deb: Path, series: str, dest: Path) -> None:
    backports.unpack_source(
        deb, f"./usr/src/{source_package(series)}.tar.xz", dest)


def _stamp_ok(tree: Path, deb: Path) -> bool:
    try:
        return (tree / STAMP).read_text().strip() == deb.name
    except OSError:
        return False


def source_tree(series: str, cache=None) -> Path:
    """Return the unconfigured source tree of *series* (for kunit.py),
    unpacking the newest ``linux-source-SERIES`` into the cache if it is
    not there yet."""
    deb = _source_deb(series, cache)
    root = kernels.cache_root(cache)
    tree = root / source_package(series)
    if _stamp_ok(tree, deb):
        return tree
    # Unpacking is a minute of a CPU; and two runs must not unpack at once.
    with lock.heavy_lock(root, sys.stderr):
        if not _stamp_ok(tree, deb):
            t0 = time.monotonic()
            _unpack(deb, series, tree)
            (tree / STAMP).write_text(deb.name + "\n")
            _say(f"{tree} unpacked in {time.monotonic() - t0:.0f} s")
    return tree


def headers_files(kver: str, cache=None) -> tuple[Path, Path]:
    """Return ``.config`` and ``Module.symvers`` of *kver*, from
    ``linux-headers-KVER`` unpacked (never installed) into the cache."""
    apt = kernels.series_apt(kver, cache)
    deb = apt.download(f"linux-headers-{kver}")
    dest = kernels.cache_root(cache) / "images" / f"headers-{kver}"
    base = dest / "usr" / "src" / f"linux-headers-{kver}"
    files = (base / ".config", base / "Module.symvers")
    if not all(f.exists() for f in files):
        shutil.rmtree(dest, ignore_errors=True)
        backports.extract(deb, dest)
    for f in files:
        if not f.exists():
            raise RuntimeError(f"{deb.name} has no {f.name}")
    return files


def module_tree(series: str, cache=None, jobs: int | None = None) -> Path:
    """Return the module build tree of *series*' newest release (the KDIR
    to build our modules against), preparing it first if need be.  The
    unpacking and ``make`` take the machine-wide heavy lock."""
    kver = kernels.resolve(series, cache=cache)
    deb = _source_deb(series, cache)
    tree = kernels.cache_root(cache) / f"kbuild-{kver}"
    if _stamp_ok(tree, deb):
        return tree
    config, symvers = headers_files(kver, cache)
    with lock.heavy_lock(kernels.cache_root(cache), sys.stderr):
        if not _stamp_ok(tree, deb):
            _prepare(tree, deb, series, kver, (config, symvers), jobs)
    return tree


def _prepare(tree: Path, deb: Path, series: str, kver: str,
             files: tuple[Path, Path], jobs: int | None) -> None:
    """Unpack *deb* into *tree* and prepare it for *kver*'s modules."""
    t0 = time.monotonic()
    _unpack(deb, series, tree)
    for f in files:
        shutil.copy2(f, tree / f.name)
    _say(f"unpacked in {time.monotonic() - t0:.0f} s; preparing for "
         f"{kver} (make olddefconfig modules_prepare)")
    log = tree / ".balloon-prepare.log"
    t1 = time.monotonic()
    cross = list(kernels.MAKE_ARGS[kernels.arch_of(kver)])
    with open(log, "w") as out:
        for target in ([*cross, "olddefconfig"],
                       [*cross, f"KERNELRELEASE={kver}",
                        f"-j{jobs or os.cpu_count() or 1}",
                        "modules_prepare"]):
            res = subprocess.run(["make", "-C", str(tree), *target],
                                 stdout=out, stderr=subprocess.STDOUT,
                                 check=False)
            if res.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"make {' '.join(target)} in {tree} "
                                   f"failed: " + "\n".join(tail))
    # The release modules get in their vermagic is UTS_RELEASE, which
    # KERNELRELEASE= sets (6.1's kernel.release file says 6.1.192 then).
    uts = (tree / "include" / "generated" / "utsrelease.h").read_text()
    release = uts.split('"')[1] if uts.count('"') == 2 else uts.strip()
    if release != kver:
        raise RuntimeError(f"{tree} prepared for {release!r}, not {kver!r}")
    (tree / STAMP).write_text(deb.name + "\n")
    _say(f"{tree} prepared in {time.monotonic() - t1:.0f} s")


def _say(msg: str) -> None:
    print(f"trees: {msg}", file=sys.stderr, flush=True)
