"""Build a busybox-static initramfs for a given distro kernel.

The image holds busybox (Debian's ``busybox-static`` of the kernel's
architecture: the machine's own, or for arm64 the arm64 package, fetched
through its private apt list and only ever unpacked) with its applet
links, the guest /init script
(``guest-init.sh``), the kernel modules the rig needs (decompressed on the
host, so busybox modprobe needs no xz support) and optionally a directory of
our own out-of-tree modules under ``lib/modules/<kver>/updates/``.
``depmod -b`` is run on the staging tree so busybox modprobe resolves
dependencies, e.g. ``balloon_virtio -> balloon_core``.

The archive is written in cpio "newc" format by this module (so device
nodes need no root and the output is reproducible), gzip-compressed, and
cached under ``<cache>/initramfs/<hash>.cpio.gz`` keyed by all its inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from . import backports
from .kernels import HOST_ARCH, KernelImage, bookworm_apt, cache_root

BUSYBOX = Path("/bin/busybox")
INIT_SCRIPT = Path(__file__).resolve().parent.parent / "guest-init.sh"

#: In-tree modules always wanted in the image (plus their dependencies).
#: Built-in ones (virtio_pci on 6.12) are silently skipped.  vmw_balloon
#: (with vmw_vmci) is the in-tree driver of the VMware modes.
DEFAULT_MODULES = ("virtio_pci", "virtio_balloon", "vmw_balloon")

#: What an architecture's guests need on top: arm64's command channel is
#: a virtio console (guest.MACHINES).
ARCH_MODULES = {"arm64": ("virtio_console",)}

_KMOD_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")

#: Number of cached initramfs images kept per kernel release.
KEEP_IMAGES = 8


def modname(path: str | os.PathLike) -> str:
    """Return the kernel module name of a .ko path (``-`` folded to ``_``)."""
    name = os.path.basename(os.fspath(path))
    for suffix in _KMOD_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    return name.replace("-", "_")


def _read_dep(moddir: Path) -> dict[str, tuple[str, list[str]]]:
    """Parse modules.dep: module name -> (relative path, [dep paths])."""
    deps = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[modname(path)] = (path, rest.split())
    return deps


def _modinfo_depends(ko: Path) -> list[str]:
    out = subprocess.run(["modinfo", "-F", "depends", str(ko)],
                         capture_output=True, text=True, check=False).stdout
    return [d.replace("-", "_") for d in out.strip().split(",") if d]


def find_our_modules(path: str | os.PathLike, kver: str) -> list[Path]:
    """Return the .ko files of our build for *kver* under *path*.

    *path* may contain the modules directly, or one subdirectory per kernel
    release (``<path>/<kver>/*.ko``); the latter wins when present.
    """
    base = Path(path)
    if (base / kver).is_dir():
        base = base / kver
    return sorted(p for p in base.rglob("*.ko") if p.is_file())


def module_closure(kimg: KernelImage, wanted: list[str]) -> list[str]:
    """Return modules.dep paths of *wanted* modules and their dependencies.

    Names that are built in (or unknown) are skipped.
    """
    deps = _read_dep(kimg.moddir)
    result: list[str] = []
    for name in wanted:
        if name not in deps:
            continue
        path, dlist = deps[name]
        for dep in dlist + [path]:
            if dep not in result:
                result.append(dep)
    return result


class _Cpio:
    """Minimal writer for the cpio "newc" format used by initramfs."""

    def __init__(self, out: io.BufferedIOBase):
        self.out = out
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"",
               rdev: tuple[int, int] = (0, 0)) -> None:
        nameb = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0,
                  rdev[0], rdev[1], len(nameb), 0)
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.ino += 1
        self.out.write(hdr + nameb)
        self.out.write(b"\0" * (-(len(hdr) + len(nameb)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def add_tree(self, root: Path) -> None:
        """Add every file, directory and symlink below *root*, sorted."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                rel = str(full.relative_to(root))
                st = full.lstat()
                if stat.S_ISLNK(st.st_mode):
                    self._entry(rel, stat.S_IFLNK | 0o777,
                                os.readlink(full).encode())
                elif stat.S_ISDIR(st.st_mode):
                    self._entry(rel, stat.S_IFDIR | 0o755)
                else:
                    perm = 0o755 if st.st_mode & 0o111 else 0o644
                    self._entry(rel, stat.S_IFREG | perm, full.read_bytes())

    def add_chardev(self, name: str, major: int, minor: int) -> None:
        """Add a character device node."""
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> None:
        """Write the trailer record."""
        self._entry("TRAILER!!!", 0)


def busybox(kimg: KernelImage, cache: str | os.PathLike | None = None,
            ) -> Path:
    """The static busybox for *kimg*'s architecture: the machine's own,
    or Debian 12's ``busybox-static`` of that architecture unpacked once
    into the cache (the package's version in its directory name)."""
    if kimg.arch == HOST_ARCH:
        return BUSYBOX
    deb = bookworm_apt(kimg.arch, cache).download("busybox-static")
    dest = cache_root(cache) / "busybox" / deb.stem
    binary = dest / "bin" / "busybox"
    if not binary.exists():
        backports.extract(deb, dest)
    if not binary.exists():
        raise RuntimeError(f"{deb.name} has no bin/busybox")
    return binary


def _hash_inputs(kimg: KernelImage, kmods: list[str],
                 ours: list[Path], bbox: Path) -> str:
    h = hashlib.sha256()
    h.update(kimg.kver.encode())
    for path in (Path(__file__), INIT_SCRIPT, bbox):
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update("\n".join(kmods).encode())
    for ko in ours:
        h.update(ko.name.encode())
        h.update(hashlib.sha256(ko.read_bytes()).digest())
    return h.hexdigest()[:16]


def _stage(staging: Path, kimg: KernelImage, kmods: list[str],
           ours: list[Path], bbox: Path) -> None:
    for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev",
                "tmp", "run", "root", "etc", "mnt"):
        (staging / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(bbox, staging / "bin" / "busybox")
    # The machine's busybox names the applets: another architecture's
    # does not run here, and Debian 12 builds both from one configuration.
    applets = subprocess.run([str(BUSYBOX), "--list-full"], check=True,
                             capture_output=True, text=True).stdout.split()
    for applet in applets:
        link = staging / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(staging / "bin/busybox",
                                        link.parent))
    shutil.copy2(INIT_SCRIPT, staging / "init")
    (staging / "init").chmod(0o755)

    moddir = staging / "lib" / "modules" / kimg.kver
    moddir.mkdir(parents=True)
    for meta in ("modules.builtin", "modules.builtin.modinfo",
                 "modules.order"):
        if (kimg.moddir / meta).exists():
            shutil.copy2(kimg.moddir / meta, moddir / meta)
    for rel in kmods:
        src = kimg.moddir / rel
        dst = moddir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".xz"):
            dst.with_suffix("").write_bytes(lzma.decompress(src.read_bytes()))
        elif rel.endswith(".ko"):
            shutil.copy2(src, dst)
        else:
            raise RuntimeError(f"unsupported module compression: {rel}")
    if ours:
        upd = moddir / "updates"
        upd.mkdir()
        for ko in ours:
            shutil.copy2(ko, upd / ko.name)
    subprocess.run(["depmod", "-b", str(staging), kimg.kver], check=True)


def build(kimg: KernelImage, our_modules: list[Path] | None = None,
          extra_modules: tuple[str, ...] = (),
          cache: str | os.PathLike | None = None) -> Path:
    """Build (or reuse) the initramfs for *kimg* and return its path.

    *our_modules* are .ko files put under ``updates/``; their in-tree
    dependencies (from ``modinfo -F depends``) are included automatically,
    as are *extra_modules* and :data:`DEFAULT_MODULES`.
    """
    ours = sorted(our_modules or [], key=lambda p: p.name)
    ournames = {modname(p) for p in ours}
    wanted = [*DEFAULT_MODULES, *ARCH_MODULES.get(kimg.arch, ()),
              *extra_modules]
    for ko in ours:
        wanted += [d for d in _modinfo_depends(ko) if d not in ournames]
    kmods = module_closure(kimg, wanted)

    outdir = cache_root(cache) / "initramfs"
    bbox = busybox(kimg, cache)
    out = outdir / \
        f"{kimg.kver}-{_hash_inputs(kimg, kmods, ours, bbox)}.cpio.gz"
    if out.exists():
        out.touch()
        return out
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="initramfs-",
                                     dir=outdir) as tmp:
        staging = Path(tmp) / "root"
        _stage(staging, kimg, kmods, ours, bbox)
        tmpout = Path(tmp) / "out.cpio.gz"
        with open(tmpout, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                              compresslevel=6) as gz:
            cpio = _Cpio(gz)
            cpio.add_tree(staging)
            cpio.add_chardev("dev/console", 5, 1)
            cpio.finish()
        os.replace(tmpout, out)
    _prune(outdir, kimg.kver)
    return out


def _prune(outdir: Path, kver: str, keep: int = KEEP_IMAGES) -> None:
    """Delete all but the *keep* most recently used images of *kver*."""
    images = sorted(outdir.glob(f"{kver}-*.cpio.gz"),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in images[keep:]:
        old.unlink(missing_ok=True)
