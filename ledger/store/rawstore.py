"""Raw connections to the event store for the integrity side, on both backends, without the
``eventsourcing`` pool: the events are read on them through :class:`ledger.store.reader.RowReader`
(exactly as stored, in position order, with bounded memory), and the integrity checks keep
their own tables next to the events (see :mod:`ledger.integrity.merkle_store`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ledger.settings import DatabaseConfig, Settings
from ledger.store.reader import EventsSQL, RowReader
from ledger.store.setup import postgres_conninfo


class RawStore:
    """One backend's connection factory and the SQL dialect differences we need."""

    def __init__(self, settings: Settings) -> None:
        self.db: DatabaseConfig = settings.database
        self.is_sqlite = self.db.kind == "sqlite"
        self.timeout = settings.lock_timeout_seconds * 6
        #: The events, read on this store's connections.
        self.rows = RowReader(EventsSQL.for_database(self.db))

    def table(self, name: str) -> str:
        """A table name qualified by the PostgreSQL schema (plain on SQLite)."""
        if self.is_sqlite:
            return name
        return f'"{self.db.schema or "public"}"."{name}"'

    def sql(self, text: str) -> str:
        """Our SQL is written with ``?`` placeholders; psycopg wants ``%s``."""
        return text if self.is_sqlite else text.replace("?", "%s")

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection in autocommit mode; callers open transactions explicitly."""
        if self.is_sqlite:
            assert self.db.sqlite_path is not None
            conn = sqlite3.connect(self.db.sqlite_path, timeout=self.timeout, isolation_level=None)
            try:
                yield conn
            finally:
                conn.close()
            return
        with psycopg.connect(postgres_conninfo(self.db), autocommit=True) as pg:
            yield pg

    @contextmanager
    def write_transaction(self, conn: Any) -> Iterator[Any]:
        """One transaction that holds the write lock from its start (SQLite ``IMMEDIATE``)."""
        if self.is_sqlite:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return
        with conn.transaction(), conn.cursor() as cursor:
            yield cursor
