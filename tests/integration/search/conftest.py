"""A random set of real runs (through the Ledger service, as workers and operators write them)
on the test's own database, projected, for the ``q`` tests: parameters of every JSON kind,
labels set at trigger and changed later, every end state, a batch, a replay, outputs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.runner import ProjectionRunner
from tests.builders import reports
from tests.conftest import BACKENDS, fresh_database_url, postgres_or_skip

ETL: dict[str, Any] = {
    "name": "etl",
    "params": {
        "query": {"type": "string", "default": "q"},
        "limit": {"type": "number", "default": 5},
        "flag": {"type": "boolean", "default": False},
    },
    "tasks": [
        {"name": "extract", "command": ["true"]},
        {"name": "load", "depends_on": ["extract"], "command": ["true"]},
    ],
}
TRAIN: dict[str, Any] = {
    "name": "train",
    "params": {"max_urls": {"type": "integer", "default": 10}, "query": {"type": "string", "default": "t"}},
    "tasks": [{"name": "fit", "command": ["true"]}],
}
BASE = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
QUERIES = ["alpha", "Beta", "a%b", "gamma_1", "x'y", "", "alphabet", "10"]
LABELS = {"team": ["ml", "data", "Ml"], "env": ["prod", "dev"], "a/b.c-d": ["1", "10", "9", "x y"]}
ERRORS = ["extract failed", "boom%", "Timeout"]


class Clock:
    """The ledger's clock: a little later at every call, by a random step."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = BASE

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=self.rng.randrange(1, 90_000))
        return self.now


@dataclass
class Dataset:
    ledger: Ledger
    views: ReadModels
    runner: ProjectionRunner
    settings: Settings

    def summaries(self) -> list[dict[str, Any]]:
        runs, cursor = self.views.list_runs(limit=1000)
        assert cursor is None
        return runs

    def ids(self, q: str, **filters: Any) -> list[str]:
        """Every run ``q`` selects, paged 7 at a time (so the cursor takes part), in order."""
        found: list[str] = []
        cursor = None
        while True:
            page, cursor = self.views.list_runs(q=q, limit=7, cursor=cursor, **filters)
            found += [r["run_id"] for r in page]
            if cursor is None:
                return found


def _drive(ledger: Ledger, rng: random.Random, run_id: str) -> None:
    """Take the run to a random state: pending, running, success (with outputs), failed or
    killed; some get their labels changed afterwards."""
    fate = rng.choice(["pending", "running", "success", "success", "failed", "killed"])
    if fate == "killed":
        ledger.cancel(run_id, principal="olga", reason="not needed")
    elif fate != "pending":
        ledger.claim(run_id, worker_id="w1")
        workflow = ledger.get_run(run_id).workflow
        tasks = ["extract", "load"] if workflow == "etl" else ["fit"]
        events: list[dict[str, Any]] = []
        if fate in ("success", "failed"):
            for i, task in enumerate(tasks):
                attempts = rng.choice([1, 1, 2])
                for attempt in range(1, attempts + 1):
                    ok = attempt == attempts and not (fate == "failed" and i == len(tasks) - 1)
                    outputs = {"rows": rng.choice([0, 3, 12, 2.5]), "name": rng.choice(["a", "b%", "Z"])}
                    events += [
                        {"type": "task_started", "task": task, "attempt": attempt},
                        {
                            "type": "task_finished",
                            "task": task,
                            "attempt": attempt,
                            "exit_code": 0 if ok else 1,
                            "output_vars": outputs if ok else {},
                        },
                    ]
                    if not ok and fate == "failed" and i == len(tasks) - 1:
                        break
            last = (
                {"type": "run_succeeded"}
                if fate == "success"
                else {"type": "run_failed", "error": rng.choice(ERRORS)}
            )
            events.append(last)
            ledger.report(run_id, worker_id="w1", reports=reports(*events))
    if rng.random() < 0.3:
        key = rng.choice(list(LABELS))
        ledger.label(run_id, set_={key: rng.choice(LABELS[key])}, remove=[], principal="olga", reason="later")
    if rng.random() < 0.15:
        ledger.label(run_id, set_={}, remove=[rng.choice(list(LABELS))], principal="olga")


def _labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(v) for k, v in LABELS.items() if rng.random() < 0.5}


def make_dataset(settings: Settings, seed: int, runs: int = 36) -> Iterator[Dataset]:
    rng = random.Random(seed)
    ledger = Ledger(settings, clock=Clock(rng))
    runner = ProjectionRunner(settings, batch_size=7, rebuild_batch_size=6)
    views = ReadModels(settings)
    try:
        ledger.register_workflow(ETL, principal="alice")
        ledger.register_workflow(TRAIN, principal="alice")
        run_ids = []
        for _ in range(runs):
            if rng.random() < 0.5:
                params: dict[str, Any] = {
                    "query": rng.choice(QUERIES),
                    "limit": rng.choice([-5, 0, 3, 10, 2.5, 50]),
                }
                if rng.random() < 0.5:
                    params["flag"] = rng.random() < 0.5
                workflow = "etl"
            else:
                params = {"max_urls": rng.choice([1, 9, 10, 11, 100])} if rng.random() < 0.8 else {}
                workflow = "train"
            principal = rng.choice(["carol", "dave", "Carol"])
            run_id = ledger.trigger(
                workflow=workflow, parameters=params, principal=principal, labels=_labels(rng)
            ).run_id
            run_ids.append(run_id)
            _drive(ledger, rng, run_id)
        replayed = ledger.replay(run_ids[0], principal="dave").run_id
        _drive(ledger, rng, replayed)
        batch = ledger.trigger_batch(
            workflow="etl",
            items=["b1", "b2"],
            input_param="query",
            parallelism=1,
            principal="carol",
            labels={"env": "dev"},
        )
        for run_id in batch.run_ids:
            _drive(ledger, rng, run_id)
        runner.catch_up()
        yield Dataset(ledger, views, runner, settings)
    finally:
        runner.stop()
        views.close()
        ledger.close()


@pytest.fixture(scope="module", params=BACKENDS)
def dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """One random run set per backend for the module's tests (read-only but for the runs a
    test adds with labels of its own)."""
    if request.param == "postgres":
        postgres_or_skip()
    directory = tmp_path_factory.mktemp(f"search-{request.param}")
    with fresh_database_url(str(request.param), directory) as url:
        yield from make_dataset(Settings(database_url=url, data_dir=directory / "state"), seed=20)
