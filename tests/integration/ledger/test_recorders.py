"""The shorter write path: one statement per append on PostgreSQL, one ``executemany`` on
SQLite, and what stays the library's: positions in commit order, NOTIFY for the runner,
conflicts as ``IntegrityError``; and ``expect``, the check that what a command read is still
the newest, inside the write."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.recorders import PostgresLedgerRecorder, SQLiteLedgerRecorder, StaleRead
from ledger.store.setup import events_table, postgres_conninfo
from tests.integration.ledger.test_storage import table_locked


def stored(stream: str, version: int, state: bytes = b'{"x":1}') -> StoredEvent:
    return StoredEvent(originator_id=stream, originator_version=version, topic="tests:Event", state=state)


def positions_in_table(ledger: Ledger, stream: str) -> list[int]:
    table = events_table(ledger.recorder)
    with ledger.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        if ledger.settings.database.kind == "sqlite":
            cursor.execute(
                f"SELECT rowid AS n FROM {table} WHERE originator_id = ? ORDER BY originator_version",
                (stream,),
            )
        else:
            cursor.execute(
                f'SELECT notification_id AS n FROM "{ledger.settings.database.schema}".'
                f'"{table}" WHERE originator_id = %s ORDER BY originator_version',
                (stream,),
            )
        return [int(row["n"]) for row in cursor.fetchall()]


def test_the_ledger_writes_through_its_own_recorder_on_each_backend(ledger: Ledger) -> None:
    expected = SQLiteLedgerRecorder if ledger.settings.database.kind == "sqlite" else PostgresLedgerRecorder
    assert type(ledger.recorder) is expected


def test_an_append_returns_the_positions_the_rows_were_stored_at(ledger: Ledger) -> None:
    ledger.recorder.insert_events([stored("s-0", 1)])
    ids = ledger.recorder.insert_events([stored("s-1", v) for v in range(1, 8)])
    assert ids is not None and len(ids) == 7
    assert list(ids) == positions_in_table(ledger, "s-1")
    assert list(ids) == list(range(ids[0], ids[0] + 7))


def test_a_repeated_version_raises_integrity_error_and_stores_nothing(ledger: Ledger) -> None:
    ledger.recorder.insert_events([stored("s", 1)])
    with pytest.raises(IntegrityError):
        ledger.recorder.insert_events([stored("s", 2), stored("s", 1)])
    assert len(positions_in_table(ledger, "s")) == 1
    assert ledger.recorder.insert_events([stored("s", 2)])


def test_concurrent_appends_commit_in_position_order(ledger: Ledger) -> None:
    """The table lock still serialises appends: every append's positions are a contiguous
    block, so no reader can pass over a gap filled later."""
    results: dict[int, Any] = {}

    def append(worker: int) -> None:
        results[worker] = [
            ledger.recorder.insert_events([stored(f"w{worker}-{i}", v) for v in range(1, 4)])
            for i in range(15)
        ]

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    blocks = [list(ids) for batches in results.values() for ids in batches]
    assert len(blocks) == 60
    for block in blocks:
        assert block == list(range(block[0], block[0] + 3))
    every = sorted(p for block in blocks for p in block)
    assert len(set(every)) == 180


def test_a_postgres_append_notifies_the_library_s_channel(ledger: Ledger) -> None:
    if ledger.settings.database.kind != "postgres":
        pytest.skip("NOTIFY is PostgreSQL's")
    recorder = ledger.recorder
    assert isinstance(recorder, PostgresLedgerRecorder)
    with psycopg.connect(postgres_conninfo(ledger.settings.database), autocommit=True) as conn:
        conn.execute(f'LISTEN "{recorder.channel_name}"')
        recorder.insert_events([stored("n", 1)])
        received = list(conn.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in received] == [recorder.channel_name]


def test_an_append_expecting_a_stream_unchanged_is_refused_once_it_has_changed(
    ledger: Ledger,
) -> None:
    """``expect`` is checked inside the write's transaction: a stream the command read that
    has a newer event fails the whole write with StaleRead, and nothing is stored."""
    ledger.recorder.insert_events([stored("read", 1), stored("read", 2)])
    assert ledger.recorder.insert_events([stored("w-ok", 1)], expect={"read": 2})
    before = len(positions_in_table(ledger, "read"))
    with pytest.raises(StaleRead):
        ledger.recorder.insert_events([stored("w-stale", 1), stored("w-stale", 2)], expect={"read": 1})
    assert positions_in_table(ledger, "w-stale") == []
    assert len(positions_in_table(ledger, "read")) == before
    assert issubclass(StaleRead, IntegrityError)  # a conflict, like a version collision


def test_a_stale_expectation_inside_a_shared_transaction_fails_only_its_own_write(
    ledger: Ledger,
) -> None:
    ledger.recorder.insert_events([stored("read", 1), stored("read", 2)])
    writes = {"fresh-a": 2, "stale": 1, "fresh-b": 2}
    results: dict[str, Any] = {}

    def write(stream: str) -> None:
        try:
            results[stream] = ledger.group_commit.insert_events(
                [stored(stream, 1)], expect={"read": writes[stream]}
            )
        except Exception as exc:
            results[stream] = exc

    with table_locked(ledger):  # the three queue up and go in as one group
        threads = [threading.Thread(target=write, args=(s,)) for s in writes]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        time.sleep(0.3)
    for thread in threads:
        thread.join(timeout=30)
    assert isinstance(results["stale"], StaleRead)
    assert positions_in_table(ledger, "stale") == []
    for stream in ("fresh-a", "fresh-b"):
        assert list(results[stream]) == positions_in_table(ledger, stream)


def test_sqlite_connections_keep_the_write_path_s_statements_compiled(tmp_path: Path) -> None:
    """The library opens its connections with a cache of one statement (``cached_statements
    =True``), so a write's BEGIN, INSERT and checks were compiled anew each time; the
    ledger's keep them. ``sqlite_stmt`` lists the statements a connection holds prepared."""
    ledger = Ledger(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", data_dir=tmp_path / "state"))
    try:
        recorder = ledger.recorder
        with recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            ids = recorder._insert_events(  # type: ignore[attr-defined]
                cursor, [stored("s", 1)], expect={"other": 0}
            )
            cursor.execute("SELECT sql FROM sqlite_stmt")
            prepared = {row["sql"] for row in cursor.fetchall()}
        assert ids and positions_in_table(ledger, "s") == list(ids)
        assert "BEGIN" in prepared
        assert recorder.insert_events_statement in prepared  # type: ignore[attr-defined]
        assert any(sql.startswith("SELECT 1 FROM") for sql in prepared)
    finally:
        ledger.close()
