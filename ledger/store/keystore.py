"""The run keys of sensitive parameters, kept outside the events table (SPEC section 11).

``runledger_run_keys`` holds one AES-256 key per run that has sensitive parameters;
destroying it (expunge) is a DELETE, so the ciphertext in the run's events can no longer be
opened. SQLite deletes with ``secure_delete`` on (the freed page is zeroed, so the key is not
left in the file); on PostgreSQL the table is vacuumed after keys are destroyed, so the dead
row version goes too. ``runledger_erased_files`` names the stored files an expunge deleted,
so a read of one answers 410 Gone rather than 404.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg

from ledger.settings import Settings
from ledger.store.rawstore import RawStore

KEYS_TABLE = "runledger_run_keys"
ERASED_FILES_TABLE = "runledger_erased_files"


class KeyStore:
    def __init__(self, settings: Settings) -> None:
        self.raw = RawStore(settings)
        self.keys = self.raw.table(KEYS_TABLE)
        self.erased = self.raw.table(ERASED_FILES_TABLE)
        blob = "BLOB" if self.raw.is_sqlite else "BYTEA"
        with self._connect() as conn:
            for statement in (
                f"CREATE TABLE IF NOT EXISTS {self.keys} (run_id TEXT PRIMARY KEY, key {blob} NOT NULL)",
                f"CREATE TABLE IF NOT EXISTS {self.erased} (sha256 TEXT PRIMARY KEY, run_id TEXT NOT NULL)",
            ):
                # Two processes creating it at once: one wins, the other finds it there.
                with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                    conn.execute(statement)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        with self.raw.connect() as conn:
            if self.raw.is_sqlite:
                conn.execute("PRAGMA secure_delete = ON")
            yield conn

    def create(self, run_id: str, key: bytes) -> None:
        """Keep ``key`` for ``run_id`` (before the run's trigger is saved)."""
        with self._connect() as conn:
            conn.execute(self.raw.sql(f"INSERT INTO {self.keys} (run_id, key) VALUES (?, ?)"), (run_id, key))

    def get(self, run_id: str) -> bytes | None:
        with self._connect() as conn:
            row = conn.execute(
                self.raw.sql(f"SELECT key FROM {self.keys} WHERE run_id = ?"), (run_id,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def has(self, run_ids: Iterable[str]) -> set[str]:
        """Which of ``run_ids`` still have a key."""
        wanted = list(run_ids)
        found: set[str] = set()
        with self._connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = conn.execute(
                    self.raw.sql(f"SELECT run_id FROM {self.keys} WHERE run_id IN ({marks})"), chunk
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        return found

    def destroy(self, run_ids: Iterable[str]) -> int:
        """Delete the keys of ``run_ids``; how many there were."""
        wanted = list(run_ids)
        if not wanted:
            return 0
        deleted = 0
        with self._connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                cursor = conn.execute(
                    self.raw.sql(f"DELETE FROM {self.keys} WHERE run_id IN ({marks})"), chunk
                )
                deleted += max(cursor.rowcount, 0)
            if deleted and not self.raw.is_sqlite:
                conn.execute(f"VACUUM {self.keys}")
        return deleted

    def mark_erased(self, files: Iterable[tuple[str, str]]) -> None:
        """Record ``(sha256, run_id)``: files an expunge is about to delete."""
        rows = list(files)
        if not rows:
            return
        verb = "INSERT OR IGNORE INTO" if self.raw.is_sqlite else "INSERT INTO"
        tail = "" if self.raw.is_sqlite else " ON CONFLICT (sha256) DO NOTHING"
        with self._connect() as conn, self.raw.write_transaction(conn) as cursor:
            cursor.executemany(
                self.raw.sql(f"{verb} {self.erased} (sha256, run_id) VALUES (?, ?){tail}"), rows
            )

    def was_erased(self, sha256: str) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                self.raw.sql(f"SELECT 1 FROM {self.erased} WHERE sha256 = ?"), (sha256,)
            ).fetchone()
        return row is not None
