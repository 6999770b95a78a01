"""Claiming with optimistic concurrency, lease renewal, and worker_lost for dead workers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import Executor
from executor.candidates import EventScan
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.filestore import FileStore
from tests.integration.executor.conftest import (
    StartExecutor,
    events_of,
    register_and_trigger,
    wait_until_done,
)


@pytest.fixture
def short_lease(database_url: str, tmp_path: Path) -> Iterator[Ledger]:
    app = Ledger(Settings(database_url=database_url, data_dir=tmp_path / "state", lease_seconds=0.9))
    try:
        yield app
    finally:
        app.close()


def test_three_executors_racing_over_twenty_four_runs_execute_each_exactly_once(
    ledger: Ledger, settings: Settings, start_executor: StartExecutor
) -> None:
    marks = settings.state_dir / "marks"
    marks.mkdir(parents=True)
    definition = {
        "name": "once",
        "params": {"n": {"type": "integer"}},
        "tasks": [{"name": "mark", "command": ["sh", "-c", f'echo x >> {marks}/"$PARAM_N"']}],
    }
    ledger.register_workflow(definition, principal="tester")
    run_ids = [ledger.trigger(workflow="once", parameters={"n": n}, principal="t").run_id for n in range(24)]
    executors = [start_executor(concurrency=2) for _ in range(3)]

    for run_id in run_ids:
        assert wait_until_done(ledger, run_id).status == "success"

    started = Counter(e.stream for r in run_ids for e in events_of(ledger, r, "Run.Started"))
    assert all(started[r] == 1 for r in run_ids)
    assert sorted(int(p.name) for p in marks.iterdir()) == list(range(24))
    assert all(p.read_text() == "x\n" for p in marks.iterdir())
    workers = {events_of(ledger, r, "Run.Started")[0].data["worker_id"] for r in run_ids}
    assert workers <= {e.worker_id for e in executors}


def test_a_long_run_keeps_its_lease_renewed_and_is_not_declared_lost(
    short_lease: Ledger, settings: Settings
) -> None:
    ledger = short_lease
    files = FileStore(settings.file_store_dir)
    scan = EventScan(ledger)
    run_id = register_and_trigger(
        ledger, {"name": "long", "tasks": [{"name": "nap", "command": ["sleep", "2"]}]}
    )
    executor = Executor(
        ledger,
        files,
        ledger.settings,
        candidates=scan.pending_run_ids,
        lapsed=scan.lapsed_run_ids,
        concurrency=1,
    )
    watcher = Executor(
        ledger, files, ledger.settings, candidates=lambda n: [], lapsed=scan.lapsed_run_ids, concurrency=1
    )
    executor.start()
    watcher.start()
    try:
        run = wait_until_done(ledger, run_id)
    finally:
        executor.stop(drain_seconds=0)
        watcher.stop(drain_seconds=0)

    assert run.status == "success"
    assert len(events_of(ledger, run_id, "Run.LeaseRenewed")) >= 3


def test_a_run_whose_worker_vanished_is_failed_with_worker_lost_once_its_lease_lapses(
    short_lease: Ledger, settings: Settings
) -> None:
    ledger = short_lease
    scan = EventScan(ledger)
    run_id = register_and_trigger(ledger, {"name": "orphan", "tasks": [{"name": "nap", "command": ["true"]}]})
    assert ledger.claim(run_id, worker_id="ghost") is not None  # a worker that then died
    monitor = Executor(
        ledger,
        FileStore(settings.file_store_dir),
        ledger.settings,
        candidates=lambda n: [],
        lapsed=scan.lapsed_run_ids,
    )
    began = time.monotonic()
    monitor.start()
    try:
        run = wait_until_done(ledger, run_id, timeout=15)
    finally:
        monitor.stop(drain_seconds=0)

    assert run.status == "failed"
    assert run.error == "worker_lost"
    assert time.monotonic() - began < 5
    failed = events_of(ledger, run_id, "Run.Failed")
    assert [e.data["error"] for e in failed] == ["worker_lost"]


def test_stopping_an_executor_fails_its_unfinished_run_instead_of_leaving_it_running(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    run_id = register_and_trigger(
        ledger, {"name": "stopped", "tasks": [{"name": "nap", "command": ["sleep", "30"]}]}
    )
    executor = start_executor()
    deadline = time.monotonic() + 10
    while not events_of(ledger, run_id, "Run.TaskStarted"):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    executor.stop(drain_seconds=0)

    run = ledger.get_run(run_id)
    assert run.status == "failed"
    assert run.error == "worker stopped"
