#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn kunit.py's --json results into check.sh's result lines.

    scripts/kunit-results.py VARIANT JSON LOG

JSON is what ``kunit.py run --json=FILE`` wrote (KernelCI style: groups
with ``test_cases`` and ``sub_groups``), LOG kunit.py's output, named in
failures.  Prints one line per test case, ``PASS: kunit/VARIANT/name``,
``FAIL: kunit/VARIANT/name: see LOG`` or ``SKIP: kunit/VARIANT/name:
skipped``.  A parameterised case is a sub-group: each of its parameters
is a case of its own, named by its description; suites and
parameterised cases get no line themselves.  Exits 1, after FAIL lines,
when JSON is missing or unreadable (kunit.py gave no result), else 0.
"""

from __future__ import annotations

import json
import sys
from typing import Iterator


def cases(group: dict) -> Iterator[tuple[str, str]]:
    """Yield (name, status) of every test case below *group*."""
    for case in group.get("test_cases", []):
        yield case["name"], case["status"]
    for sub in group.get("sub_groups", []):
        yield from cases(sub)


def result_lines(doc: dict, variant: str, log: str) -> list[str]:
    """Return the result lines of kunit.py's JSON document *doc*."""
    lines = []
    for name, status in cases(doc):
        if status == "PASS":
            lines.append(f"PASS: kunit/{variant}/{name}")
        elif status == "SKIP":
            lines.append(f"SKIP: kunit/{variant}/{name}: skipped")
        else:  # FAIL, or ERROR for a crash
            lines.append(f"FAIL: kunit/{variant}/{name}: see {log}")
    if not lines:
        lines.append(f"FAIL: kunit/{variant}: no test case ran, see {log}")
    return lines


def main(argv: list[str]) -> int:
    """Print the result lines; 1 if there is no JSON to read."""
    if len(argv) != 3:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    variant, path, log = argv
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"FAIL: kunit/{variant}: kunit.py gave no result, see {log}")
        print(f"    {exc}")
        print(f"FAIL: kunit/{variant}: no test case ran, see {log}")
        return 1
    print("\n".join(result_lines(doc, variant, log)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
