"""The library's recorders and transcoder with a shorter write path, same rows and layout.

* :class:`PostgresLedgerRecorder` appends in one statement: a function that takes the
  table lock, notifies listeners and inserts, called in autocommit, so a write is one round
  trip instead of the library's pipelined BEGIN, SET, LOCK, NOTIFY, INSERT, COMMIT. The lock
  is the library's own (``EXCLUSIVE``, held to commit), so positions still commit in order.
* :class:`SQLiteLedgerRecorder` inserts a write's rows with one ``executemany`` and derives
  their positions from the last one (consecutive inside the write transaction) instead of
  one ``execute`` per row.
* :class:`LedgerSQLiteFactory` gives the library's SQLite connections a statement cache:
  the library opens them with ``cached_statements=True``, which ``sqlite3`` reads as a
  cache of one statement, so each write's BEGIN, INSERT, checks and COMMIT were compiled
  again every time.
* :class:`OrjsonTranscoder` writes and reads the stored state with orjson: the same JSON
  document and the same ``{"_type_", "_data_"}`` transcodings as the library's
  :class:`~eventsourcing.persistence.JSONTranscoder`, several times faster. Rows written
  by either read back alike. :class:`LedgerMapper` hands it the hash chain's events
  without the check for NaN and infinities: hashing them already refused those.

Both recorders also take ``expect``: streams the write's command read, with the version it
saw. Inside the write's transaction, under the write lock, a newer event on any of them
fails the write with :class:`StaleRead` and stores nothing, so a command can decide on a
cached read and still never act on an outdated one.

Writes that carry tracking (the library's process applications) take the library's path.

Past 300 lines on purpose: the two recorders share the ``expect`` check and the mapper, and
each is the one place its backend's write path is spelt out; splitting them apart would
scatter one measured path over several files.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
import psycopg
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)
from eventsourcing.utils import get_topic, retry
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.domain.aggregate import StreamEvent

#: The append function's name; a new body gets a new name, so old and new servers can
#: run side by side during an upgrade. v3 numbers the rows itself (dense positions, below);
#: v2 (still in older ledgers, and in a server not yet upgraded) takes them from the
#: sequence, which v3 keeps ahead of the table so that the two never collide.
APPEND_FUNCTION = "runledger_append_events_v3"
#: The SQLSTATE the append function raises for a failed ``expect``.
STALE_READ_SQLSTATE = "RLS01"


class StaleRead(IntegrityError):
    """A stream the write's command read has events newer than the command saw; nothing
    was written. Read it again and decide again."""


_ENCODE_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
#: Statements each SQLite connection keeps compiled (``sqlite3``'s own default).
SQLITE_CACHED_STATEMENTS = 128


def _refuse_expect_with(expect: Mapping[str, int] | None, kwargs: Mapping[str, Any]) -> None:
    if expect:
        raise ValueError(f"expect is not supported together with {sorted(kwargs)}")


def _has_non_finite(value: Any) -> bool:
    if type(value) is float:
        return not math.isfinite(value)
    if type(value) is dict:
        return any(_has_non_finite(item) for item in value.values())
    if type(value) is list or type(value) is tuple:
        return any(_has_non_finite(item) for item in value)
    return False


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": sql.Identifier(self.datastore.schema),
            "function": sql.Identifier(APPEND_FUNCTION),
            "table": sql.Identifier(self.events_table_name),
            "channel": sql.Identifier(self.channel_name),
        }
        self.sql_create_statements.append(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids text[], versions bigint[], topics text[], states bytea[], "
                "expect_ids text[], expect_versions bigint[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ DECLARE base bigint; BEGIN "
                "SET LOCAL lock_timeout = '{timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "IF EXISTS (SELECT 1 FROM unnest(expect_ids, expect_versions) AS e(id, v) "
                "JOIN {schema}.{table} t ON t.originator_id = e.id AND t.originator_version > e.v) "
                "THEN RAISE EXCEPTION 'a stream this write read has newer events' "
                "USING ERRCODE = '{stale}'; END IF; "
                # Dense positions: the table is locked, so its maximum + 1 is the next id, and
                # an append that fails (a conflict, a rollback) leaves no hole, where the
                # sequence's nextval would have been consumed.
                # (Or from the sequence, where a writer that still uses it, v2 during an
                # upgrade or the library's own insert, went further: never an id it handed out.)
                "SELECT GREATEST(COALESCE(max(notification_id), 0), COALESCE(pg_sequence_last_value("
                "pg_get_serial_sequence({qualified}, 'notification_id')::regclass), 0)) "
                "INTO base FROM {schema}.{table}; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(notification_id, originator_id, originator_version, topic, state) "
                "SELECT base + e.n, e.id, e.v, e.topic, e.state "
                "FROM unnest(ids, versions, topics, states) WITH ORDINALITY AS e(id, v, topic, state, n) "
                "RETURNING notification_id; "
                # Keep the sequence at the table's maximum, for writers that still use it (v2,
                # the library's own insert): their next id is then never one v3 took.
                "PERFORM setval(pg_get_serial_sequence({qualified}, 'notification_id'), "
                "base + cardinality(ids)); "
                "END $body$"
            ).format(
                timeout=sql.Literal(self.datastore.lock_timeout),
                stale=sql.SQL(STALE_READ_SQLSTATE),
                qualified=sql.Literal(
                    sql.SQL("{schema}.{table}").format(**names).as_string()  # quoted identifiers
                ),
                **names,
            )
        )
        # Binary parameters: arrays of plain types, no text escaping of the states.
        self._append_sql = sql.SQL(
            "SELECT {schema}.{function}(%b, %b, %b, %b, %s::text[], %s::bigint[]) AS id"
        ).format(**names)
        # A stream's events after a version (the cache's fast-forward, every command's
        # read): composed once, where the library composes the statement on every call.
        self._select_after_sql = (
            sql.SQL(
                "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
                "WHERE originator_id = %s AND originator_version > %s ORDER BY originator_version"
            )
            .format(**names)
            .as_string()
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, expect: Mapping[str, int] | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        if any(value is not None for value in kwargs.values()) or not stored_events:
            _refuse_expect_with(expect, kwargs)
            return cast(Sequence[int] | None, super().insert_events(stored_events, **kwargs))
        expected = dict(expect or {})
        params = (
            [str(e.originator_id) for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            list(expected),
            list(expected.values()),
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            assert conn.autocommit  # one statement, one transaction
            try:
                cursor.execute(self._append_sql, params, prepare=True)
            except psycopg.Error as exc:
                if exc.sqlstate == STALE_READ_SQLSTATE:
                    raise StaleRead(str(exc)) from None
                raise
            return [int(row[0]) for row in cursor.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(
        self,
        originator_id: Any,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        if lte is not None or desc or limit is not None:
            return cast(
                Sequence[StoredEvent],
                super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit),
            )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            after = -(2**63) if gt is None else gt  # no gt: from the first version, 0 included
            cursor.execute(self._select_after_sql, (originator_id, after), prepare=True)
            return [
                StoredEvent(originator_id=stream, originator_version=version, topic=topic, state=bytes(state))
                for stream, version, topic, state in cursor.fetchall()
            ]


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        self._newer_sql = (
            f"SELECT 1 FROM {self.events_table_name} WHERE originator_id = ? "
            "AND originator_version > ? LIMIT 1"
        )

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        expect: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if any(value is not None for value in kwargs.values()):
            _refuse_expect_with(expect, kwargs)
            return super()._insert_events(c, stored_events, **kwargs)
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored_events],
        )
        # After the insert: the transaction holds the write lock, so nothing commits between
        # this check and the commit.
        for stream, version in (expect or {}).items():
            c.execute(self._newer_sql, (stream, version))
            if c.fetchone() is not None:
                raise StaleRead(f"stream {stream!r} has events after version {version}")
        # The write transaction holds the database's only write lock, so the rows just
        # inserted took the rowids after the largest one, in order.
        c.execute("SELECT last_insert_rowid() AS last")
        last = int(c.fetchone()["last"])
        return list(range(last - len(stored_events) + 1, last + 1))


class OrjsonTranscoder(JSONTranscoder):
    """The library's JSON transcoder on orjson. Datetimes and dataclasses still go through
    the registered transcodings; what orjson cannot write or read the same (integers past
    64 bits, NaN and infinities, the ``NaN`` token of an old row) takes the library's own
    encoder and decoder."""

    def encode(self, obj: Any) -> bytes:
        data = self.encode_finite(obj)
        if b"null" in data and _has_non_finite(obj):  # orjson writes NaN and inf as null
            return super().encode(obj)
        return data

    def encode_finite(self, obj: Any) -> bytes:
        """``encode`` for a value its caller knows holds no NaN or infinity."""
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=_ENCODE_OPTIONS)
        except orjson.JSONEncodeError:
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        return self._revive(value)

    def _revive(self, value: Any) -> Any:
        """Apply the transcodings' decoders bottom up, as ``object_hook`` does."""
        if type(value) is dict:
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._revive(item)
            return self._decode_obj(value)
        if type(value) is list:
            for index, item in enumerate(value):
                if type(item) is dict or type(item) is list:
                    value[index] = self._revive(item)
        return value


class LedgerMapper(Mapper[Any]):
    """The library's mapper; the hash chain's events skip the transcoder's walk for NaN and
    infinities. Every field of such an event but the envelope was hashed as RFC 8785 JSON
    when the command recorded it, and RFC 8785 has no NaN or infinity, so a command with
    one fails before its event exists (``tests/unit/ledger/test_transcoder.py``)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        transcoder = self.transcoder
        if (
            not isinstance(domain_event, StreamEvent)
            or self.compressor
            or self.cipher
            or not isinstance(transcoder, OrjsonTranscoder)
            or getattr(type(domain_event), "class_version", 1) > 1
        ):
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        return StoredEvent(
            originator_id=state.pop("originator_id"),
            originator_version=state.pop("originator_version"),
            topic=get_topic(type(domain_event)),
            state=transcoder.encode_finite(state),
        )


class _CachingSQLiteConnectionPool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        """The library's connection (WAL, autocommit, ``sqlite3.Row``) with a statement
        cache of :data:`SQLITE_CACHED_STATEMENTS`."""
        try:
            conn = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=SQLITE_CACHED_STATEMENTS,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as exc:
            raise InterfaceError(exc) from exc
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        conn.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=conn, max_age=self.max_age)


class LedgerSQLiteFactory(SQLiteFactory):
    """The library's SQLite factory whose datastore's connections cache statements."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = _CachingSQLiteConnectionPool(
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
            pool_size=old.pool_size,
            max_overflow=old.max_overflow,
            pool_timeout=old.pool_timeout,
            max_age=old.max_age,
            pre_ping=old.pre_ping,
        )
        old.close()
