"""A background thread that keeps the Merkle tree caught up with the events.

Proof and digest requests catch up on demand anyway; following in the background narrows the
window in which a row deleted on PostgreSQL could pass for a gap that a rolled-back insert left
(the tree tells the two apart by the positions it has seen). When the database goes away the
follower backs off (up to 5 s between tries), reports itself down on the process's
:class:`~ledger.loops.Health`, and goes on once a catch-up goes through again.
"""

from __future__ import annotations

import threading

import structlog

from ledger.integrity.merkle_store import MerkleStore
from ledger.loops import Backoff, Health
from ledger.settings import Settings

log = structlog.get_logger()


class TreeFollower:
    def __init__(self, settings: Settings, *, interval: float = 2.0, health: Health | None = None) -> None:
        self.store = MerkleStore(settings)
        self.interval = interval
        self.health = health if health is not None else Health()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="merkle-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("merkle_follower_started", interval=self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        backoff = Backoff(first=min(0.5, self.interval))
        while not self._stop.is_set():
            try:
                self.store.catch_up()
            except Exception as exc:
                log.warning("merkle_catch_up_failed", error=str(exc))
                self.health.failed("merkle-follower", exc)
                self._stop.wait(backoff.failed())
                continue
            backoff.succeeded()
            self.health.ok("merkle-follower")
            self._stop.wait(self.interval)
