"""balloonrig.parse: /proc/meminfo, debugfs counters, trace lines."""

import unittest

from balloonrig.parse import (oom_kill_lines, parse_counters, parse_meminfo,
                              trace_fields)

MEMINFO = """\
MemTotal:        2014244 kB
MemFree:         1853700 kB
MemAvailable:    1811112 kB
HugePages_Total:       0
HugePages_Free:        0
Hugepagesize:       2048 kB
DirectMap4k:       98176 kB
"""

TRACE = """\
# tracer: nop
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
 kworker/0:1-27      [000] .....    12.345678: balloon_core_target: \
virtio0 host=16384 target=16384 size=0
 kworker/0:1-27      [000] .....    12.355678: balloon_core_inflate: \
virtio0 order=0 count=512 done=512 ret=0 size=512
 kworker/1:2-40      [001] .....    12.455678: balloon_core_inflate: \
virtio0 order=9 count=2 done=1 ret=-12 size=1024
 kworker/0:1-27      [000] .....    13.000000: balloon_core_deflate: \
virtio0 order=0 count=512 done=512 ret=0 size=512
"""


class MeminfoTest(unittest.TestCase):
    def test_kib_become_bytes_and_counts_stay(self):
        info = parse_meminfo(MEMINFO)
        self.assertEqual(info["MemTotal"], 2014244 * 1024)
        self.assertEqual(info["MemAvailable"], 1811112 * 1024)
        self.assertEqual(info["HugePages_Total"], 0)
        self.assertEqual(info["Hugepagesize"], 2048 * 1024)
        self.assertEqual(len(info), 7)

    def test_lines_that_are_not_fields_are_ignored(self):
        self.assertEqual(parse_meminfo("garbage\n\nMemFree: 4 kB\n"),
                         {"MemFree": 4096})
        self.assertEqual(parse_meminfo(""), {})


class CountersTest(unittest.TestCase):
    def test_key_value_lines(self):
        self.assertEqual(parse_counters("size_kib 1024\ntarget_kib 0\n\n"),
                         {"size_kib": 1024, "target_kib": 0})

    def test_a_malformed_line_raises(self):
        with self.assertRaises(ValueError):
            parse_counters("size_kib 12 extra\n")


class TraceFieldsTest(unittest.TestCase):
    def test_fields_of_one_event(self):
        infl = trace_fields(TRACE, "balloon_core_inflate")
        self.assertEqual(len(infl), 2)
        self.assertEqual(infl[0], {"order": "0", "count": "512",
                                   "done": "512", "ret": "0",
                                   "size": "512"})
        self.assertEqual(infl[1]["ret"], "-12")
        self.assertEqual(infl[1]["order"], "9")

    def test_the_name_before_the_fields_is_skipped(self):
        (target,) = trace_fields(TRACE, "balloon_core_target")
        self.assertNotIn("virtio0", target)
        self.assertEqual(target["target"], "16384")

    def test_event_names_match_whole(self):
        self.assertEqual(trace_fields(TRACE, "balloon_core_inf"), [])
        self.assertEqual(trace_fields(TRACE, "balloon_core_reset"), [])
        self.assertEqual(len(trace_fields(TRACE, "balloon_core_deflate")), 1)


class OomKillLinesTest(unittest.TestCase):
    def test_the_killer_s_lines(self):
        log = (
            "[   5.0] dd invoked oom-killer: gfp_mask=0x140dca, order=0\n"
            "[   5.1] oom-kill:constraint=CONSTRAINT_NONE,task=dd,pid=90\n"
            "[   5.2] Out of memory: Killed process 90 (dd) total-vm:2kB\n"
            "[   6.0] balloon_core: deflate-on-oom gave back 512 pages\n")
        self.assertEqual(oom_kill_lines(log), log.splitlines()[:3])

    def test_quiet_log(self):
        self.assertEqual(oom_kill_lines("[ 1.0] hello\n"), [])
        self.assertEqual(oom_kill_lines(""), [])


if __name__ == "__main__":
    unittest.main()
