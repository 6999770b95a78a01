"""Fixtures for driving the executor in-process against a real ledger (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from executor import Executor
from executor.candidates import EventScan
from ledger.domain.run import Run
from ledger.domain.status import TERMINAL
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from ledger.store.filestore import FileStore

StartExecutor = Callable[..., Executor]


@pytest.fixture
def files(settings: Settings) -> FileStore:
    return FileStore(settings.file_store_dir)


@pytest.fixture
def start_executor(ledger: Ledger, files: FileStore, settings: Settings) -> Iterator[StartExecutor]:
    started: list[Executor] = []
    scan = EventScan(ledger)

    def start(concurrency: int = 4, **kwargs: Any) -> Executor:
        kwargs.setdefault("candidates", scan.pending_run_ids)
        kwargs.setdefault("lapsed", scan.lapsed_run_ids)
        executor = Executor(ledger, files, settings, concurrency=concurrency, **kwargs)
        executor.start()
        started.append(executor)
        return executor

    yield start
    for executor in started:
        executor.stop(drain_seconds=0)


def register_and_trigger(
    ledger: Ledger, definition: dict[str, Any], parameters: dict[str, Any] | None = None
) -> str:
    ledger.register_workflow(definition, principal="tester")
    return ledger.trigger(workflow=definition["name"], parameters=parameters or {}, principal="tester").run_id


def wait_until_done(ledger: Ledger, run_id: str, timeout: float = 30.0) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ledger.get_run(run_id)
        if run.status in TERMINAL:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s: {ledger.get_run(run_id).status}")


def events_of(ledger: Ledger, run_id: str, type_: str) -> list[EventRecord]:
    return [e for e in ledger.stream_events(run_id) if e.type == type_]


def finished(ledger: Ledger, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each task's TaskFinished data, attempts oldest first."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for event in events_of(ledger, run_id, "Run.TaskFinished"):
        by_task.setdefault(event.data["task"], []).append(event.data)
    return by_task


@pytest.fixture
def settings(database_url: str, tmp_path: Any) -> Settings:
    """These tests read what a run left in its working directory after it ended: kept."""
    return Settings(database_url=database_url, data_dir=tmp_path / "state", keep_run_dirs=True)
