"""Pure parsers of what a guest prints: no guest, no I/O, unit-tested."""

from __future__ import annotations

import re


def parse_meminfo(text: str) -> dict[str, int]:
    """Parse /proc/meminfo; ``kB`` values are converted to bytes."""
    info = {}
    for line in text.splitlines():
        m = re.match(r"(\S+):\s+(\d+)(\s+kB)?", line)
        if m:
            info[m.group(1)] = int(m.group(2)) * (1024 if m.group(3) else 1)
    return info


def parse_counters(text: str) -> dict[str, int]:
    """Parse "key value" lines (our debugfs files) into a dict."""
    return {k: int(v) for k, v in (ln.split() for ln in text.splitlines()
                                   if ln.strip())}


def trace_fields(text: str, event: str) -> list[dict[str, str]]:
    """Return the key=value fields of every *event* line of a trace."""
    out = []
    for ln in text.splitlines():
        if f" {event}: " in ln:
            body = ln.split(f" {event}: ", 1)[1]
            out.append(dict(f.split("=", 1) for f in body.split()[1:]
                            if "=" in f))
    return out


def oom_kill_lines(dmesg: str) -> list[str]:
    """Return the lines of a kernel log that tell of the OOM killer."""
    return [ln for ln in dmesg.splitlines()
            if "Out of memory" in ln or "oom-kill" in ln]
