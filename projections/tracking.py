"""Each generation's position, kept by the ``eventsourcing`` library's tracking recorders.

The library's single-row tracking table holds one row per *application name*; here that name
is a generation's table prefix (``rl_summaries_v3_g2``, or ``...#part1`` for one part of a
split rebuild), and its notification id is the generation's position plus one (positions count
from 0, notification ids from 1; a generation that has read nothing holds 0). The rows are
written by the recorder's own statement, on the view's connection and inside the batch's
transaction, so a batch's rows and its position commit together or not at all. Before that
statement, :meth:`ViewTracking.advance` checks, on the locked row, that the position is still
the one the batch started from: of two writers of one batch, only one commits.

The recorder is the library's (``PostgresTrackingRecorder``, ``SQLiteTrackingRecorder``)
with its own table and statements; its datastore is never opened (the read side brings its
own connections).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from projections.db import Connection, table_exists

#: The tracking table: on PostgreSQL ``<name>_tracking`` in the ledger's schema; on SQLite the
#: library always names it ``tracking``.
POSTGRES_TABLE = "runledger_views_tracking"
SQLITE_TABLE = "tracking"


class StaleTracking(RuntimeError):
    """Another writer moved this generation's position first; the batch was rolled back."""


class ViewTracking:
    """Reads and moves generations' positions in the library's tracking table."""

    def __init__(self, conn: Connection) -> None:
        self.recorder: PostgresTrackingRecorder | SQLiteTrackingRecorder
        if conn.is_postgres:
            info = conn.raw.info
            schema = conn.one("SELECT current_schema() AS s")
            self.table = POSTGRES_TABLE
            self.recorder = PostgresTrackingRecorder(
                PostgresDatastore(
                    dbname=info.dbname,
                    host=info.host,
                    port=str(info.port),
                    user=info.user,
                    password=info.password or "",
                    schema=schema["s"] if schema else "public",
                ),
                tracking_table_name=POSTGRES_TABLE,
            )
        else:
            self.table = SQLITE_TABLE
            self.recorder = SQLiteTrackingRecorder(SQLiteDatastore(db_name=":memory:"))

    def create_table(self, conn: Connection) -> None:
        """The library's table and its migration marker (the library's own first creation),
        unless it exists; inside the caller's transaction."""
        if table_exists(conn, self.table):
            return
        with _cursor(conn) as cursor:
            self.recorder._create_table(cursor)  # the recorder's own DDL and marker

    def start(self, conn: Connection, name: str) -> None:
        """A new position at -1 (nothing read), inside the caller's transaction."""
        self._record(conn, name, -1)

    def position(self, conn: Connection, name: str) -> int | None:
        """``name``'s position, or None if it has none."""
        row = conn.one(f"SELECT notification_id FROM {self.table} WHERE application_name = ?", (name,))
        return None if row is None else int(row["notification_id"]) - 1

    def advance(self, conn: Connection, name: str, *, expected: int, to: int) -> None:
        """Move ``name`` from ``expected`` to ``to`` inside the caller's transaction, or raise
        StaleTracking (the caller's transaction then rolls back)."""
        lock = " FOR UPDATE" if conn.is_postgres else ""  # SQLite: BEGIN IMMEDIATE already
        row = conn.one(f"SELECT notification_id FROM {self.table} WHERE application_name = ?{lock}", (name,))
        if row is None or int(row["notification_id"]) - 1 != expected:
            raise StaleTracking(f"{name} is no longer at position {expected}")
        if to == expected:
            return
        try:
            self._record(conn, name, to)
        except IntegrityError as exc:  # the recorder's own check: it never moves back
            raise StaleTracking(f"{name} cannot move from {expected} to {to}") from exc

    def forget(self, conn: Connection, name: str, *, parts: bool = False) -> None:
        """Delete ``name``'s position (and with ``parts`` those of its parts)."""
        if not parts:
            conn.execute(f"DELETE FROM {self.table} WHERE application_name = ?", (name,))
            return
        escaped = name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
        conn.execute(
            f"DELETE FROM {self.table} WHERE application_name = ? OR application_name LIKE ? ESCAPE '\\'",
            (name, escaped + "#%"),
        )

    def _record(self, conn: Connection, name: str, position: int) -> None:
        with _cursor(conn) as cursor:
            self.recorder._insert_tracking(cursor, Tracking(name, position + 1))


def tracking(conn: Connection) -> ViewTracking:
    """The connection's :class:`ViewTracking` (made once per connection)."""
    found = conn.extras.get("tracking")
    if found is None:
        found = conn.extras["tracking"] = ViewTracking(conn)
    assert isinstance(found, ViewTracking)
    return found


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A cursor on the connection (in its transaction), for the recorder's statements."""
    cursor = conn.raw.cursor()
    try:
        yield cursor
    finally:
        cursor.close()
