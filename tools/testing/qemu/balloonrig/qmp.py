"""Minimal QMP (QEMU Machine Protocol) client over a unix socket.

Replies are matched to requests by an ``id``; asynchronous events (such as
``BALLOON_CHANGE``) that arrive in between are kept in :attr:`QMP.events`.
On top of the raw :meth:`QMP.execute` there are helpers for the
virtio-balloon device: set a target, query the actual size, wait for the
target while recording progress samples, and read guest statistics.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import select
import socket
import time
from typing import Any, Callable

BALLOON_QOM = "/machine/peripheral/balloon0"
MIB = 1 << 20


class QMPError(Exception):
    """A QMP command returned an error, or the connection broke."""


@dataclasses.dataclass
class BalloonWait:
    """Outcome of :meth:`QMP.wait_balloon`.

    ``samples`` are ``(seconds since start, actual bytes)`` pairs.
    """

    target: int
    reached: bool
    elapsed: float
    samples: list[tuple[float, int]]

    @property
    def actual(self) -> int:
        """Last observed actual guest memory size in bytes."""
        return self.samples[-1][1] if self.samples else -1


class QMP:
    """A connected, capability-negotiated QMP session."""

    def __init__(self, path: str, timeout: float = 30.0):
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._buf = b""
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError as exc:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"cannot connect to {path}: {exc}") \
                        from exc
                time.sleep(0.1)
        greeting = self._recv(deadline)
        if "QMP" not in greeting:
            raise QMPError(f"unexpected greeting: {greeting}")
        self.execute("qmp_capabilities")

    def close(self) -> None:
        """Close the socket (QEMU keeps running)."""
        self.sock.close()

    def _recv(self, deadline: float | None) -> dict[str, Any]:
        while b"\n" not in self._buf:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise QMPError("timeout waiting for QMP message")
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError("QMP connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, timeout: float = 30.0,
                **arguments: Any) -> Any:
        """Run *command* and return its ``return`` value.

        Raises :class:`QMPError` on an error reply or timeout.
        """
        req_id = f"rig-{next(self._ids)}"
        msg: dict[str, Any] = {"execute": command, "id": req_id}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._recv(deadline)
            if "event" in reply:
                self.events.append(reply)
            elif reply.get("id") == req_id:
                if "error" in reply:
                    err = reply["error"]
                    raise QMPError(f"{command}: {err.get('class')}: "
                                   f"{err.get('desc')}")
                return reply.get("return")

    def poll_events(self) -> list[dict[str, Any]]:
        """Read pending events without blocking, return and clear them."""
        while True:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready:
                break
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self._buf += chunk
        while b"\n" in self._buf:
            msg = self._recv(None)
            if "event" in msg:
                self.events.append(msg)
        events, self.events = self.events, []
        return events

    # -- balloon helpers ------------------------------------------------

    def balloon(self, target_bytes: int) -> None:
        """Ask the guest to make its memory size *target_bytes*."""
        self.execute("balloon", value=int(target_bytes))

    def query_balloon(self) -> int:
        """Return the guest's actual memory size in bytes."""
        return int(self.execute("query-balloon")["actual"])

    def wait_balloon(self, target: int, timeout: float = 120.0,
                     tolerance: int = 4 * MIB, interval: float = 0.1,
                     on_sample: Callable[[float, int], None] | None = None,
                     ) -> BalloonWait:
        """Poll query-balloon until actual is within *tolerance* of *target*.

        Every sample is recorded and passed to *on_sample(t, actual)* (for
        live progress displays).  Returns a :class:`BalloonWait`; ``reached``
        is False on timeout.
        """
        start = time.monotonic()
        samples: list[tuple[float, int]] = []
        while True:
            now = time.monotonic() - start
            actual = self.query_balloon()
            samples.append((now, actual))
            if on_sample:
                on_sample(now, actual)
            if abs(actual - target) <= tolerance:
                return BalloonWait(target, True, now, samples)
            if now > timeout:
                return BalloonWait(target, False, now, samples)
            time.sleep(interval)

    def balloon_prop(self, prop: str) -> Any:
        """Return a QOM property of the balloon device (``balloon0``)."""
        return self.execute("qom-get", path=BALLOON_QOM, property=prop)

    def set_balloon_prop(self, prop: str, value: Any) -> None:
        """Set a QOM property of the balloon device (``balloon0``)."""
        self.execute("qom-set", path=BALLOON_QOM, property=prop, value=value)

    def set_stats_interval(self, seconds: int) -> None:
        """Set the guest statistics polling interval (0 disables)."""
        self.set_balloon_prop("guest-stats-polling-interval", int(seconds))

    def guest_stats(self) -> dict[str, Any]:
        """Return ``{"stats": {...}, "last-update": epoch seconds}``."""
        return self.balloon_prop("guest-stats")

    # -- migration helpers ----------------------------------------------

    def migrate_to_null(self, max_bandwidth: int) -> None:
        """Start a live migration into /dev/null at *max_bandwidth*
        bytes/s: QEMU runs every precopy pass (and its free page hinting)
        as it would towards a real destination."""
        self.execute("migrate-set-parameters", **{"max-bandwidth":
                                                   int(max_bandwidth)})
        self.execute("migrate", uri="exec:cat > /dev/null")

    def wait_migration(self, timeout: float = 300.0) -> dict[str, Any]:
        """Poll query-migrate until the migration has ended; return it.

        Raises :class:`QMPError` when it does not end in *timeout* s.
        """
        deadline = time.monotonic() + timeout
        while True:
            info = self.execute("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                return info
            if time.monotonic() > deadline:
                raise QMPError(f"migration still {info.get('status')} "
                               f"after {timeout:.0f} s")
            time.sleep(0.2)

    def quit(self) -> None:
        """Terminate QEMU; a connection closed before the reply is fine."""
        try:
            self.execute("quit", timeout=5)
        except (QMPError, OSError):
            pass
