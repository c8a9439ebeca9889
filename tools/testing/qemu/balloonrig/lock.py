"""The machine-wide lock for kernel builds and QEMU guests.

Kernel builds and guests each want both of a small machine's CPUs: a run
that does either takes ``<cache>/heavy.lock`` first (``scripts/lib.sh``'s
``balloon_heavy_lock`` takes the same lock, on file descriptor 9).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

#: The descriptor on which scripts/lib.sh holds the lock.
SHELL_FD = 9


def inherited_fd(path: Path, fd: int = SHELL_FD) -> int | None:
    """Return *fd* if it is open on *path* (a shell that holds the lock
    started us), else None."""
    try:
        return fd if os.path.samestat(os.fstat(fd), os.stat(path)) else None
    except OSError:
        return None


def heavy_lock(root: Path):
    """Take the lock in cache directory *root*; return the open file that
    holds it (held until it is closed or the process exits).  A lock the
    calling shell already holds, on a descriptor we inherited, is ours
    too: taking it again on that descriptor succeeds at once, where a new
    open of the file would wait for ourselves."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "heavy.lock"
    fd = inherited_fd(path)
    if fd is not None:
        f = os.fdopen(os.dup(fd), "a")
    else:
        f = open(path, "a")  # pylint: disable=consider-using-with
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("# waiting for another kernel build or QEMU run to finish",
              flush=True)
        fcntl.flock(f, fcntl.LOCK_EX)
    return f
