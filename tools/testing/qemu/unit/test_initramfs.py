"""balloonrig.initramfs: the cpio "newc" writer, module names and paths."""

import io
import os
import stat
import tempfile
import unittest
from pathlib import Path

from balloonrig.initramfs import _Cpio, find_our_modules, modname

HEADER = 110  # "070701" and 13 fields of 8 hex digits


def read_newc(data: bytes) -> list[dict]:
    """Parse a newc archive by the format's rules: each header and each
    file body starts on a 4-byte boundary; the name's size counts its NUL;
    the archive ends with TRAILER!!!."""
    entries, off = [], 0
    keys = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
            "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize",
            "check")
    while True:
        assert off % 4 == 0, f"header at {off} not aligned"
        hdr = data[off:off + HEADER]
        assert hdr[:6] == b"070701", f"bad magic at {off}: {hdr[:6]!r}"
        e = {k: int(hdr[6 + 8 * i:14 + 8 * i], 16)
             for i, k in enumerate(keys)}
        name = data[off + HEADER:off + HEADER + e["namesize"]]
        assert name.endswith(b"\0"), name
        e["name"] = name[:-1].decode()
        off += HEADER + e["namesize"]
        off += -off % 4
        e["data"] = data[off:off + e["filesize"]]
        off += e["filesize"]
        off += -off % 4
        entries.append(e)
        if e["name"] == "TRAILER!!!":
            assert off == len(data), "bytes after the trailer"
            return entries


class CpioTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        (self.root / "bin").mkdir()
        (self.root / "bin" / "busybox").write_bytes(b"\x7fELF" + b"x" * 9)
        (self.root / "bin" / "busybox").chmod(0o700)
        (self.root / "bin" / "sh").symlink_to("busybox")
        (self.root / "init").write_text("#!/bin/sh\n")
        (self.root / "etc").mkdir()
        (self.root / "etc" / "a.conf").write_bytes(b"abc")

    def archive(self) -> list[dict]:
        out = io.BytesIO()
        cpio = _Cpio(out)
        cpio.add_tree(self.root)
        cpio.add_chardev("dev/console", 5, 1)
        cpio.finish()
        return read_newc(out.getvalue())

    def test_round_trip(self):
        entries = self.archive()
        by_name = {e["name"]: e for e in entries}
        names = [e["name"] for e in entries]
        self.assertEqual(names, [
            "bin", "etc", "init", "bin/busybox", "bin/sh", "etc/a.conf",
            "dev/console", "TRAILER!!!"])
        # The kernel creates each entry in order: directories first.
        for i, name in enumerate(names[:6]):
            parent = os.path.dirname(name)
            self.assertTrue(not parent or parent in names[:i], name)
        self.assertEqual(by_name["bin"]["mode"], stat.S_IFDIR | 0o755)
        busybox = by_name["bin/busybox"]
        self.assertEqual(busybox["mode"], stat.S_IFREG | 0o755)
        self.assertEqual(busybox["data"], b"\x7fELF" + b"x" * 9)
        self.assertEqual(by_name["etc/a.conf"]["mode"], stat.S_IFREG | 0o644)
        self.assertEqual(by_name["etc/a.conf"]["data"], b"abc")
        self.assertEqual(by_name["bin/sh"]["mode"], stat.S_IFLNK | 0o777)
        self.assertEqual(by_name["bin/sh"]["data"], b"busybox")
        console = by_name["dev/console"]
        self.assertEqual(console["mode"], stat.S_IFCHR | 0o600)
        self.assertEqual((console["rdevmajor"], console["rdevminor"]), (5, 1))
        self.assertEqual(console["filesize"], 0)

    def test_owner_root_one_link_distinct_inodes(self):
        entries = self.archive()
        self.assertTrue(all(e["uid"] == 0 and e["gid"] == 0 and
                            e["nlink"] == 1 and e["mtime"] == 0
                            for e in entries))
        inos = [e["ino"] for e in entries]
        self.assertEqual(len(set(inos)), len(inos))

    def test_reproducible(self):
        first = io.BytesIO()
        second = io.BytesIO()
        for out in (first, second):
            cpio = _Cpio(out)
            cpio.add_tree(self.root)
            cpio.finish()
        self.assertEqual(first.getvalue(), second.getvalue())


class ModulesTest(unittest.TestCase):
    def test_modname(self):
        self.assertEqual(modname("kernel/drivers/virtio/virtio_pci.ko.xz"),
                         "virtio_pci")
        self.assertEqual(modname("/x/balloon-core.ko"), "balloon_core")
        self.assertEqual(modname(Path("a/vmw_vmci.ko.zst")), "vmw_vmci")

    def test_find_our_modules_prefers_the_release_dir(self):
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            (base / "old.ko").touch()
            self.assertEqual(find_our_modules(base, "6.1.0-37-amd64"),
                             [base / "old.ko"])
            kdir = base / "6.1.0-37-amd64" / "sub"
            kdir.mkdir(parents=True)
            (kdir / "b.ko").touch()
            (kdir.parent / "a.ko").touch()
            os.mkfifo(kdir / "not-a-file.ko")
            self.assertEqual(find_our_modules(base, "6.1.0-37-amd64"),
                             [kdir.parent / "a.ko", kdir / "b.ko"])


if __name__ == "__main__":
    unittest.main()
