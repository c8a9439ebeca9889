"""balloonrig.runner: expect(), wait_for() and the modprobe.d option."""

import contextlib
import io
import unittest
from unittest import mock

from balloonrig.runner import (MODPROBE_CONF, TestFailure, expect, main,
                               names_our_modules, wait_for)


class FakeTime:
    """A clock that only sleep() moves."""

    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


class ExpectTest(unittest.TestCase):
    def test_expect(self):
        expect(1, "not raised")
        with self.assertRaisesRegex(TestFailure, "^the message$"):
            expect([], "the message")


class WaitForTest(unittest.TestCase):
    def setUp(self):
        self.clock = FakeTime()
        patcher = mock.patch("balloonrig.runner.time", self.clock)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_returns_the_first_value_done(self):
        values = iter([1, 2, 3, 4])
        got = wait_for(lambda: next(values), lambda v: v >= 3, 10,
                       lambda v: f"last {v}", 0.5)
        self.assertEqual(got, 3)
        self.assertEqual(self.clock.sleeps, [0.5, 0.5])

    def test_done_at_once_does_not_sleep(self):
        self.assertEqual(wait_for(lambda: "x", bool, 0, str, 1), "x")
        self.assertEqual(self.clock.sleeps, [])

    def test_timeout_fails_with_the_last_value(self):
        values = iter(range(100))
        with self.assertRaisesRegex(TestFailure, "^still 3 after 3 s$"):
            wait_for(lambda: next(values), lambda v: False, 3,
                     lambda v: f"still {v} after 3 s", 1)
        # Polled at 0, 1, 2 and 3 s: the last poll is at the deadline.
        self.assertEqual(self.clock.sleeps, [1, 1, 1])


class NamesOurModulesTest(unittest.TestCase):
    def test_a_frame_of_ours(self):
        self.assertTrue(names_our_modules(
            "[   24.1] Call Trace:\n"
            "[   24.1]  balloon_core_cycle+0x4e/0x120 [balloon_core]\n"))
        self.assertTrue(names_our_modules(
            " ? balloon_virtio_inflate+0x10/0x90 [balloon_virtio]"))

    def test_the_kernel_alone(self):
        # A TCG text_poke_bp hang seen on 6.1, with our modules loaded.
        self.assertFalse(names_our_modules(
            "[    2.277362] balloon_core: loading out-of-tree module taints "
            "kernel.\n"
            "[   24.115053] Call Trace:\n"
            "[   24.115053]  text_poke_bp+0x4b/0x70\n"
            "[   24.115053] Modules linked in: balloon_virtio(OE) "
            "balloon_core(OE)\n"))


class ModprobeConfTest(unittest.TestCase):
    def test_the_default_is_the_trees(self):
        self.assertTrue(MODPROBE_CONF.is_file(), MODPROBE_CONF)
        self.assertEqual(MODPROBE_CONF.parts[-3:],
                         ("etc", "modprobe.d", "balloon.conf"))
        self.assertIn("blacklist virtio_balloon",
                      MODPROBE_CONF.read_text().splitlines())

    def test_a_missing_file_is_refused_before_anything_runs(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), \
                self.assertRaises(SystemExit) as cm:
            main(["--series", "6.12", "--list",
                  "--modprobe-conf", "/nonexistent/balloon.conf"])
        self.assertEqual(cm.exception.code, 2)
        self.assertIn("no file /nonexistent/balloon.conf", err.getvalue())


if __name__ == "__main__":
    unittest.main()
