#!/usr/bin/env python3
"""End-to-end balloon tests in QEMU/TCG guests running Debian kernels.

Usage::

    run_tests.py --series 6.12|6.1 [--modules DIR] [--modprobe-conf FILE]
                 [--cache DIR] [-k NAME] [-v] [--list]

Prints one ``PASS:``/``FAIL:``/``SKIP: <series>/<test>`` line per test,
``# ...`` lines for information, an ``INFRA:`` line when a guest could not
be booted twice in a row, and ``N passed, N failed, N skipped`` last.
Exits 0 iff nothing failed.  Console logs of failed tests are kept under
``<cache>/runs/<series>/<test>/``.

The framework and runner are in :mod:`balloonrig.runner`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position,unused-import
from balloonrig.runner import main  # noqa: E402
# Importing the tests registers them, in this order.
from tests import (inflate, stats, reporting,  # noqa: E402,F401
                   hinting, modules, survive, vmw)


if __name__ == "__main__":
    sys.exit(main())
