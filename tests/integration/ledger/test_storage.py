"""The store: group commit shares transactions; the events table refuses change."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.setup import events_table, postgres_conninfo

#: A workflow whose runs differ only in ``i``: many small writes at once.
GROUP_COMMIT_DEFINITION: dict[str, Any] = {
    "name": "gc",
    "params": {"i": {"type": "integer", "required": True}},
    "tasks": [{"name": "a", "command": ["true"]}],
}


@contextmanager
def table_locked(ledger: Ledger) -> Iterator[None]:
    """Hold the events table's write lock from another connection, as a slow writer would."""
    db = ledger.settings.database
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    with psycopg.connect(postgres_conninfo(db)) as pg:
        pg.execute(f'LOCK TABLE "{db.schema}"."{events_table(ledger.recorder)}" IN EXCLUSIVE MODE')
        try:
            yield
        finally:
            pg.rollback()


def run_in_threads(calls: list[Callable[[], Any]]) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = [None] * len(calls)

    def target(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    return threads, results


def test_writes_that_arrive_during_a_commit_share_the_next_transaction(ledger: Ledger) -> None:
    ledger.register_workflow(GROUP_COMMIT_DEFINITION, principal="t")
    groups_before = ledger.group_commit.groups

    def trigger(i: int) -> Callable[[], Any]:
        return lambda: ledger.trigger(workflow="gc", parameters={"i": i}, principal="t")

    with table_locked(ledger):
        threads, results = run_in_threads([trigger(i) for i in range(6)])
        time.sleep(0.4)
    for thread in threads:
        thread.join(timeout=30)
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.run_id for r in results}) == 6
    # The first writer led alone while blocked; the five queued behind it went in together.
    assert ledger.group_commit.groups - groups_before == 2


def test_a_conflict_inside_a_shared_transaction_fails_only_the_loser(ledger: Ledger) -> None:
    ledger.register_workflow(GROUP_COMMIT_DEFINITION, principal="t")
    contested = ledger.trigger(workflow="gc", parameters={"i": 0}, principal="t").run_id
    with table_locked(ledger):
        threads, results = run_in_threads(
            [
                lambda: ledger.trigger(workflow="gc", parameters={"i": 1}, principal="t"),
                lambda: ledger.claim(contested, worker_id="a"),
                lambda: ledger.claim(contested, worker_id="b"),
                lambda: ledger.trigger(workflow="gc", parameters={"i": 2}, principal="t"),
            ]
        )
        time.sleep(0.4)
    for thread in threads:
        thread.join(timeout=30)
    first, claim_a, claim_b, last = results
    assert [r is None for r in (claim_a, claim_b)].count(True) == 1
    assert not isinstance(first, Exception) and not isinstance(last, Exception)
    assert ledger.get_run(last.run_id).parameters == {"i": 2}
    started = [e for e in ledger.stream_events(contested) if e.type == "Run.Started"]
    assert len(started) == 1


def test_the_events_table_refuses_update_and_delete(ledger: Ledger) -> None:
    refuses_change(ledger)


def refuses_change(ledger: Ledger) -> None:
    ledger.register_workflow(GROUP_COMMIT_DEFINITION, principal="t")
    db = ledger.settings.database
    table = events_table(ledger.recorder)
    statements = ["UPDATE {t} SET topic = 'forged'", "DELETE FROM {t}"]
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path)
        for statement in statements:
            with pytest.raises(sqlite3.DatabaseError, match="immutable"):
                conn.execute(statement.format(t=table))
        conn.close()
    else:
        for statement in [*statements, "TRUNCATE {t}"]:
            with (
                psycopg.connect(postgres_conninfo(db)) as pg,
                pytest.raises(psycopg.Error, match="immutable"),
            ):
                pg.execute(statement.format(t=f'"{db.schema}"."{table}"'))
    assert [e.type for e in ledger.reader.iterate()] == ["Workflow.Registered", "DefinitionIndex.Indexed"]


def test_services_starting_together_on_a_new_database_all_start(settings: Settings) -> None:
    """Servers and workers that start at once all set the schema up (on PostgreSQL they used
    to race on the catalog: "tuple concurrently updated"), and the guard is in place once."""
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Ledger(settings).close()
        except BaseException as exc:  # collected: the assertion below names it
            errors.append(exc)

    for _ in range(4):
        threads = [threading.Thread(target=start) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    ledger = Ledger(settings)
    try:
        refuses_change(ledger)
    finally:
        ledger.close()
