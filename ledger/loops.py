"""What the long-lived loops of a process (the projection runner, the executor's claim loop and
lease monitor, the Merkle follower) share: a :class:`Health` board that ``/readyz`` reads, and
the :class:`Backoff` they wait by after a failure (the database went away) before they try
again.

A loop reports ``failed(name, error)`` when one of its steps raised and ``ok(name)`` when a
step went through again; while any loop is down the process is not ready.
"""

from __future__ import annotations

import threading
import time

import structlog

log = structlog.get_logger()


class Health:
    """Which loops of this process are down, and since when (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: dict[str, tuple[str, float]] = {}
        self._known: set[str] = set()

    def ok(self, name: str) -> None:
        with self._lock:
            self._known.add(name)
            was = self._down.pop(name, None)
        if was is not None:
            log.info("loop_recovered", loop=name, down_seconds=round(time.monotonic() - was[1], 3))

    def failed(self, name: str, error: BaseException | str) -> None:
        with self._lock:
            self._known.add(name)
            first = name not in self._down
            since = self._down[name][1] if not first else time.monotonic()
            self._down[name] = (_describe(error), since)
        if first:
            log.warning("loop_failed", loop=name, error=_describe(error))

    def down(self) -> dict[str, str]:
        """The loops that are down, each with its last error."""
        with self._lock:
            return {name: error for name, (error, _) in self._down.items()}

    def loops(self) -> dict[str, str]:
        """Every loop that reported, ``ok`` or ``down``."""
        with self._lock:
            return {name: ("down" if name in self._down else "ok") for name in sorted(self._known)}


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {str(error).strip()[:200]}"


class Backoff:
    """Seconds to wait after consecutive failures: ``first``, doubled each time up to ``most``;
    back to ``first`` after a success."""

    def __init__(self, first: float = 0.2, most: float = 5.0) -> None:
        self.first = first
        self.most = most
        self._next = first

    def failed(self) -> float:
        wait = self._next
        self._next = min(self.most, self._next * 2)
        return wait

    def succeeded(self) -> None:
        self._next = self.first
