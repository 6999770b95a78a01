"""Connections for the read side: its own SQLite or PostgreSQL connections to the ledger's
database, one SQL dialect for both (``?`` placeholders, translated for psycopg), and the
events read on them through the store's :class:`~ledger.store.reader.RowReader` (decoded
from the stored rows, never through aggregates).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from ledger.store.reader import EventsSQL, RowReader
from ledger.store.setup import postgres_conninfo, prepare_database

Row = dict[str, Any]
#: From this many rows on, a PostgreSQL insert goes through COPY.
COPY_THRESHOLD = 50
#: ``INSERT INTO t (a, b) VALUES (?, ?) <tail>``: one row's statement, batched on PostgreSQL.
_INSERT = re.compile(
    r"^INSERT INTO (?P<table>\S+) \((?P<columns>[^)]*)\) "
    r"VALUES \((?:\?,\s*)*\?\)(?P<tail>.*)$",
    re.S,
)


#: What a NUL character in a stored string becomes in a view (PostgreSQL text cannot hold
#: NUL; SQLite gets the same, so both backends' views agree). The ledger keeps the original.
NUL_STAND_IN = "\ufffd"


def text_safe(row: Sequence[Any]) -> Sequence[Any]:
    """``row`` with NUL in its strings replaced by :data:`NUL_STAND_IN` (itself when none has
    one: the common case costs one scan). Every value a view writes passes through here."""
    for value in row:
        if value.__class__ is str and "\x00" in value:
            return tuple(v.replace("\x00", NUL_STAND_IN) if v.__class__ is str else v for v in row)
    return row


@dataclass
class Connection:
    """One DB-API connection with the dialect it speaks; rows come back as dicts."""

    kind: Literal["sqlite", "postgres"]
    raw: Any
    #: Per-connection helpers made on first use (see ``projections.tracking``).
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    @property
    def key_text(self) -> str:
        """The column type of identifiers (ids, hashes, names, ISO timestamps): text compared
        byte by byte on PostgreSQL (``COLLATE "C"``: the order of such text, and index builds
        a third faster than under a locale), plain ``TEXT`` (already binary) on SQLite."""
        return 'TEXT COLLATE "C"' if self.is_postgres else "TEXT"

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.is_postgres else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self.sql(statement), tuple(text_safe(params)))

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        rows = [text_safe(row) for row in rows]
        if self.is_postgres:
            insert = _INSERT.match(statement)
            if insert is not None and len(rows) >= COPY_THRESHOLD:
                if insert["tail"].strip():
                    self._copy_insert(insert["table"], insert["columns"], rows, insert["tail"])
                else:  # nothing to resolve on conflict: COPY straight into the table
                    self.copy_rows(insert["table"], insert["columns"].split(", "), rows)
                return
            with self.raw.cursor() as cursor:
                cursor.executemany(self.sql(statement), rows)
        else:
            self.raw.executemany(statement, rows)

    def _copy_insert(self, table: str, columns: str, rows: Sequence[Sequence[Any]], tail: str) -> None:
        """Many rows on PostgreSQL: COPY into a session temp table shaped like ``table``, then
        one ``INSERT ... SELECT ... <tail>`` (the caller's ON CONFLICT clause) in the caller's
        transaction. ``rows`` must not repeat a key that ``tail`` updates."""
        staging = f"rl_tmp_{table}"
        self.raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS")
        with self.raw.cursor() as cursor:
            with cursor.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} {tail}")
            cursor.execute(f"DELETE FROM {staging}")

    def copy_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Append ``rows`` as they are (no conflict handling): COPY straight into ``table``
        on PostgreSQL, a plain batched INSERT on SQLite. For tables nobody else writes."""
        if not rows:
            return
        rows = [text_safe(row) for row in rows]
        names = ", ".join(columns)
        if self.is_postgres:
            with self.raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                write = copy.write_row
                for row in rows:
                    write(row)
        else:
            self.raw.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({','.join('?' * len(columns))})", rows
            )

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(row) for row in self.execute(statement, params).fetchall()]

    def one(self, statement: str, params: Sequence[Any] = ()) -> Row | None:
        row = self.execute(statement, params).fetchone()
        return dict(row) if row is not None else None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Everything inside commits together, or nothing does."""
        if self.is_postgres:
            with self.raw.transaction():
                yield self
            return
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def close(self) -> None:
        self.raw.close()


def connect(settings: Settings, *, autocommit: bool = True) -> Connection:
    """A new connection to the ledger's database (on PG with ``search_path`` = its schema)."""
    db = settings.database
    prepare_database(db)
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        raw = sqlite3.connect(db.sqlite_path, timeout=30, isolation_level=None, check_same_thread=False)
        raw.row_factory = sqlite3.Row
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        return Connection("sqlite", raw)
    # Views are derived data: like SQLite's synchronous=NORMAL above, a commit does not wait
    # for its WAL flush. A crash can only lose the newest commits whole (rows and position
    # together), which the runner then applies again from the events.
    options = "-c synchronous_commit=off"
    if db.schema:
        options += f" -c search_path={db.schema}"
    raw_pg = psycopg.connect(
        postgres_conninfo(db), autocommit=autocommit, row_factory=dict_row, options=options
    )
    return Connection("postgres", raw_pg)


def table_exists(conn: Connection, name: str) -> bool:
    """Whether the table exists (on PostgreSQL: on the connection's search path)."""
    if conn.is_postgres:
        row = conn.one("SELECT to_regclass(?) AS t", (name,))
        return row is not None and row["t"] is not None
    return conn.one("SELECT name FROM sqlite_master WHERE type='table' AND name=?", (name,)) is not None


#: The events as the read side's connections name them (unqualified: on PostgreSQL their
#: search path is the ledger's schema).
_EVENTS = {kind: RowReader(EventsSQL.on_search_path(kind)) for kind in ("sqlite", "postgres")}


def events_of(conn: Connection) -> RowReader:
    return _EVENTS[conn.kind]


def events_table_exists(conn: Connection) -> bool:
    return table_exists(conn, events_of(conn).events.name)


def read_events(
    conn: Connection,
    after: int,
    limit: int | None,
    *,
    upto: int | None = None,
    part: tuple[int, int] | None = None,
) -> list[EventRecord]:
    """Events with position > ``after`` (and <= ``upto``; at most ``limit`` of them, or all
    with None), oldest first; with ``part=(k, n)`` only those of the streams in part ``k`` of
    ``n`` (every stream's events fall in one part, so per-run folds can be split by part; read
    a part over bounded position ranges, so the scan stays an index range scan whatever the
    part's share of the rows). One query, rows decoded by :meth:`RowReader.records`."""
    return events_of(conn).records(conn.raw, after, limit, upto=upto, part=part)


def max_position(conn: Connection) -> int:
    """The newest event's position, or -1 when there are none (or no events table yet)."""
    if not events_table_exists(conn):
        return -1
    return events_of(conn).max_position(conn.raw)
