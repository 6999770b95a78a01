"""A background thread that keeps the Merkle tree caught up with the events.

Proof and digest requests catch up on demand anyway; following in the background narrows the
window in which a row deleted on PostgreSQL could pass for a gap that a rolled-back insert left
(the tree tells the two apart by the positions it has seen).
"""

from __future__ import annotations

import threading

import structlog

from ledger.integrity.merkle_store import MerkleStore
from ledger.settings import Settings

log = structlog.get_logger()


class TreeFollower:
    def __init__(self, settings: Settings, *, interval: float = 2.0) -> None:
        self.store = MerkleStore(settings)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="merkle-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("merkle_follower_started", interval=self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.store.catch_up()
            except Exception as exc:
                log.warning("merkle_catch_up_failed", error=str(exc))
            self._stop.wait(self.interval)
