"""balloonrig.guest.scan_console: what on the console fails a test."""

import unittest

from balloonrig.guest import BAD_PATTERNS, scan_console

CONSOLE = """\
[    0.000000] Linux version 6.12.38+deb12-amd64
[    1.234567] rig: loading modules
[    2.000000] ------------[ cut here ]------------
[    2.000001] WARNING: CPU: 0 PID: 1 at core/main.c:100 f+0x10/0x20
[    2.000002] Call Trace:
[    2.000003]  <TASK>
[    3.000000] balloon_core: alloc_min 4096 above alloc_max 2048
[    4.000000] BUG: unable to handle page fault for address: 0000
[    5.000000] Oops: 0002 [#1] PREEMPT SMP NOPTI
"""


class ScanConsoleTest(unittest.TestCase):
    def test_bad_lines_stripped_in_order(self):
        self.assertEqual(scan_console(CONSOLE), [
            "[    2.000001] WARNING: CPU: 0 PID: 1 at core/main.c:100 "
            "f+0x10/0x20",
            "[    2.000002] Call Trace:",
            "[    4.000000] BUG: unable to handle page fault for address: "
            "0000",
            "[    5.000000] Oops: 0002 [#1] PREEMPT SMP NOPTI",
        ])

    def test_every_pattern_is_found(self):
        for pattern in BAD_PATTERNS:
            with self.subTest(pattern=pattern):
                self.assertEqual(scan_console(f"  x {pattern} y \n"),
                                 [f"x {pattern} y"])

    def test_clean_console(self):
        self.assertEqual(scan_console("warning: lower case\n"
                                      "a WARNING without colon\n"), [])
        self.assertEqual(scan_console("[ 1.0] all is well\n"), [])
        self.assertEqual(scan_console(""), [])


if __name__ == "__main__":
    unittest.main()
