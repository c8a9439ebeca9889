"""scripts/kunit-results.py: check.sh's KUnit lines from kunit.py's JSON."""

import importlib.util
import io
import json
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[4] / "scripts" / "kunit-results.py"
_spec = importlib.util.spec_from_file_location("kunit_results", SCRIPT)
kunit_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kunit_results)

COMMON = {"arch": "um", "defconfig": "kunit_defconfig",
          "build_environment": "/b", "lab_name": None, "kernel": None,
          "job": None, "git_branch": "kselftest"}


def group(name, cases=(), subs=()):
    """A group as kunit_json.py writes it."""
    return {"name": name, "sub_groups": list(subs),
            "test_cases": [{"name": n, "status": s} for n, s in cases],
            **COMMON}


#: Two suites; the first has a parameterised case, the second a failure,
#: a skip and a crash (kunit_json's "ERROR").
DOC = group("KUnit Test Group", subs=[
    group("balloon_core_rate",
          cases=[("rate_init_starts_at_max", "PASS"),
                 ("rate_deflated_grows_to_max", "PASS")],
          subs=[group("rate_inflated_grows_per_full_rate",
                      cases=[("512 + 0 done -> 512", "PASS"),
                             ("2048 + 16384 done -> 2048", "PASS")])]),
    group("balloon_vmw_protocol",
          cases=[("vmw_lock_batch", "FAIL"),
                 ("vmw_hypercalls_per_gib", "SKIP"),
                 ("vmw_reset", "ERROR")]),
])


class ResultLinesTest(unittest.TestCase):
    def test_lines(self):
        log = "build/check/kunit-debug.log"
        self.assertEqual(kunit_results.result_lines(DOC, "debug", log), [
            "PASS: kunit/debug/rate_init_starts_at_max",
            "PASS: kunit/debug/rate_deflated_grows_to_max",
            "PASS: kunit/debug/512 + 0 done -> 512",
            "PASS: kunit/debug/2048 + 16384 done -> 2048",
            f"FAIL: kunit/debug/vmw_lock_batch: see {log}",
            "SKIP: kunit/debug/vmw_hypercalls_per_gib: skipped",
            f"FAIL: kunit/debug/vmw_reset: see {log}",
        ])

    def test_no_case(self):
        self.assertEqual(
            kunit_results.result_lines(group("KUnit Test Group"), "default",
                                       "k.log"),
            ["FAIL: kunit/default: no test case ran, see k.log"])


class MainTest(unittest.TestCase):
    def run_main(self, *argv):
        out = io.StringIO()
        with redirect_stdout(out):
            rc = kunit_results.main(list(argv))
        return rc, out.getvalue().splitlines()

    def test_reads_the_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "k.json"
            path.write_text(json.dumps(DOC, indent=4))
            rc, lines = self.run_main("default", str(path), "k.log")
        self.assertEqual(rc, 0)
        self.assertEqual(len(lines), 7)
        self.assertEqual(lines[0],
                         "PASS: kunit/default/rate_init_starts_at_max")

    def test_no_json_is_no_result(self):
        with tempfile.TemporaryDirectory() as tmp:
            rc, lines = self.run_main("default", f"{tmp}/none.json", "k.log")
            (Path(tmp) / "bad.json").write_text("{")
            rc2, lines2 = self.run_main("default", f"{tmp}/bad.json", "k.log")
        for code, got in ((rc, lines), (rc2, lines2)):
            self.assertEqual(code, 1)
            self.assertEqual(
                [ln for ln in got if not ln.startswith("    ")],
                ["FAIL: kunit/default: kunit.py gave no result, see k.log",
                 "FAIL: kunit/default: no test case ran, see k.log"])


if __name__ == "__main__":
    unittest.main()
