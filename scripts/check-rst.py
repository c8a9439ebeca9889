#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check reStructuredText files for syntax errors and warnings.

Usage: check-rst.py FILE...

Parses each file with docutils (Sphinx's toctree directive is accepted and
ignored) and prints every warning or error; exits 1 if there was any.
"""
import sys

import docutils.core
from docutils.parsers.rst import Directive, directives


class Ignored(Directive):
    """A Sphinx-only directive: accept it, render nothing."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = {"maxdepth": directives.unchanged,
                   "caption": directives.unchanged}

    def run(self):
        return []


def main(paths):
    """Parse every file; return 1 if any produced a message."""
    directives.register_directive("toctree", Ignored)
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        settings = {"report_level": 2, "halt_level": 5,
                    "warning_stream": sys.stdout}
        doc = docutils.core.publish_doctree(
            text, source_path=path, settings_overrides=settings)
        msgs = [m for m in doc.traverse()
                if m.tagname == "system_message" and
                int(m["level"]) >= 2]
        bad += len(msgs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
