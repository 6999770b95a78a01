"""Reading the events table: its name and position column on each backend, the SELECTs run
against it, and the two ways of reading them.

- :class:`EventsSQL`: the one place that spells the table and its columns; every statement
  over the events outside the write path comes from here.
- :class:`EventReader`: decoded records through the ``eventsourcing`` library's own
  connections (the service's reads: one stream, the events after a position, all of them),
  decoded by the reference decoder :func:`ledger.store.event_record.decode_row`.
- :class:`RowReader`: rows exactly as stored, ``(position, stream, sequence, topic, state)``
  in position order, on a DB-API connection of the caller's: streamed with bounded memory
  (verify, the Merkle tree, export) or fetched and decoded by the fast decoder
  :func:`ledger.store.decode.decode` (the views' reads, :func:`projections.db.read_events`).

A position is the store's notification id minus one (SQLite's ``rowid``). The module is a
little past 300 lines on purpose: every statement over the events table outside the write
path is here, so its name and position column are spelled once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from eventsourcing.persistence import ApplicationRecorder
from psycopg.rows import tuple_row

from ledger.settings import DatabaseConfig
from ledger.store.decode import decode
from ledger.store.event_record import EventRecord, decode_row
from ledger.store.setup import APPLICATION_NAME

#: The library names the events table: ``stored_events`` on SQLite, after the application on PG.
SQLITE_EVENTS_TABLE = "stored_events"
POSTGRES_EVENTS_TABLE = f"{APPLICATION_NAME}_events"
#: The channel the library NOTIFYs on every insert into the events table (PostgreSQL).
POSTGRES_CHANNEL = POSTGRES_EVENTS_TABLE
#: Higher than any position: the bound of a range read without one.
_NO_BOUND = 2**62


def topic_like(event_type: str) -> str:
    """A ``topic LIKE`` pattern for the events of one type (``Run.Started`` matches the topic
    ``ledger.domain.run:Run.Started``); our event types hold no ``%`` or ``_``."""
    return f"%:{event_type}"


@dataclass(frozen=True, slots=True)
class EventsSQL:
    """The events table in one backend's SQL. Statements use ``?`` placeholders; :meth:`sql`
    gives them to psycopg as ``%s``. Rows are ``(position, stream, sequence, topic, state)``."""

    is_postgres: bool
    #: The table's own name (as ``to_regclass`` or ``sqlite_master`` know it).
    name: str
    #: The table as statements name it: schema-qualified, or as the search path finds it.
    table: str

    @classmethod
    def for_database(cls, db: DatabaseConfig) -> EventsSQL:
        """Qualified by the PostgreSQL schema (``public`` without one; the schema name is
        validated by ``parse_database_url``)."""
        if db.kind == "sqlite":
            return cls(False, SQLITE_EVENTS_TABLE, SQLITE_EVENTS_TABLE)
        return cls(True, POSTGRES_EVENTS_TABLE, f'"{db.schema or "public"}"."{POSTGRES_EVENTS_TABLE}"')

    @classmethod
    def on_search_path(cls, kind: str) -> EventsSQL:
        """Unqualified: for connections whose ``search_path`` is the ledger's schema."""
        if kind == "sqlite":
            return cls(False, SQLITE_EVENTS_TABLE, SQLITE_EVENTS_TABLE)
        return cls(True, POSTGRES_EVENTS_TABLE, POSTGRES_EVENTS_TABLE)

    @property
    def position(self) -> str:
        """The column the position is read from (the position is this minus one)."""
        return "notification_id" if self.is_postgres else "rowid"

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.is_postgres else statement

    def rows(self, where: str, order: str | None = None, *, limit: bool = False) -> str:
        statement = (
            f"SELECT {self.position} - 1 AS position, originator_id, originator_version, topic, state "
            f"FROM {self.table} WHERE {where} ORDER BY {order or self.position}"
        )
        return statement + " LIMIT ?" if limit else statement

    def rows_in_range(self, *, upto: bool = True, limit: bool = True, part: str | None = None) -> str:
        """Rows after a position (params: position + 1; then the bound + 1 with ``upto``, the
        ``part`` expression's params and its part, the limit), oldest first."""
        where = [f"{self.position} > ?"]
        if upto:
            where.append(f"{self.position} <= ?")
        if part is not None:
            where.append(f"{part} = ?")
        return self.rows(" AND ".join(where), limit=limit)

    def rows_of_stream(self) -> str:
        return self.rows("originator_id = ?", "originator_version")

    def rows_of_streams(self, count: int) -> str:
        """The rows of ``count`` streams up to a position + 1, stream by stream in order."""
        marks = ", ".join("?" for _ in range(count))
        return self.rows(
            f"originator_id IN ({marks}) AND {self.position} <= ?", "originator_id, originator_version"
        )

    def max_position(self) -> str:
        return f"SELECT MAX({self.position}) AS m FROM {self.table}"

    def first_events_like(self) -> str:
        """``(stream, state)`` of first events whose topic is LIKE ?, up to a position + 1."""
        return (
            f"SELECT originator_id, state FROM {self.table} WHERE originator_version = 1 "
            f"AND topic LIKE ? AND {self.position} <= ?"
        )

    def stream_ids_like(self) -> str:
        return (
            f"SELECT originator_id FROM {self.table} WHERE originator_version = 1 "
            f"AND originator_id LIKE ? ESCAPE '\\' ORDER BY originator_id"
        )

    def stream_ids_like_in_range(self) -> str:
        """:meth:`stream_ids_like` of the streams begun after one position, up to another."""
        return (
            f"SELECT originator_id FROM {self.table} WHERE {self.position} > ? AND {self.position} <= ? "
            f"AND originator_version = 1 AND originator_id LIKE ? ESCAPE '\\' ORDER BY {self.position}"
        )

    def lone_streams_like(self) -> str:
        """Streams whose only event is their first, of a topic LIKE ?; oldest first, LIMIT ?."""
        return (
            f"SELECT e.originator_id FROM {self.table} e "
            f"WHERE e.originator_version = 1 AND e.topic LIKE ? "
            f"AND NOT EXISTS (SELECT 1 FROM {self.table} f WHERE f.originator_id = e.originator_id "
            f"AND f.originator_version = 2) ORDER BY e.{self.position} LIMIT ?"
        )

    def streams_like_without(self, unwanted: int) -> str:
        """Streams with an event of a topic LIKE ?, and none of the ``unwanted`` topics LIKE ?."""
        statement = f"SELECT s.originator_id FROM {self.table} s WHERE s.topic LIKE ?"
        if unwanted:
            others = " OR ".join(["f.topic LIKE ?"] * unwanted)
            statement += (
                f" AND NOT EXISTS (SELECT 1 FROM {self.table} f "
                f"WHERE f.originator_id = s.originator_id AND ({others}))"
            )
        return statement


class EventReader:
    """Decoded records on the library's connections (a transaction of their own per read)."""

    def __init__(self, recorder: ApplicationRecorder, db: DatabaseConfig) -> None:
        self.recorder = recorder
        self.events = events = EventsSQL.for_database(db)
        self._stream_sql = events.sql(events.rows_of_stream())
        self._first_sql = events.sql(events.rows("originator_id = ? AND originator_version = 1"))
        self._range_sql = events.sql(events.rows_in_range())
        self._max_sql = events.sql(events.max_position())

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute(statement, tuple(params))
            rows: list[Any] = cursor.fetchall()
            return rows

    @staticmethod
    def _decode(row: Any) -> EventRecord:
        return decode_row(  # it takes the notification id
            row["position"] + 1, row["originator_id"], row["originator_version"], row["topic"], row["state"]
        )

    def stream(self, stream: str) -> list[EventRecord]:
        return [self._decode(row) for row in self._query(self._stream_sql, (stream,))]

    def first(self, stream: str) -> EventRecord | None:
        """The stream's first event (one primary-key row), or None."""
        rows = self._query(self._first_sql, (stream,))
        return self._decode(rows[0]) if rows else None

    def max_position(self) -> int:
        """The newest event's position, or -1 for an empty ledger."""
        rows = self._query(self._max_sql)
        value = rows[0]["m"] if rows else None
        return -1 if value is None else int(value) - 1

    def after(self, position: int, *, limit: int = 1000, upto: int | None = None) -> list[EventRecord]:
        """Events with ``position`` > ``position`` (and <= ``upto``), oldest first."""
        high = (upto if upto is not None else _NO_BOUND) + 1
        return [self._decode(row) for row in self._query(self._range_sql, (position + 1, high, limit))]

    def iterate(self, *, batch: int = 5000, upto: int | None = None) -> Iterator[EventRecord]:
        position = -1
        while True:
            records = self.after(position, limit=batch, upto=upto)
            if not records:
                return
            yield from records
            position = records[-1].position

    def stream_ids(self, prefix: str) -> list[str]:
        """Ids of the streams whose id starts with ``prefix`` (e.g. ``workflow:``), sorted."""
        rows = self._query(self.events.sql(self.events.stream_ids_like()), (_like_prefix(prefix),))
        return [str(row["originator_id"]) for row in rows]

    def stream_ids_begun(self, prefix: str, *, after: int, upto: int) -> list[str]:
        """:meth:`stream_ids`, of the streams whose first event is at a position in
        (``after``, ``upto``], in position order: a range of the position index, however big
        the ledger (a prefix ``LIKE`` over every stream id is a scan of the whole table)."""
        statement = self.events.sql(self.events.stream_ids_like_in_range())
        rows = self._query(statement, (after + 1, upto + 1, _like_prefix(prefix)))
        return [str(row["originator_id"]) for row in rows]

    def lone_streams(self, event_type: str, *, limit: int) -> list[str]:
        """Streams that hold one event, of ``event_type``; oldest first."""
        statement = self.events.sql(self.events.lone_streams_like())
        return [str(row["originator_id"]) for row in self._query(statement, (topic_like(event_type), limit))]

    def streams_with(self, event_type: str, *, without: Sequence[str] = ()) -> list[str]:
        """Streams with an event of ``event_type`` and none of the types ``without``."""
        statement = self.events.sql(self.events.streams_like_without(len(without)))
        params = [topic_like(event_type), *(topic_like(kind) for kind in without)]
        return [str(row["originator_id"]) for row in self._query(statement, params)]


def _like_prefix(prefix: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern of the strings that start with ``prefix``."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class StoredRow(NamedTuple):
    position: int
    stream: str
    sequence: int
    topic: str
    state: bytes


class RowReader:
    """Rows as stored, on a caller's sqlite3 or psycopg connection (whatever its row factory:
    rows are read as tuples; on PostgreSQL in binary, so ``bytea`` is not hex-encoded on the
    server and decoded here)."""

    def __init__(self, events: EventsSQL) -> None:
        self.events = events

    def max_position(self, conn: Any) -> int:
        """The newest event's position, or -1 for an empty ledger."""
        rows = self._fetch(conn, self.events.max_position(), (), binary=False)
        return -1 if not rows or rows[0][0] is None else int(rows[0][0]) - 1

    def records(
        self,
        conn: Any,
        after: int,
        limit: int | None,
        *,
        upto: int | None = None,
        part: tuple[int, int] | None = None,
    ) -> list[EventRecord]:
        """Events with position > ``after`` (and <= ``upto``; at most ``limit``, or all with
        None), oldest first, fetched in one query; with ``part=(k, n)`` only those of the
        streams in part ``k`` of ``n`` (every stream's events fall in one part)."""
        params: list[Any] = [after + 1]
        if upto is not None:
            params.append(upto + 1)
        part_sql = None
        if part is not None:
            part_sql = self._stream_part(conn)
            params += [part[1], part[0]]
        statement = self.events.rows_in_range(upto=upto is not None, limit=limit is not None, part=part_sql)
        if limit is not None:
            params.append(limit)
        return [decode(*row) for row in self._fetch(conn, statement, params, binary=True)]

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
        high = (upto if upto is not None else _NO_BOUND) + 1
        params = (after + 1, high, limit if limit is not None else _NO_BOUND)
        yield from self.stream(conn, self.events.rows_in_range(), params, batch=batch)

    def stream(self, conn: Any, query: str, params: Sequence[Any], *, batch: int = 10000) -> Iterator[Any]:
        """The rows of ``query`` (``?`` placeholders), fetched ``batch`` at a time: memory
        stays bounded however many rows it has (a server-side cursor on PostgreSQL, whose
        client cursors fetch the whole result at once). PostgreSQL: ``conn`` in autocommit."""
        if not self.events.is_postgres:
            cursor = conn.cursor()
            cursor.row_factory = None
            cursor.execute(query, tuple(params))
            while rows := cursor.fetchmany(batch):
                yield from rows
            return
        with (
            conn.transaction(),
            conn.cursor(name="runledger_stream", binary=True, row_factory=tuple_row) as cursor,
        ):
            cursor.itersize = batch
            cursor.execute(self.events.sql(query), tuple(params))
            while rows := cursor.fetchmany(batch):
                yield from rows

    def _fetch(self, conn: Any, query: str, params: Sequence[Any], *, binary: bool) -> list[Any]:
        if self.events.is_postgres:
            with conn.cursor(row_factory=tuple_row) as cursor:
                rows: list[Any] = cursor.execute(self.events.sql(query), params, binary=binary).fetchall()
                return rows
        cursor = conn.cursor()
        cursor.row_factory = None
        fetched: list[Any] = cursor.execute(query, params).fetchall()
        return fetched

    def _stream_part(self, conn: Any) -> str:
        """SQL for an event's stream hashed into ``0 .. ?-1`` (on SQLite a function of the
        connection's)."""
        if self.events.is_postgres:
            return "mod(hashtext(originator_id) & 2147483647, ?)"
        conn.create_function("rl_stream_hash", 2, _stream_hash, deterministic=True)
        return "rl_stream_hash(originator_id, ?)"


def _stream_hash(stream: str, parts: int) -> int:
    return zlib.crc32(stream.encode()) % parts
