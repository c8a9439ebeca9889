"""The QEMU that has the VMware balloon device.

``scripts/vmw-qemu.sh`` builds Debian's QEMU 7.2 with our
``vmware-balloon`` device (``tools/testing/qemu/vmw-balloon/``) once, keeps
it in the cache under the hash of its inputs, and prints the binary's path
on its last line; a second run only prints it.  :func:`binary` runs it.

$BALLOON_VMW_QEMU, if set, names a binary to use instead (one built by
hand from a changed device, say) and nothing is built.

The script takes the machine-wide heavy lock for the build.  A caller that
holds that lock already (the runner does, for its whole run) passes its
lock file: the script gets it as descriptor 9, where ``scripts/lib.sh``
takes it again at once instead of waiting for its own parent.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO

from .kernels import cache_root

SCRIPT = Path(__file__).resolve().parents[4] / "scripts" / "vmw-qemu.sh"

#: The descriptor scripts/lib.sh holds the heavy lock on.
LOCK_FD = 9


def binary(cache: str | os.PathLike | None = None,
           lock_file: IO | None = None) -> Path:
    """Return the path of the QEMU binary with the VMware balloon
    ($BALLOON_VMW_QEMU if set), building it first if needed.  Raises
    RuntimeError (with the script's last error lines) when it cannot be
    had."""
    given = os.environ.get("BALLOON_VMW_QEMU")
    if given:
        if not os.access(given, os.X_OK):
            raise RuntimeError(f"BALLOON_VMW_QEMU={given} is not executable")
        return Path(given)
    env = dict(os.environ, BALLOON_CACHE=str(cache_root(cache)))
    fds: tuple[int, ...] = ()
    preexec = None
    if lock_file is not None:
        fd = lock_file.fileno()
        fds = (fd,)

        def preexec() -> None:
            os.dup2(fd, LOCK_FD)
    # pylint: disable-next=subprocess-popen-preexec-fn
    res = subprocess.run(["bash", str(SCRIPT)], env=env, pass_fds=fds,
                         preexec_fn=preexec, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, check=False)
    lines = res.stdout.strip().splitlines()
    path = Path(lines[-1]) if lines else None
    if res.returncode != 0 or path is None or not os.access(path, os.X_OK):
        tail = " | ".join(res.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"scripts/vmw-qemu.sh failed (exit "
                           f"{res.returncode}): {tail}")
    return path
