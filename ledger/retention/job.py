"""The periodic retention pass (SPEC section 11), run beside the projection runner (by
``runledger serve`` and ``runledger project``): every ``RUNLEDGER_RETENTION_INTERVAL_SECONDS``
it applies the retention rules. One pass at a time across processes: on PostgreSQL a session
advisory lock per ledger schema, on SQLite an exclusive ``flock`` beside the database file; a
process that does not get it skips the pass. Each pass logs what it removed and adds to the
process's counts (:class:`RetentionCounts`, which ``/metrics`` shows).
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import structlog

from ledger.loops import Backoff
from ledger.service import Ledger
from ledger.service.retention import RetentionOutcome
from ledger.store.setup import postgres_conninfo

log = structlog.get_logger()


@dataclass
class RetentionCounts:
    """What this process's retention passes did since it started."""

    passes: int = 0
    runs_expunged: int = 0
    files_deleted: int = 0
    keys_destroyed: int = 0


#: The counts of this process (one retention job per process).
COUNTS = RetentionCounts()


@contextlib.contextmanager
def exclusive(ledger: Ledger) -> Iterator[bool]:
    """True while this process holds the retention lock of the ledger; False: another does."""
    db = ledger.settings.database
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        path = Path(f"{db.sqlite_path}.retention.lock")
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with psycopg.connect(postgres_conninfo(db), autocommit=True) as conn:
        name = f"runledger-retention:{db.schema or 'public'}"
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
        if not (row and row[0]):
            yield False
            return
        try:
            yield True
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))


def run_once(ledger: Ledger) -> RetentionOutcome | None:
    """One pass, if no other process is in one (None then)."""
    with exclusive(ledger) as mine:
        if not mine:
            log.info("retention_pass_skipped", reason="another process holds the retention lock")
            return None
        # Each run expunged is logged as it goes (``run_expunged``); the pass keeps counts only.
        outcome = ledger.apply_retention(now=datetime.now(UTC), dry_run=False, each=lambda _: None)
    COUNTS.passes += 1
    COUNTS.runs_expunged += outcome.recorded
    COUNTS.files_deleted += outcome.removed.files
    COUNTS.keys_destroyed += outcome.removed.keys
    log.info(
        "retention_applied",
        runs_expunged=outcome.recorded,
        files_deleted=outcome.removed.files,
        keys_destroyed=outcome.removed.keys,
        dirs_removed=outcome.removed.dirs,
    )
    return outcome


class RetentionJob:
    """A thread that runs :func:`run_once` every ``interval`` seconds (the first soon after start)."""

    def __init__(self, ledger: Ledger, *, interval: float) -> None:
        self.ledger = ledger
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self) -> None:
        backoff = Backoff()
        wait = min(5.0, self.interval)
        while not self._stopping.wait(wait):
            try:
                run_once(self.ledger)
            except Exception:  # logged; the next pass tries again (readiness is not affected)
                log.exception("retention_pass_failed")
                wait = backoff.failed()
                continue
            backoff.succeeded()
            wait = self.interval
