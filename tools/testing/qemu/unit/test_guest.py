"""balloonrig.guest.retry_lost: a lost guest is tried again, three
attempts in all."""

import tempfile
import unittest
from pathlib import Path
from unittest import mock

from balloonrig import guest
from balloonrig.guest import BootError, GuestLost, retry_lost


class RetryLostTest(unittest.TestCase):
    def setUp(self):
        self.told = []

    def on_lost(self, attempt, exc):
        self.told.append((attempt, str(exc)))

    def test_first_attempt_wins(self):
        self.assertEqual(retry_lost(lambda n: f"guest {n}", self.on_lost),
                         "guest 1")
        self.assertEqual(self.told, [])

    def test_lost_once(self):
        def attempt(n):
            if n == 1:
                raise GuestLost("no RIG-READY within 120 s")
            return f"guest {n}"
        self.assertEqual(retry_lost(attempt, self.on_lost), "guest 2")
        self.assertEqual(self.told, [(1, "no RIG-READY within 120 s")])

    def test_lost_twice_third_wins(self):
        def attempt(n):
            if n < 3:
                raise GuestLost(f"reason {n}")
            return f"guest {n}"
        self.assertEqual(retry_lost(attempt, self.on_lost), "guest 3")
        self.assertEqual(self.told, [(1, "reason 1"), (2, "reason 2")])

    def test_lost_every_time_gives_every_reason(self):
        def attempt(n):
            raise GuestLost(f"reason {n}")
        with self.assertRaisesRegex(GuestLost,
                                    "^reason 1 / reason 2 / reason 3$"):
            retry_lost(attempt, self.on_lost)
        self.assertEqual([n for n, _ in self.told], [1, 2, 3])

    def test_other_errors_are_not_retried(self):
        calls = []

        def attempt(n):
            calls.append(n)
            raise BootError("bound to None")
        with self.assertRaises(BootError):
            retry_lost(attempt, self.on_lost)
        self.assertEqual(calls, [1])
        self.assertEqual(self.told, [])


class FakeGuest:
    """Writes a console log and is lost on its first start()."""

    starts = 0

    def __init__(self, kernel, initrd, spec, workdir):
        self.workdir = Path(workdir)
        self.console_path = self.workdir / "console.log"
        self.stopped = False

    def start(self):
        FakeGuest.starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console_path.write_text(f"boot {FakeGuest.starts}\n")
        if FakeGuest.starts == 1:
            raise GuestLost("QEMU exited with -6")
        return self

    def stop(self):
        self.stopped = True


class BootTest(unittest.TestCase):
    def test_a_lost_boot_keeps_its_console_and_is_tried_again(self):
        FakeGuest.starts = 0
        told = []
        with tempfile.TemporaryDirectory() as tmp, \
                mock.patch.object(guest, "Guest", FakeGuest):
            g = guest.boot(None, Path("initrd"), None, tmp,
                           lambda n, exc: told.append((n, exc.console)))
            kept = Path(tmp) / "lost-1-console.log"
            self.assertEqual(told, [(1, kept)])
            self.assertEqual(kept.read_text(), "boot 1\n")
            self.assertEqual(g.console_path.read_text(), "boot 2\n")
            self.assertFalse(g.stopped)


class QemuArgsTest(unittest.TestCase):
    KIMG = mock.Mock(vmlinuz=Path("vmlinuz"), arch="amd64")

    def args(self, spec):
        return guest.Guest(self.KIMG, Path("initrd"), spec,
                           "/tmp/x").qemu_args("cmd.sock", "qmp.sock")

    def test_virtio_modes_are_unchanged(self):
        args = self.args(guest.BootSpec.mode("intree"))
        self.assertEqual(args[0], guest.QEMU)
        self.assertIn("virtio-balloon-pci,id=balloon0", args)
        self.assertNotIn("-machine", args)
        self.assertIn("rig.bind=1", " ".join(args))

    def test_vmware_mode(self):
        spec = guest.BootSpec.mode("vmw-ours", qemu="/c/qemu",
                                   balloon_props={"capabilities": "2"})
        self.assertTrue(spec.vmware)
        args = self.args(spec)
        self.assertEqual(args[0], "/c/qemu")
        self.assertEqual(args[1:5], ["-machine", "pc,vmport=on", "-cpu",
                                     "qemu64,-hypervisor"])
        self.assertIn("vmware-balloon,id=balloon0,capabilities=2", args)
        append = args[args.index("-append") + 1]
        self.assertIn("rig.load=balloon_core,balloon_vmw", append)
        self.assertIn("rig.bind=0", append)

    def test_x86_channels(self):
        args = self.args(guest.BootSpec.mode("ours"))
        append = args[args.index("-append") + 1]
        self.assertIn("console=ttyS0", append)
        self.assertIn("rig.chan=/dev/ttyS1", append)
        self.assertEqual(args.count("-serial"), 2)
        self.assertIn("socket,id=cmd0,path=cmd.sock", args)

    def test_arm64(self):
        kimg = mock.Mock(vmlinuz=Path("Image"), arch="arm64")
        args = guest.Guest(kimg, Path("initrd"), guest.BootSpec.mode(
            "ours", balloon_props={"deflate-on-oom": "on"}),
            "/tmp/x").qemu_args("cmd.sock", "qmp.sock")
        self.assertEqual(args[0], "qemu-system-aarch64")
        self.assertEqual(args[1:5], ["-machine", "virt", "-cpu",
                                     "max,pauth-impdef=on"])
        append = args[args.index("-append") + 1]
        self.assertIn("console=ttyAMA0", append)
        self.assertIn("rig.chan=/dev/hvc0", append)
        # One UART (the console); the commands on a virtio console.
        self.assertEqual(args.count("-serial"), 1)
        self.assertIn("virtconsole,chardev=cmd0", args)
        self.assertIn("socket,id=cmd0,path=cmd.sock", args)
        # The balloon behind a root port, so that it can be unplugged.
        dev = args.index("virtio-balloon-pci,id=balloon0,bus=rp0,"
                         "deflate-on-oom=on")
        self.assertIn("pcie-root-port,id=rp0,chassis=1", args[:dev])

    def test_page_size_from_the_guest(self):
        g = guest.Guest(self.KIMG, Path("initrd"), guest.BootSpec(), "/x")
        g.ready = {"pagesize": "16", "arch": "aarch64"}
        self.assertEqual(g.page_size, 16384)
        self.assertEqual(g.arch, "aarch64")


if __name__ == "__main__":
    unittest.main()
