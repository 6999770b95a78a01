"""The lock a rebuild of a view holds while it runs, on both backends; it goes with the process
that holds it, however that process ends (SIGKILL included).

PostgreSQL: a session advisory lock (``rebuild:<view>``), released when the session's backend
ends. SQLite: an exclusive ``flock`` on ``<database>.rebuild-<view>.lock`` next to the
database file, released by the kernel when the process's descriptor closes. So a second rebuild
of the view is refused while one runs, and a runner that finds a view marked ``rebuilding``
whose lock it can take knows the rebuild died (``state.abandon_building``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass

from ledger.settings import Settings
from projections import state as st
from projections.db import Connection


@dataclass
class RebuildLock:
    """A held lock; :meth:`release` lets it go (idempotent)."""

    view: str
    conn: Connection | None = None
    key: int | None = None
    fd: int | None = None

    def release(self) -> None:
        if self.conn is not None and self.key is not None:
            # Explicitly: a closed session's locks go only when its backend exits.
            with contextlib.suppress(Exception):
                self.conn.execute("SELECT pg_advisory_unlock(?)", (self.key,))
            self.conn = self.key = None
        if self.fd is not None:
            os.close(self.fd)  # the flock goes with the descriptor
            self.fd = None


def lock_path(settings: Settings, view: str) -> str | None:
    """SQLite: the lock file of ``view``'s rebuilds (None for an in-memory database)."""
    path = settings.database.sqlite_path
    if path is None or path == ":memory:" or path.startswith("file::memory:"):
        return None
    return f"{path}.rebuild-{view}.lock"


def try_lock(conn: Connection, settings: Settings, view: str) -> RebuildLock | None:
    """Take the rebuild lock of ``view`` (on PostgreSQL on ``conn``'s session) if no one holds
    it; None if a rebuild of the view holds it now."""
    if conn.is_postgres:
        key = st.advisory_key(conn, f"rebuild:{view}")
        row = conn.one("SELECT pg_try_advisory_lock(?) AS ok", (key,))
        if row is None or not row["ok"]:
            return None
        return RebuildLock(view, conn=conn, key=key)
    path = lock_path(settings, view)
    if path is None:  # one process owns an in-memory database: nothing to share
        return RebuildLock(view)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return RebuildLock(view, fd=fd)
