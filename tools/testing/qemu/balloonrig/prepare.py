"""What every entry point does before it boots a guest.

:func:`heavy_lock` takes the machine-wide lock for kernel builds and QEMU
guests; :func:`prepare` fetches the kernel, finds our modules for it,
checks them with :func:`check_vermagic` and builds the initramfs.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from . import initramfs, kernels, lock

#: What :func:`prepare` raises when the kernel or initramfs cannot be had.
PREPARE_ERRORS = (OSError, LookupError, RuntimeError, ValueError,
                  subprocess.CalledProcessError)


@dataclasses.dataclass
class Prepared:
    """A kernel and initramfs to boot, and our modules for that kernel."""

    kimg: kernels.KernelImage
    #: None when *problem* is set and :func:`prepare` was not to fall back.
    initrd: Path | None
    ours: list[Path]
    #: Why our modules cannot be used, or None.
    problem: str | None


def prepare(series: str, modules: str | os.PathLike | None = None,
            cache: str | os.PathLike | None = None,
            fallback: bool = True) -> Prepared:
    """Fetch the kernel of *series*, find our modules for it under
    *modules* (optional), check that they were built for it, and build the
    initramfs with them.

    When the modules cannot be used (none found, or built for another
    kernel) the result's ``problem`` says why, and the initramfs is built
    without them if *fallback*, else not at all.  Raises one of
    :data:`PREPARE_ERRORS` when the kernel or the initramfs cannot be had.
    """
    kimg = kernels.fetch(series, cache)
    ours = initramfs.find_our_modules(modules, kimg.kver) if modules else []
    if not modules:
        problem = None
    elif not ours:
        problem = f"no .ko files in {modules}"
    else:
        problem = check_vermagic(ours, kimg.kver)
    if problem and not fallback:
        return Prepared(kimg, None, ours, problem)
    initrd = initramfs.build(kimg, ours if not problem else None,
                             cache=cache)
    return Prepared(kimg, initrd, ours, problem)


def vermagic_problem(ko: Path, vermagic: str, kver: str) -> str | None:
    """Return a problem if *vermagic* (``modinfo -F vermagic`` of *ko*:
    the release first, then flags) is not that of release *kver*."""
    release = vermagic.strip().split(" ")[0]
    if release != kver:
        return f"{ko} is built for {release or '?'}, not {kver}"
    return None


def check_vermagic(mods: list[Path], kver: str) -> str | None:
    """Return a problem if a module in *mods* is not built for *kver*."""
    for ko in mods:
        magic = subprocess.run(["modinfo", "-F", "vermagic", str(ko)],
                               capture_output=True, text=True,
                               check=False).stdout
        problem = vermagic_problem(ko, magic, kver)
        if problem:
            return problem
    return None


def heavy_lock(cache: str | None):
    """Take the machine-wide lock for kernel builds and QEMU guests."""
    return lock.heavy_lock(kernels.cache_root(cache))
