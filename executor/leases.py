"""The lease monitor: fails every ``running`` run whose lease lapsed with ``worker_lost``
(SPEC section 5), whoever's worker it was, so that a run is never left ``running`` after its
worker died.

It runs wherever runs can be claimed: in every ``runledger serve`` (with or without an
executor: outside engines claim through the API) and in every ``runledger worker``. One
monitor per database is active at a time: on PostgreSQL the holder of a session advisory lock
on a connection of its own (a lost connection releases it, and the next check takes it again,
here or in another process); on SQLite the holder of an exclusive ``flock`` on a file next to
the database. The others stand by. Expiry itself is optimistic (the failure is appended at the
run's next version), so even two monitors at once could never fail a run twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import structlog

from ledger.errors import LedgerError
from ledger.hashing import format_timestamp
from ledger.loops import Backoff, Health
from ledger.service import Ledger
from ledger.settings import DatabaseConfig, Settings
from ledger.store.setup import postgres_conninfo

log = structlog.get_logger()

Lapsed = Callable[[str], list[str]]
LOOP = "lease-monitor"


class MonitorLock:
    """The one-per-database lock of the lease monitor (see the module docstring)."""

    def __init__(self, db: DatabaseConfig) -> None:
        self.db = db
        self._conn: psycopg.Connection[Any] | None = None
        self._file: IO[str] | None = None
        self.held = False

    def acquire(self) -> bool:
        """Whether this process holds the lock now (taking it if it is free)."""
        if self.db.kind == "postgres":
            return self._acquire_postgres()
        path = self.db.sqlite_path
        if path is None or path == ":memory:" or "mode=memory" in path:
            self.held = True
            return True
        if self._file is None:
            lock_path = Path(path).expanduser().resolve().with_name(Path(path).name + ".lease-monitor-lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = lock_path.open("a")
        if not self.held:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self.held = True
        return True

    def _acquire_postgres(self) -> bool:
        if self._conn is not None and self.held:
            self._conn.execute("SELECT 1")  # raises if the connection (and the lock) is gone
            return True
        if self._conn is None:
            self._conn = psycopg.connect(postgres_conninfo(self.db), autocommit=True)
        key = f"runledger:lease-monitor:{self.db.schema or 'public'}"
        row = self._conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        self.held = bool(row and row[0])
        return self.held

    def release(self) -> None:
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):  # closing ends the session and its lock
                self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


class LeaseMonitor:
    """A thread that checks for lapsed leases every ``lease_seconds / 3`` (at most 1 s)."""

    def __init__(
        self,
        ledger: Ledger,
        settings: Settings,
        *,
        lapsed: Lapsed,
        active: Callable[[], list[str]] = list,
        health: Health | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.lapsed = lapsed
        #: The runs this process executes itself (their coordinators renew them).
        self.active = active
        self.health = health if health is not None else Health()
        self.interval = min(1.0, settings.lease_seconds / 3)
        self.lock = MonitorLock(settings.database)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="lease-monitor", daemon=True)
        self._thread.start()
        log.info("lease_monitor_started", interval=self.interval)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.lock.release()

    def _run(self) -> None:
        backoff = Backoff()
        wait = self.interval
        while not self._stopping.wait(wait):
            try:
                if self.lock.acquire():
                    self.expire_lapsed()
            except Exception as exc:  # the database went away: release, back off, retry
                log.exception("lease_check_failed")
                self.health.failed(LOOP, exc)
                self.lock.release()
                wait = backoff.failed()
                continue
            backoff.succeeded()
            self.health.ok(LOOP)
            wait = self.interval

    def expire_lapsed(self) -> list[str]:
        """Fail every running run whose lease lapsed with ``worker_lost``; the ones it failed."""
        now_iso = format_timestamp(datetime.now(UTC))
        expired = []
        ours = set(self.active())
        for run_id in self.lapsed(now_iso):
            if run_id in ours:
                continue  # ours and alive: its coordinator renews it
            try:
                if self.ledger.expire_lease(run_id):
                    expired.append(run_id)
                    log.info("lease_expired", run_id=run_id)
            except LedgerError:
                continue
        return expired
