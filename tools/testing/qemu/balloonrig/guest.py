"""Start and drive a QEMU/TCG guest running the rig initramfs.

A :class:`Guest` boots a distro kernel with a virtio-balloon device and
exposes three channels:

* the kernel console (ttyS0; ttyAMA0 on arm64), written to
  ``console.log`` in the work dir and scanned for oopses/warnings by
  :func:`scan_console`;
* the command channel (ttyS1; on arm64, whose ``virt`` machine has one
  UART, a virtio console, hvc0): QEMU connects to a unix socket the host
  listens on, and the guest /init serves shell commands on it (see
  ``guest-init.sh`` for the framing);
* QMP (:class:`balloonrig.qmp.QMP`) for driving the balloon.

Readiness comes from inside the guest: :meth:`Guest.start` returns only
after /init reported ``RIG-READY`` (modules loaded, balloon driver bound
when one is expected).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import select
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

from .kernels import KernelImage
from .parse import oom_kill_lines, parse_meminfo
from .qmp import QMP, QMPError

QEMU = "qemu-system-x86_64"


@dataclasses.dataclass(frozen=True)
class Machine:
    """How QEMU emulates a Debian architecture."""

    #: The QEMU binary (from $PATH).
    qemu: str
    #: Arguments that make the machine.
    args: tuple[str, ...]
    #: The kernel console's device.
    console: str
    #: QEMU arguments that give the guest its command channel (``{sock}``
    #: is the host's socket) and the guest's device for it.
    chan_args: tuple[str, ...]
    chan: str
    #: Where the balloon device goes: arguments placed before it and its
    #: ``bus=`` (a port it can be hot-unplugged from), if any.
    bus_args: tuple[str, ...] = ()
    bus: str | None = None


#: x86-64: the ``pc`` machine, its two UARTs, the balloon on the root bus
#: (ACPI hotplug).  arm64: ``virt`` (one UART) with every CPU feature
#: (``max``; pointer authentication with QEMU's cheap algorithm, which
#: TCG runs far faster than the architected one), a virtio console for
#: the commands, and the balloon behind a PCIe root port, where PCIe
#: native hotplug can take it away (``virt``'s root bus cannot).
MACHINES = {
    "amd64": Machine(
        QEMU, (), "ttyS0",
        ("-chardev", "socket,id=cmd0,path={sock}", "-serial", "chardev:cmd0"),
        "/dev/ttyS1"),
    "arm64": Machine(
        "qemu-system-aarch64", ("-machine", "virt", "-cpu",
                                "max,pauth-impdef=on"), "ttyAMA0",
        ("-device", "virtio-serial-pci,id=vser0",
         "-chardev", "socket,id=cmd0,path={sock}",
         "-device", "virtconsole,chardev=cmd0"),
        "/dev/hvc0",
        ("-device", "pcie-root-port,id=rp0,chassis=1"), "rp0"),
}

#: Console substrings that make a test fail.
BAD_PATTERNS = ("Oops", "BUG:", "WARNING:", "KASAN", "Call Trace",
                "general protection", "Kernel panic")

#: Console marker printed by /init right before it loads modules.
LOAD_MARKER = "rig: loading modules"

#: Module lists for the boot modes; built-in entries are skipped in-guest.
MODES = {
    "none": ("virtio_pci",),
    "intree": ("virtio_pci", "virtio_balloon"),
    "ours": ("virtio_pci", "balloon_core", "balloon_virtio"),
    "vmw-intree": ("vmw_balloon",),
    "vmw-ours": ("balloon_core", "balloon_vmw"),
    "vmw-none": (),
}

#: The balloon device of the VMware modes: our QEMU device on the backdoor
#: port 0x5670 (tools/testing/qemu/vmw-balloon/, built by
#: scripts/vmw-qemu.sh), which only that QEMU binary has.
VMW_DEVICE = "vmware-balloon"

#: What makes a guest see VMware: the backdoor on port 0x5658 (vmport),
#: no CPUID hypervisor bit (else Linux sees KVM/TCG first) and a DMI serial
#: that says VMware.  -L: firmware from Debian's seabios and qemu packages
#: (our build has no firmware of its own); no NIC, hence no NIC ROM.
VMW_MACHINE = (
    "-machine", "pc,vmport=on", "-cpu", "qemu64,-hypervisor",
    "-smbios", "type=1,manufacturer=VMware,, Inc.,product=VMware Virtual "
    "Platform,serial=VMware-56 4d 11 22 33 44 55 66-77 88 99 aa bb cc dd ee",
    "-L", "/usr/share/seabios", "-L", "/usr/share/qemu", "-nic", "none",
)


class GuestLost(RuntimeError):
    """The guest stopped responding, or QEMU exited."""

    #: Where :func:`boot` kept the console log of a guest lost on boot.
    console: Path | None = None


class BootError(RuntimeError):
    """The guest booted but is not in the expected state."""


class GuestCommandError(RuntimeError):
    """A guest command exited with non-zero status."""

    def __init__(self, cmd: str, rc: int, output: str):
        super().__init__(f"`{cmd}` exited {rc}: {output.strip()[-500:]}")
        self.rc = rc
        self.output = output


def scan_console(text: str) -> list[str]:
    """Return the console lines that match any of :data:`BAD_PATTERNS`."""
    return [line.strip() for line in text.splitlines()
            if any(p in line for p in BAD_PATTERNS)]


@dataclasses.dataclass
class BootSpec:
    """How to boot a guest.

    ``load`` is the module list given to /init (``rig.load=``);
    ``expect_driver`` names the driver that must be bound to the virtio
    balloon device before the guest reports ready (None: don't wait).
    ``device`` is the balloon device (``balloon_props`` are its
    properties), ``machine`` extra arguments that make the machine (the
    VMware modes' :data:`VMW_MACHINE`), and ``qemu`` the QEMU binary (None:
    :data:`QEMU` from $PATH; the VMware modes need the one of
    scripts/vmw-qemu.sh, which the runner fills in).
    """

    load: tuple[str, ...] = MODES["intree"]
    expect_driver: str | None = "virtio_balloon"
    mem_mib: int = 2048
    smp: int = 2
    cmdline: tuple[str, ...] = ()
    balloon_props: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Extra QEMU arguments, e.g. ("-object", "iothread,id=iot0").
    qemu_args: tuple[str, ...] = ()
    ready_timeout: float = 120.0
    bind_wait: int = 30
    device: str = "virtio-balloon-pci"
    machine: tuple[str, ...] = ()
    qemu: str | None = None

    @classmethod
    def mode(cls, name: str, **kwargs) -> "BootSpec":
        """Return a spec for a :data:`MODES` entry.  The ``vmw-`` modes
        boot a VMware guest with :data:`VMW_DEVICE`, and wait for no
        virtio device."""
        expect = {"intree": "virtio_balloon"}.get(name)
        kwargs.setdefault("expect_driver", expect)
        if name.startswith("vmw-"):
            kwargs.setdefault("device", VMW_DEVICE)
            kwargs.setdefault("machine", VMW_MACHINE)
        return cls(load=MODES[name], **kwargs)

    @property
    def vmware(self) -> bool:
        """Does this guest get the VMware balloon device?"""
        return self.device == VMW_DEVICE


class Guest:
    """One QEMU guest; use as a context manager or call start()/stop()."""

    def __init__(self, kernel: KernelImage, initrd: Path, spec: BootSpec,
                 workdir: str | os.PathLike):
        self.kernel = kernel
        self.initrd = Path(initrd)
        self.spec = spec
        self.workdir = Path(workdir)
        self.console_path = self.workdir / "console.log"
        self.qemu_log_path = self.workdir / "qemu.log"
        self.proc: subprocess.Popen | None = None
        self.qmp: QMP | None = None
        self.ready: dict[str, str] = {}
        self.boot_seconds = 0.0
        self._sockdir: str | None = None
        self._chan: socket.socket | None = None
        self._buf = b""
        self._req = 0
        self._load_offset = 0

    # -- lifecycle --------------------------------------------------------

    @property
    def machine(self) -> Machine:
        """How QEMU emulates the kernel's architecture."""
        return MACHINES[self.kernel.arch]

    def qemu_args(self, cmd_sock: str, qmp_sock: str) -> list[str]:
        """Return the QEMU command line."""
        spec, mach = self.spec, self.machine
        append = [f"console={mach.console}", "panic=-1",
                  "rig.load=" + ",".join(spec.load),
                  f"rig.bind={1 if spec.expect_driver else 0}",
                  f"rig.bindwait={spec.bind_wait}", f"rig.chan={mach.chan}",
                  *spec.cmdline]
        props = {**({"bus": mach.bus} if mach.bus else {}),
                 **spec.balloon_props}
        dev = f"{spec.device},id=balloon0" + "".join(
            f",{k}={v}" for k, v in props.items())
        return [
            spec.qemu or mach.qemu, *(spec.machine or mach.args),
            "-accel", "tcg", "-m", str(spec.mem_mib),
            "-smp", str(spec.smp), "-nographic", "-nodefaults",
            "-no-reboot", "-monitor", "none",
            "-kernel", str(self.kernel.vmlinuz), "-initrd", str(self.initrd),
            "-append", " ".join(append),
            "-chardev", f"file,id=con0,path={self.console_path}",
            "-serial", "chardev:con0",
            *(a.format(sock=cmd_sock) for a in mach.chan_args),
            "-qmp", f"unix:{qmp_sock},server=on,wait=off",
            *mach.bus_args, "-device", dev, *spec.qemu_args,
        ]

    @property
    def page_size(self) -> int:
        """The guest kernel's page size in bytes, as the guest reported it
        when it was ready: ``KernelPageSize`` in the smaps of a process
        of its /init)."""
        return int(self.ready["pagesize"]) * 1024

    @property
    def arch(self) -> str:
        """The guest's machine name (``uname -m``: x86_64, aarch64)."""
        return self.ready["arch"]

    def start(self) -> "Guest":
        """Boot the guest and wait for RIG-READY.

        Raises :class:`GuestLost` when the guest does not come up (an
        infrastructure problem: QEMU exited, timeout, or an oops before the
        rig loaded any module) and :class:`BootError` when it came up in the
        wrong state (e.g. the expected driver did not bind).
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._sockdir = tempfile.mkdtemp(prefix="brig-")
        cmd_sock = os.path.join(self._sockdir, "cmd.sock")
        qmp_sock = os.path.join(self._sockdir, "qmp.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(cmd_sock)
        listener.listen(1)
        t0 = time.monotonic()
        with open(self.qemu_log_path, "wb") as log:
            try:
                self.proc = subprocess.Popen(
                    self.qemu_args(cmd_sock, qmp_sock),
                    stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT)
            except OSError as exc:
                listener.close()
                raise GuestLost(f"cannot start QEMU: {exc}") from exc
        try:
            listener.settimeout(0.2)
            while self._chan is None:
                try:
                    self._chan, _ = listener.accept()
                except socket.timeout:
                    self._check_alive()
                    if time.monotonic() - t0 > 30:
                        raise GuestLost("QEMU did not open the command "
                                        "channel") from None
        finally:
            listener.close()
        try:
            self.qmp = QMP(qmp_sock)
        except QMPError as exc:
            self._check_alive()
            raise GuestLost(f"QMP: {exc}") from exc
        line = self._wait_ready(t0 + self.spec.ready_timeout)
        self.boot_seconds = time.monotonic() - t0
        self.ready = dict(f.split("=", 1) for f in line.split()[1:]
                          if "=" in f)
        console = self.console()
        self._load_offset = max(console.find(LOAD_MARKER), 0)
        early = scan_console(console[:self._load_offset])
        if early:
            raise GuestLost("early-boot oops: " + " | ".join(early[:3]))
        if self.spec.expect_driver and \
                self.ready.get("bound") != self.spec.expect_driver:
            raise BootError(f"balloon device bound to "
                            f"{self.ready.get('bound')!r}, expected "
                            f"{self.spec.expect_driver!r} ({line})")
        return self

    def _check_alive(self) -> None:
        if self.proc and self.proc.poll() is not None:
            tail = self.qemu_log_path.read_text(errors="replace")[-300:]
            panic = [ln for ln in scan_console(self.console())
                     if "Kernel panic" in ln]
            raise GuestLost(f"QEMU exited with {self.proc.returncode}"
                            + (f" ({panic[0]})" if panic else "")
                            + (f": {tail.strip()}" if tail.strip() else ""))

    def _wait_ready(self, deadline: float) -> str:
        """Wait for RIG-READY; classify what went wrong if it never comes.

        An oops before /init started loading modules means the boot itself
        broke (:class:`GuestLost`, retried by callers); one after that is
        blamed on the modules being loaded (:class:`BootError`).
        """
        first_bad = None
        while True:
            try:
                line = self._readline(min(deadline,
                                          time.monotonic() + 0.5))
                if line is not None and line.startswith("RIG-READY"):
                    return line
                self._check_alive()
            except GuestLost as exc:
                self._blame_modules(str(exc))
                raise
            console = self.console()
            marker = console.find(LOAD_MARKER)
            if scan_console(console if marker < 0 else console[marker:]):
                first_bad = first_bad or time.monotonic()
                waited = time.monotonic() - first_bad
                if marker < 0 and waited > 3:
                    raise GuestLost("early-boot oops: " + " | ".join(
                        scan_console(console)[:3]))
                if marker >= 0 and waited > 30:
                    self._blame_modules("no RIG-READY 30 s after oops")
            if time.monotonic() > deadline:
                self._blame_modules("no RIG-READY")
                raise GuestLost(f"no RIG-READY within "
                                f"{self.spec.ready_timeout:.0f} s")

    def _blame_modules(self, what: str) -> None:
        """Raise BootError if the console shows an oops after module load."""
        console = self.console()
        marker = console.find(LOAD_MARKER)
        bad = scan_console(console[marker:]) if marker >= 0 else []
        if bad:
            raise BootError(f"{what} while loading modules: "
                            + " | ".join(bad[:3]))

    def stop(self) -> None:
        """Terminate QEMU (politely via QMP first) and clean up."""
        if self.proc and self.proc.poll() is None:
            if self.qmp:
                self.qmp.quit()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        if self._chan:
            self._chan.close()
            self._chan = None
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)
            self._sockdir = None

    def __enter__(self) -> "Guest":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- console ------------------------------------------------------------

    def console(self) -> str:
        """Return the whole kernel console log so far."""
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_since_load(self) -> str:
        """Return the console from the module-load marker on."""
        return self.console()[self._load_offset:]

    # -- command channel ----------------------------------------------------

    def _readline(self, deadline: float) -> str | None:
        """Return one line from the channel, or None at *deadline*."""
        while b"\n" not in self._buf:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None
            ready, _, _ = select.select([self._chan], [], [], wait)
            if not ready:
                return None
            chunk = self._chan.recv(65536)
            if not chunk:
                try:  # QEMU closes the channel on exit: get its status
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
                self._check_alive()
                raise GuestLost("command channel closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace").strip("\r\0 ")

    def run_bytes(self, cmd: str,
                  timeout: float = 60.0) -> tuple[int, bytes]:
        """Run *cmd* with ``sh -c`` in the guest; return (rc, raw output).

        Output is stdout and stderr combined.  Raises :class:`GuestLost` if
        no reply arrives within *timeout* seconds.
        """
        self._req += 1
        req = str(self._req)
        payload = base64.b64encode(cmd.encode()).decode()
        self._chan.sendall(f"{req} {payload}\n".encode())
        deadline = time.monotonic() + timeout
        chunks: list[str] | None = None
        while True:
            line = self._readline(deadline)
            if line is None:
                self._check_alive()
                raise GuestLost(f"no reply to `{cmd}` within {timeout} s")
            if line == f"RIG-BEGIN {req}":
                chunks = []
            elif line.startswith(f"RIG-END {req} ") and chunks is not None:
                return int(line.split()[2]), base64.b64decode("".join(chunks))
            elif chunks is not None:
                chunks.append(line)

    def run(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        """Like :meth:`run_bytes`, with the output decoded as text."""
        rc, data = self.run_bytes(cmd, timeout)
        return rc, data.decode(errors="replace")

    def check(self, cmd: str, timeout: float = 60.0) -> str:
        """Run *cmd*; return its output, raise GuestCommandError if rc != 0."""
        rc, out = self.run(cmd, timeout)
        if rc != 0:
            raise GuestCommandError(cmd, rc, out)
        return out

    def read_file(self, path: str) -> str:
        """Return the contents of a guest file."""
        return self.check(f"cat {shlex.quote(path)}")

    def qemu_rss(self) -> int:
        """Resident memory of the QEMU process, in bytes."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = next(ln.split()[1] for ln in status.splitlines()
                   if ln.startswith("VmRSS:"))
        return int(kib) * 1024

    #: The tmpfs file that fill() writes and free_fill() removes.
    FILL = "/tmp/fill"

    def fill(self, mib: int, timeout: float = 300,
             nonzero: bool = False) -> None:
        """Dirty *mib* MiB of guest memory in a tmpfs file, which holds it
        (and QEMU has it resident) until free_fill().  With *nonzero* the
        pages hold 0xff bytes, which a migration must copy (QEMU sends zero
        pages as a flag)."""
        src = ("tr '\\0' '\\377' </dev/zero | dd iflag=fullblock"
               if nonzero else "dd if=/dev/zero")
        self.check("mount -o remount,size=90% /tmp && "
                   f"{src} of={self.FILL} bs=1M count={mib} 2>/dev/null",
                   timeout=timeout)

    def free_fill(self) -> None:
        """Free what fill() wrote."""
        self.check(f"rm -f {self.FILL}")

    def fill_and_free(self, mib: int, timeout: float = 300,
                      nonzero: bool = False) -> None:
        """fill(), then free_fill(): QEMU is left with *mib* MiB of the
        guest resident that the guest no longer uses."""
        self.fill(mib, timeout, nonzero)
        self.free_fill()

    def meminfo(self) -> dict[str, int]:
        """Return /proc/meminfo; ``kB`` values are converted to bytes."""
        return parse_meminfo(self.read_file("/proc/meminfo"))

    def dmesg(self) -> str:
        """Return the guest kernel log."""
        return self.check("dmesg")

    def balloon_sysfs(self, attr: str) -> str | None:
        """Return attribute *attr* of the virtio balloon device (device id
        0x0005) in sysfs, stripped, or None when there is no such device
        or attribute.  A link (``driver``) gives the name it points to."""
        out = self.check(
            "for d in /sys/bus/virtio/devices/virtio*; do "
            "[ \"$(cat $d/device 2>/dev/null)\" = 0x0005 ] || continue; "
            f"a=$d/{attr}; if [ -L $a ]; then basename $(readlink $a); "
            "elif [ -e $a ]; then cat $a; fi; done; true")
        return out.strip() or None

    def balloon_driver(self) -> str | None:
        """Return the driver bound to the virtio balloon device, if any."""
        return self.balloon_sysfs("driver")

    def oom_kills(self) -> list[str]:
        """Return the kernel log's lines about OOM kills."""
        return oom_kill_lines(self.dmesg())

    def modules(self) -> set[str]:
        """Return the names of loaded modules (from /proc/modules)."""
        return {ln.split()[0] for ln in
                self.read_file("/proc/modules").splitlines() if ln}


T = TypeVar("T")


#: How many times a guest lost before it is ready is booted in all.  An
#: early-boot oops under TCG (an int3 while the kernel patches its own
#: text) was seen about once in a hundred boots, on 7.3 twice in a row.
BOOT_ATTEMPTS = 3


def retry_lost(attempt: Callable[[int], T],
               on_lost: Callable[[int, GuestLost], None],
               attempts: int = BOOT_ATTEMPTS) -> T:
    """Return *attempt(n)* for n = 1, 2, ...: a lost guest is an
    infrastructure hiccup, so a :class:`GuestLost` is told to
    *on_lost(n, exc)* and tried again, *attempts* times in all.  Then
    raises :class:`GuestLost` with every attempt's reason."""
    reasons = []
    for n in range(1, attempts + 1):
        try:
            return attempt(n)
        except GuestLost as exc:
            reasons.append(str(exc))
            on_lost(n, exc)
    raise GuestLost(" / ".join(reasons))


def boot(kernel: KernelImage, initrd: Path, spec: BootSpec,
         workdir: str | os.PathLike,
         on_lost: Callable[[int, GuestLost], None] = lambda n, exc: None,
         attempts: int = BOOT_ATTEMPTS) -> Guest:
    """Start a guest, trying again when it is lost (see
    :func:`retry_lost`).  The console log of a lost attempt *n* is kept
    as ``lost-<n>-console.log`` in *workdir* (``GuestLost.console``)."""
    def attempt(n: int) -> Guest:
        g = Guest(kernel, initrd, spec, workdir)
        try:
            return g.start()
        except GuestLost as exc:
            g.stop()
            exc.console = g.workdir / f"lost-{n}-console.log"
            if g.console_path.exists():
                g.console_path.replace(exc.console)
            raise
        except BaseException:
            g.stop()
            raise
    return retry_lost(attempt, on_lost, attempts)
