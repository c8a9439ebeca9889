"""QEMU test rig for the balloon drivers.

Modules:

* :mod:`.kernels`   resolve, download and unpack Debian distro kernels
* :mod:`.initramfs` build the busybox initramfs (with our modules)
* :mod:`.qmp`       QMP client with balloon helpers
* :mod:`.guest`     boot a guest, command channel, console scanning
* :mod:`.parse`     pure parsers of guest output
* :mod:`.prepare`   kernel, our modules and initramfs; the heavy-job lock
* :mod:`.runner`    the test framework and runner of ``run_tests.py``

Typical use (see ``run_tests.py`` for more)::

    from balloonrig import kernels, initramfs, guest
    kimg = kernels.fetch("6.12")
    initrd = initramfs.build(kimg)
    with guest.Guest(kimg, initrd, guest.BootSpec.mode("intree"),
                     "/tmp/run") as g:
        g.qmp.balloon(1 << 30)
        print(g.qmp.wait_balloon(1 << 30).elapsed, g.meminfo()["MemTotal"])
"""

from .guest import (BootError, BootSpec, Guest, GuestCommandError,
                    GuestLost, scan_console)
from .kernels import KernelImage, cache_root, fetch, resolve
from .qmp import QMP, BalloonWait, QMPError

__all__ = [
    "BalloonWait", "BootError", "BootSpec", "Guest", "GuestCommandError",
    "GuestLost", "KernelImage", "QMP", "QMPError", "cache_root", "fetch",
    "resolve", "scan_console",
]
