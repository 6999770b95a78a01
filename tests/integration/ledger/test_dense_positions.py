"""Positions count from 0 across the ledger with no gap (SPEC section 1), on both backends, even
when concurrent writers conflict: a refused append leaves no hole (on PostgreSQL the append
function numbers rows from the locked table's maximum, not from a sequence that a failed
insert would have consumed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.store.setup import events_table

WORKERS = 6
ROUNDS = 15


def stored_ids(ledger: Ledger) -> list[int]:
    table = events_table(ledger.recorder)
    with ledger.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        if ledger.settings.database.kind == "sqlite":
            cursor.execute(f"SELECT rowid AS n FROM {table} ORDER BY rowid")
        else:
            schema = ledger.settings.database.schema
            cursor.execute(f'SELECT notification_id AS n FROM "{schema}"."{table}" ORDER BY notification_id')
        return [int(row["n"]) for row in cursor.fetchall()]


def race(work: Callable[[int], Any]) -> None:
    start = threading.Barrier(WORKERS)

    def body(index: int) -> None:
        start.wait()
        work(index)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_conflicting_appends_leave_no_gap_in_the_positions(ledger: Ledger) -> None:
    refused = []

    def append(index: int) -> None:
        for version in range(1, ROUNDS + 1):
            event = StoredEvent(
                originator_id="contended", originator_version=version, topic="tests:Event", state=b"{}"
            )
            try:
                ledger.recorder.insert_events([event])
            except IntegrityError:
                refused.append((index, version))

    race(append)

    assert refused, "the writers did conflict"
    assert stored_ids(ledger) == list(range(1, ROUNDS + 1))  # positions 0..ROUNDS-1


def test_concurrent_claims_of_the_same_runs_leave_positions_0_to_n_minus_1(ledger: Ledger) -> None:
    ledger.register_workflow({"name": "dense", "tasks": [{"name": "t", "command": ["true"]}]}, principal="t")
    run_ids = [ledger.trigger(workflow="dense", parameters={}, principal="t").run_id for _ in range(ROUNDS)]
    winners: list[tuple[str, str]] = []

    def claim_all(index: int) -> None:
        for run_id in run_ids:
            run = ledger.claim(run_id, worker_id=f"w{index}")
            if run is not None:
                winners.append((run_id, f"w{index}"))

    race(claim_all)

    assert sorted(r for r, _ in winners) == sorted(run_ids)  # each run claimed exactly once
    ids = stored_ids(ledger)
    assert ids == list(range(1, len(ids) + 1))
    assert [e.position for e in ledger.reader.after(-1, limit=10_000)] == list(range(len(ids)))
    report = verify_ledger(ledger.settings)
    assert report.ok, report
