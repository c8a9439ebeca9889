"""The machine-wide lock for kernel builds and QEMU guests.

Kernel builds and guests each want both of a small machine's CPUs: a run
that does either takes ``<cache>/heavy.lock`` first (``scripts/lib.sh``'s
``balloon_heavy_lock`` takes the same lock, on file descriptor 9).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import TextIO

#: The descriptor on which scripts/lib.sh holds the lock.
SHELL_FD = 9


def inherited_fd(path: Path, fd: int | None = None) -> int | None:
    """Return *fd* (default :data:`SHELL_FD`) if it is open on *path* (a
    shell that holds the lock started us), else None."""
    fd = SHELL_FD if fd is None else fd
    try:
        return fd if os.path.samestat(os.fstat(fd), os.stat(path)) else None
    except OSError:
        return None


def heavy_lock(root: Path, out: TextIO | None = None):
    """Take the lock in cache directory *root*; return the open file that
    holds it (held until it is closed or the process exits).  A lock the
    calling shell already holds, on a descriptor we inherited, is ours
    too: taking it again on that descriptor succeeds at once, where a new
    open of the file would wait for ourselves.  While it waits, it says so
    on *out* (stdout by default: a ``#`` line among the rig's results)."""
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
              file=out or sys.stdout, flush=True)
        fcntl.flock(f, fcntl.LOCK_EX)
    return f
