"""balloonrig.runner: expect() and wait_for()."""

import unittest
from unittest import mock

from balloonrig.runner import TestFailure, expect, wait_for


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


if __name__ == "__main__":
    unittest.main()
