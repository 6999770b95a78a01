"""Fixtures for the read side: a runner and read models over the test's own database, and a
helper that drives real runs through the Ledger service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.runner import ProjectionRunner
from tests.builders import reports

#: The read-side tests' workflow: ``extract`` writes ``data.txt``, which ``load`` reads (so
#: runs have files and lineage).
FILE_PASSING_DEFINITION: dict[str, Any] = {
    "name": "etl",
    "params": {"query": {"type": "string", "required": True}, "limit": {"type": "integer", "default": 5}},
    "tasks": [
        {"name": "extract", "command": ["echo", "{{ params.query }}"], "outputs": ["data.txt"]},
        {"name": "load", "depends_on": ["extract"], "command": ["true"], "inputs": ["data.txt"]},
    ],
}


def sha(char: str) -> str:
    return char * 64


class Driver:
    """Writes real events through the Ledger service, as a worker and an operator would."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        ledger.register_workflow(FILE_PASSING_DEFINITION, principal="alice")

    def trigger(self, query: str = "q", *, principal: str = "carol", **extra: Any) -> str:
        params = {"query": query} | extra
        return self.ledger.trigger(workflow="etl", parameters=params, principal=principal).run_id

    def succeed(
        self,
        run_id: str,
        *,
        consumed: str | None = None,
        produced: str | None = None,
        extract_attempts: int = 1,
        worker: str = "w1",
    ) -> None:
        self.ledger.claim(run_id, worker_id=worker)
        events: list[dict[str, Any]] = []
        for attempt in range(1, extract_attempts + 1):
            ok = attempt == extract_attempts
            events += [
                {"type": "task_started", "task": "extract", "attempt": attempt},
                {
                    "type": "task_finished",
                    "task": "extract",
                    "attempt": attempt,
                    "exit_code": 0 if ok else 1,
                    "inputs": [{"path": "seed", "sha256": consumed, "size": 1}] if consumed else [],
                    "outputs": [{"path": "data.txt", "sha256": produced, "size": 3}]
                    if produced and ok
                    else [],
                    "output_vars": {"rows": 3} if ok else {},
                },
            ]
        events += [
            {"type": "task_started", "task": "load"},
            {"type": "task_finished", "task": "load", "exit_code": 0, "output_vars": {"loaded": True}},
            {"type": "run_succeeded"},
        ]
        self.ledger.report(run_id, worker_id=worker, reports=reports(*events))

    def fail(self, run_id: str, *, worker: str = "w1") -> None:
        self.ledger.claim(run_id, worker_id=worker)
        self.ledger.report(
            run_id,
            worker_id=worker,
            reports=reports(
                {"type": "task_started", "task": "extract"},
                {"type": "task_finished", "task": "extract", "exit_code": 2, "error": "boom"},
                {"type": "run_failed", "error": "extract failed"},
            ),
        )


@pytest.fixture
def driver(ledger: Ledger) -> Driver:
    return Driver(ledger)


@pytest.fixture
def runner(settings: Settings) -> Iterator[ProjectionRunner]:
    projection_runner = ProjectionRunner(settings, batch_size=7, rebuild_batch_size=6)
    try:
        yield projection_runner
    finally:
        projection_runner.stop()


@pytest.fixture
def views(settings: Settings) -> Iterator[ReadModels]:
    read_models = ReadModels(settings)
    try:
        yield read_models
    finally:
        read_models.close()
