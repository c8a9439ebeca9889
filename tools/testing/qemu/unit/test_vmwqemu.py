"""balloonrig.vmwqemu: the VMware modes' QEMU, from the script or the
environment."""

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from balloonrig import vmwqemu


class BinaryTest(unittest.TestCase):
    def test_environment_names_the_binary(self):
        with tempfile.TemporaryDirectory() as tmp:
            exe = Path(tmp) / "qemu"
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
            with mock.patch.dict(os.environ, {"BALLOON_VMW_QEMU": str(exe)}), \
                    mock.patch("subprocess.run") as run:
                self.assertEqual(vmwqemu.binary(tmp), exe)
                run.assert_not_called()

    def test_environment_binary_must_be_executable(self):
        with mock.patch.dict(os.environ,
                             {"BALLOON_VMW_QEMU": "/nonexistent/qemu"}):
            with self.assertRaises(RuntimeError):
                vmwqemu.binary("/tmp")

    def test_last_line_of_the_script_is_the_binary(self):
        with tempfile.TemporaryDirectory() as tmp:
            exe = Path(tmp) / "qemu-system-x86_64"
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
            done = mock.Mock(returncode=0, stdout=f"building\n{exe}\n",
                             stderr="")
            env = {k: v for k, v in os.environ.items()
                   if k != "BALLOON_VMW_QEMU"}
            with mock.patch.dict(os.environ, env, clear=True), \
                    mock.patch("subprocess.run", return_value=done) as run:
                self.assertEqual(vmwqemu.binary(tmp), exe)
            self.assertEqual(run.call_args.args[0],
                             ["bash", str(vmwqemu.SCRIPT)])
            self.assertEqual(run.call_args.kwargs["env"]["BALLOON_CACHE"],
                             tmp)

    def test_a_failed_build_says_why(self):
        failed = mock.Mock(returncode=1, stdout="",
                           stderr="one\ntwo\nninja: build stopped\n")
        env = {k: v for k, v in os.environ.items()
               if k != "BALLOON_VMW_QEMU"}
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch("subprocess.run", return_value=failed):
            with self.assertRaisesRegex(RuntimeError, "build stopped"):
                vmwqemu.binary("/tmp")


if __name__ == "__main__":
    unittest.main()
