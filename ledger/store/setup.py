"""Setting up the event store: configuring the ``eventsourcing`` recorders from our settings,
creating what they expect, and the immutability guard. (Reading the events: :mod:`ledger.store.reader`.)
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
)
from psycopg import sql

from ledger.settings import DatabaseConfig, Settings

APPLICATION_NAME = "runledger"


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """Translate our settings into the ``eventsourcing`` library's own configuration."""
    db = settings.database
    env = {
        "ORIGINATOR_ID_TYPE": "text",
        "CREATE_TABLE": "y",
        "TRANSCODER_TOPIC": "ledger.store.recorders:OrjsonTranscoder",
        "MAPPER_TOPIC": "ledger.store.recorders:LedgerMapper",
    }
    if settings.aggregate_cache_size > 0:
        # Aggregates kept in memory and brought up to date from the store on each read
        # (fast-forward: one query for newer events, so other writers' events are seen).
        env |= {
            "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
        }
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        env |= {
            "PERSISTENCE_MODULE": "ledger.store.recorders:LedgerSQLiteFactory",
            "APPLICATION_RECORDER_TOPIC": "ledger.store.recorders:SQLiteLedgerRecorder",
            "SQLITE_DBNAME": db.sqlite_path,
            "SQLITE_LOCK_TIMEOUT": str(settings.lock_timeout_seconds * 6),
        }
    else:
        env |= {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "ledger.store.recorders:PostgresLedgerRecorder",
            "POSTGRES_DBNAME": db.dbname,
            "POSTGRES_HOST": db.host,
            "POSTGRES_PORT": str(db.port),
            "POSTGRES_USER": db.user,
            "POSTGRES_PASSWORD": db.password,
            "POSTGRES_SCHEMA": db.schema,
            "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout_seconds),
            "POSTGRES_POOL_SIZE": str(settings.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.pool_size),
            # The library uses it as the pool's wait for a connection, too.
            "POSTGRES_CONNECT_TIMEOUT": str(settings.pool_timeout_seconds),
            # The pool checks a connection before lending it (psycopg_pool's check_connection),
            # so one the server ended is replaced instead of failing the request that got it.
            "POSTGRES_PRE_PING": "y",
            # Never POSTGRES_ENABLE_DB_FUNCTIONS: it breaks tracking.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        }
    return env


def events_table(recorder: ApplicationRecorder) -> str:
    """The library names the table: ``stored_events`` on SQLite, ``runledger_events`` on PG."""
    return str(recorder.events_table_name)  # type: ignore[attr-defined]


def postgres_conninfo(db: DatabaseConfig) -> str:
    return psycopg.conninfo.make_conninfo(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password or None,
        dbname=db.dbname,
    )


def prepare_database(db: DatabaseConfig) -> None:
    """Create what the library expects to exist: the SQLite folder, the PostgreSQL schema."""
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        if db.sqlite_path != ":memory:" and "mode=memory" not in db.sqlite_path:
            Path(db.sqlite_path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        return
    if db.schema:
        # UniqueViolation: another process created it just now.
        with (
            psycopg.connect(postgres_conninfo(db), autocommit=True) as conn,
            suppress(psycopg.errors.UniqueViolation),
        ):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(db.schema)))


@contextmanager
def setup_lock(db: DatabaseConfig) -> Iterator[None]:
    """One process at a time sets up the store's tables, functions and triggers: servers and
    workers starting together would otherwise race (PostgreSQL: "tuple concurrently updated"
    on the catalog; SQLite: "database is locked" while one switches the file to WAL) and one
    of them would fail to start. PostgreSQL: a session advisory lock on a connection of its
    own; SQLite: an exclusive ``flock`` on a file next to the database."""
    if db.kind != "postgres":
        path = db.sqlite_path
        if path is None or path == ":memory:" or "mode=memory" in path:
            yield
            return
        lock_path = Path(path).expanduser().resolve().with_name(Path(path).name + ".setup-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with psycopg.connect(postgres_conninfo(db), autocommit=True) as conn:
        key = f"runledger:setup:{db.schema or 'public'}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def install_immutability_guard(recorder: ApplicationRecorder, db: DatabaseConfig) -> None:
    """Defence in depth: the events table refuses UPDATE, DELETE (and TRUNCATE)."""
    table = events_table(recorder)
    if db.kind == "sqlite":
        with recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            for op in ("UPDATE", "DELETE"):
                cursor.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_refuse_{op.lower()} "
                    f"BEFORE {op} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'runledger events are immutable: {op} refused'); END"
                )
        return
    schema = sql.Identifier(db.schema or "public")
    with recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
        # Only where it is missing: replacing a trigger locks out writers for a moment.
        cursor.execute(
            "SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = to_regclass(%s) "
            "AND tgname IN ('runledger_events_immutable', 'runledger_events_no_truncate')",
            (f'"{db.schema or "public"}"."{table}"',),
        )
        row = cursor.fetchone()
        if row is not None and int(row["n"]) == 2:
            return
        cursor.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {schema}.runledger_refuse_change() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION "
                "'runledger events are immutable: % refused', TG_OP; END $$"
            ).format(schema=schema)
        )
        cursor.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER runledger_events_immutable BEFORE UPDATE OR DELETE "
                "ON {schema}.{table} FOR EACH ROW EXECUTE FUNCTION {schema}.runledger_refuse_change()"
            ).format(schema=schema, table=sql.Identifier(table))
        )
        cursor.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER runledger_events_no_truncate BEFORE TRUNCATE "
                "ON {schema}.{table} FOR EACH STATEMENT "
                "EXECUTE FUNCTION {schema}.runledger_refuse_change()"
            ).format(schema=schema, table=sql.Identifier(table))
        )
