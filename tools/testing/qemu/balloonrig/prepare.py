"""What every entry point does before it boots a guest.

:func:`heavy_lock` takes the machine-wide lock for kernel builds and QEMU
guests; :func:`check_vermagic` checks that our modules were built for the
kernel under test.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from . import kernels


def check_vermagic(mods: list[Path], kver: str) -> str | None:
    """Return a problem if a module in *mods* is not built for *kver*."""
    for ko in mods:
        magic = subprocess.run(["modinfo", "-F", "vermagic", str(ko)],
                               capture_output=True, text=True,
                               check=False).stdout.strip()
        if magic.split(" ")[0] != kver:
            return f"{ko} is built for {magic.split(' ')[0] or '?'}, " \
                   f"not {kver}"
    return None


def heavy_lock(cache: str | None):
    """Take the machine-wide lock for kernel builds and QEMU guests."""
    root = kernels.cache_root(cache)
    root.mkdir(parents=True, exist_ok=True)
    f = open(root / "heavy.lock", "a")  # pylint: disable=consider-using-with
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("# waiting for another kernel build or QEMU run to finish",
              flush=True)
        fcntl.flock(f, fcntl.LOCK_EX)
    return f
