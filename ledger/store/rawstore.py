"""Raw connections to the event store for the integrity side: streaming stored rows in
position order with bounded memory, on both backends, without the ``eventsourcing`` pool.

Integrity checks read the rows exactly as stored (no aggregates, no decoding beyond what the
check needs), and keep their own tables next to the events (see :mod:`ledger.integrity.merkle_store`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg

from ledger.settings import DatabaseConfig, Settings
from ledger.store.setup import APPLICATION_NAME, postgres_conninfo


class StoredRow(NamedTuple):
    position: int
    stream: str
    sequence: int
    topic: str
    state: bytes


class RawStore:
    """One backend's connection factory and the SQL dialect differences we need."""

    def __init__(self, settings: Settings) -> None:
        self.db: DatabaseConfig = settings.database
        self.is_sqlite = self.db.kind == "sqlite"
        self.timeout = settings.lock_timeout_seconds * 6
        if self.is_sqlite:
            self.events_table = "stored_events"
            self.position_column = "rowid"
        else:
            self.events_table = self.table(f"{APPLICATION_NAME}_events")
            self.position_column = "notification_id"

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

    def max_position(self, conn: Any) -> int:
        row = conn.execute(f"SELECT MAX({self.position_column}) FROM {self.events_table}").fetchone()
        return -1 if row is None or row[0] is None else int(row[0]) - 1

    def scan(
        self,
        conn: Any,
        *,
        after: int = -1,
        upto: int | None = None,
        batch: int = 10000,
        limit: int | None = None,
    ) -> Iterator[StoredRow]:
        """Every stored row with ``after`` < position <= ``upto`` (the first ``limit`` of them),
        oldest first, streamed."""
        for row in self.scan_tuples(conn, after=after, upto=upto, batch=batch, limit=limit):
            yield StoredRow(*row)

    def scan_tuples(
        self,
        conn: Any,
        *,
        after: int = -1,
        upto: int | None = None,
        batch: int = 10000,
        limit: int | None = None,
    ) -> Iterator[tuple[int, str, int, str, bytes]]:
        """:meth:`scan` as plain tuples straight from the driver (the hot path of ``verify``)."""
        high = (upto if upto is not None else 2**62) + 1
        query = self.sql(
            f"SELECT {self.position_column} - 1, originator_id, originator_version, topic, "
            f"state FROM {self.events_table} WHERE {self.position_column} > ? "
            f"AND {self.position_column} <= ? ORDER BY {self.position_column} LIMIT ?"
        )
        params = (after + 1, high, limit if limit is not None else 2**62)
        yield from self.stream(conn, query, params, batch=batch)

    def stream(self, conn: Any, query: str, params: tuple[Any, ...], *, batch: int = 10000) -> Iterator[Any]:
        """The rows of ``query``, fetched ``batch`` at a time: memory stays bounded however
        many rows it has (a server-side cursor on PostgreSQL, whose client cursors fetch the
        whole result at once; in binary, so ``bytea`` is not hex-encoded on the way)."""
        if self.is_sqlite:
            cursor = conn.execute(query, params)
            while rows := cursor.fetchmany(batch):
                yield from rows
            return
        with conn.transaction(), conn.cursor(name="runledger_stream", binary=True) as cursor:
            cursor.itersize = batch
            cursor.execute(query, params)
            while rows := cursor.fetchmany(batch):
                yield from rows
