"""Which generation of each view is live, and how far each generation has read.

``rl_projection_state`` holds one pointer row per view (the live generation, and the one being
rebuilt, if any); a rebuild swaps the pointer in one transaction. Each generation's position is
kept by the ``eventsourcing`` library's tracking recorder (:mod:`projections.tracking`); a
batch advances it in the same transaction as the view's rows, guarded by the position it
started from, so a batch is applied exactly once even if two writers race (the loser's
transaction rolls back).

Past 300 lines on purpose: the live generation, the tracking positions and an abandoned
rebuild's clean-up read and write the same state rows under one lock; kept together so that
rule is read in one place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from projections.db import Connection, max_position, table_exists
from projections.tracking import StaleTracking as StaleTracking
from projections.tracking import tracking
from projections.view import Tables, View

STATE_TABLE = "rl_projection_state"
#: Where positions were kept before they moved to the library's tracking table; migrated and
#: dropped when the state tables are first ensured.
LEGACY_TRACKING_TABLE = "rl_projection_tracking"


@dataclass(frozen=True)
class Pointer:
    name: str
    schema_version: int
    generation: int
    building_version: int | None
    building_generation: int | None

    @property
    def live(self) -> Tables:
        return Tables.of(self.name, self.schema_version, self.generation)

    @property
    def building(self) -> Tables | None:
        if self.building_generation is None or self.building_version is None:
            return None
        return Tables.of(self.name, self.building_version, self.building_generation)


def advisory_key(conn: Connection, purpose: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (scoped to the schema)."""
    schema = conn.one("SELECT current_schema() AS s") if conn.is_postgres else None
    text = f"runledger:{schema['s'] if schema else ''}:{purpose}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def create_state_tables(conn: Connection) -> None:
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (name TEXT PRIMARY KEY, "
        "schema_version BIGINT NOT NULL, generation BIGINT NOT NULL, "
        "building_version BIGINT, building_generation BIGINT)"
    )
    tracking(conn).create_table(conn)
    _migrate_legacy_tracking(conn)


def _migrate_legacy_tracking(conn: Connection) -> None:
    """Positions of the table this module kept before the library's, moved over once."""
    if not table_exists(conn, LEGACY_TRACKING_TABLE):
        return
    positions = tracking(conn)
    for row in conn.all(f"SELECT prefix, position FROM {LEGACY_TRACKING_TABLE}"):
        if positions.position(conn, row["prefix"]) is None:
            positions.start(conn, row["prefix"])
            if int(row["position"]) > -1:
                positions.advance(conn, row["prefix"], expected=-1, to=int(row["position"]))
    conn.execute(f"DROP TABLE {LEGACY_TRACKING_TABLE}")


def ensure_view(conn: Connection, view: View) -> Pointer:
    """Create the view's first generation if it has none; return its pointer."""
    _ensure_state_tables(conn)
    pointer = read_pointer(conn, view.name)
    if pointer is not None:
        return pointer
    with conn.transaction():
        if conn.is_postgres:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(conn, "ensure"),))
        create_state_tables(conn)
        pointer = read_pointer(conn, view.name)
        if pointer is not None:
            return pointer
        tables = Tables.of(view.name, view.schema_version, 1)
        view.create(conn, tables)
        tracking(conn).start(conn, tables.prefix)
        conn.execute(
            f"INSERT INTO {STATE_TABLE} (name, schema_version, generation) VALUES (?, ?, 1)",
            (view.name, view.schema_version),
        )
    pointer = read_pointer(conn, view.name)
    assert pointer is not None
    return pointer


def _ensure_state_tables(conn: Connection) -> None:
    """The state table and the library's tracking table exist, and no position is left in
    the former table (a database from before the library's tracking): checked once per
    connection, set up under the lock that creating views takes."""
    if conn.extras.get("state_tables"):
        return
    present = set(tables_named(conn))
    if STATE_TABLE not in present or tracking(conn).table not in present or LEGACY_TRACKING_TABLE in present:
        with conn.transaction():
            if conn.is_postgres:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (advisory_key(conn, "ensure"),))
            create_state_tables(conn)
    conn.extras["state_tables"] = True


def state_tables_exist(conn: Connection) -> bool:
    return table_exists(conn, STATE_TABLE)


def read_pointer(conn: Connection, name: str) -> Pointer | None:
    if not state_tables_exist(conn):
        return None
    row = conn.one(
        f"SELECT name, schema_version, generation, building_version, "
        f"building_generation FROM {STATE_TABLE} WHERE name = ?",
        (name,),
    )
    if row is None:
        return None
    return Pointer(
        row["name"],
        int(row["schema_version"]),
        int(row["generation"]),
        _int_or_none(row["building_version"]),
        _int_or_none(row["building_generation"]),
    )


def live_positions(conn: Connection) -> dict[str, tuple[Pointer, int | None]]:
    """Every view's pointer with its live generation's position, in one query."""
    positions = tracking(conn)
    rows = conn.all(
        f"SELECT s.name, s.schema_version, s.generation, s.building_version, "
        f"s.building_generation, t.notification_id - 1 AS position FROM {STATE_TABLE} s "
        f"LEFT JOIN {positions.table} t ON t.application_name = "
        "'rl_' || s.name || '_v' || s.schema_version || '_g' || s.generation"
    )
    return {
        row["name"]: (
            Pointer(
                row["name"],
                int(row["schema_version"]),
                int(row["generation"]),
                _int_or_none(row["building_version"]),
                _int_or_none(row["building_generation"]),
            ),
            _int_or_none(row["position"]),
        )
        for row in rows
    }


def position_of(conn: Connection, tables: Tables) -> int | None:
    return tracking(conn).position(conn, tables.prefix)


def view_status(conn: Connection, views: Sequence[View]) -> list[dict[str, Any]]:
    """Each view's name, schema version, position, lag behind the newest event, and state
    (``live`` or ``rebuilding``): what ``GET /api/projections`` shows."""
    newest = max_position(conn)
    result = []
    for view in views:
        pointer = read_pointer(conn, view.name)
        if pointer is None:  # not created yet: nothing read
            version, position, state = view.schema_version, -1, "live"
        else:
            read = position_of(conn, pointer.live)
            version, position = pointer.schema_version, -1 if read is None else read
            state = "rebuilding" if pointer.building is not None else "live"
        result.append(
            {
                "name": view.name,
                "schema_version": version,
                "position": position,
                "lag": max(0, newest - position),
                "state": state,
            }
        )
    return result


def advance(conn: Connection, tables: Tables, *, expected: int, to: int) -> None:
    """Move ``tables``' position from ``expected`` to ``to``, inside the caller's transaction."""
    tracking(conn).advance(conn, tables.prefix, expected=expected, to=to)


class _DeferIndexes:
    """Runs a view's DDL but keeps its secondary indexes (and, with ``unique``, its unique
    indexes) for later: a rebuild fills bare tables and indexes them once, before the swap."""

    def __init__(self, conn: Connection, *, unique: bool = False) -> None:
        self.conn = conn
        self.is_postgres = conn.is_postgres
        self.key_text = conn.key_text
        self.kinds = ("CREATE INDEX", "CREATE UNIQUE INDEX") if unique else ("CREATE INDEX",)
        self.indexes: list[str] = []

    def execute(self, statement: str, params: tuple[object, ...] = ()) -> object:
        if statement.lstrip().upper().startswith(self.kinds):
            self.indexes.append(statement)
            return None
        return self.conn.execute(statement, params)


def start_building(conn: Connection, view: View, *, defer_unique: bool = False) -> tuple[Tables, list[str]]:
    """Fresh, empty tables for a new generation, recorded as the one being built; returns
    them with the index statements to run before they go live (unique ones among them with
    ``defer_unique``)."""
    with conn.transaction():
        pointer = read_pointer(conn, view.name)
        assert pointer is not None
        stale = pointer.building
        if stale is not None:
            view.drop(conn, stale)
            _delete_tracking(conn, stale)
        generation = max(pointer.generation, pointer.building_generation or 0) + 1
        tables = Tables.of(view.name, view.schema_version, generation)
        view.drop(conn, tables)
        deferred = _DeferIndexes(conn, unique=defer_unique)
        view.create(cast(Connection, deferred), tables)
        _delete_tracking(conn, tables)
        tracking(conn).start(conn, tables.prefix)
        conn.execute(
            f"UPDATE {STATE_TABLE} SET building_version = ?, building_generation = ? WHERE name = ?",
            (view.schema_version, generation, view.name),
        )
    return tables, deferred.indexes


def abandon_building(conn: Connection, view: View) -> Tables | None:
    """Forget a generation a rebuild left half built (its process died): drop its tables and
    positions and mark the view as not rebuilding. The caller makes sure no rebuild of the view
    runs (the rebuild's advisory lock). Returns the tables dropped, if any."""
    with conn.transaction():
        pointer = read_pointer(conn, view.name)
        stale = pointer.building if pointer is not None else None
        if stale is None:
            return None
        view.drop(conn, stale)
        _delete_tracking(conn, stale)
        conn.execute(
            f"UPDATE {STATE_TABLE} SET building_version = NULL, building_generation = NULL WHERE name = ?",
            (view.name,),
        )
    return stale


def _delete_tracking(conn: Connection, tables: Tables) -> None:
    """Forget a generation's position and those of its parts (see :func:`part`)."""
    tracking(conn).forget(conn, tables.prefix, parts=True)


def part(tables: Tables, index: int) -> Tables:
    """Where part ``index`` of a rebuild split between processes keeps its own position in
    ``tables`` (each part folds the runs of its streams; see ``projections.db.read_events``)."""
    return Tables(f"{tables.prefix}#part{index}")


def start_parts(conn: Connection, tables: Tables, parts: int) -> None:
    with conn.transaction():
        for index in range(parts):
            tracking(conn).start(conn, part(tables, index).prefix)


def merge_parts(conn: Connection, tables: Tables, parts: int, *, upto: int) -> None:
    """Inside the caller's transaction: every part has read up to ``upto``, so the
    generation has; move its own position from -1 there and forget the parts'."""
    for index in range(parts):
        at = position_of(conn, part(tables, index))
        if at != upto:
            raise StaleTracking(f"{part(tables, index).prefix} is at {at}, not {upto}")
        tracking(conn).forget(conn, part(tables, index).prefix)
    advance(conn, tables, expected=-1, to=upto)


def swap(conn: Connection, view: View, built: Tables, *, version: int, generation: int) -> None:
    """Make ``built`` the live generation (inside the caller's transaction)."""
    conn.execute(
        f"UPDATE {STATE_TABLE} SET schema_version = ?, generation = ?, "
        "building_version = NULL, building_generation = NULL WHERE name = ?",
        (version, generation, view.name),
    )


def forget(conn: Connection, view: View, tables: Tables) -> None:
    """Drop a generation that is no longer live, and any table of it that an earlier schema
    version had and this one no longer names."""
    with conn.transaction():
        view.drop(conn, tables)
        for name in tables_named(conn, f"{tables.prefix}_"):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
        tracking(conn).forget(conn, tables.prefix)


def tables_named(conn: Connection, prefix: str = "") -> list[str]:
    """The tables of the database (on PostgreSQL: of its schema) whose names start so."""
    if conn.is_postgres:
        rows = conn.all("SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()")
    else:
        rows = conn.all("SELECT name FROM sqlite_master WHERE type = 'table'")
    return sorted(r["name"] for r in rows if r["name"].startswith(prefix))


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
