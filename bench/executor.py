"""Executor throughput and overhead: a 5-task workflow of ``true`` commands, end to end.

    .venv/bin/python -m bench.executor [--backend sqlite,postgres] [--workers 1,4]
                                       [--runs 40] [--out FILE]

For each backend and worker count: trigger ``--runs`` runs of a 5-task chain of ``true``
through ``Ledger.trigger``, start that many in-process ``Executor``s (each with its own
``Ledger`` connection, concurrency 1, candidates from the events table), and time from the
executors' start until every run is ``success``: runs/s end to end (claim, 5 task attempts
with full evidence, every report, the final state).

Overhead per task: the executor's wall time per task with 1 worker (elapsed / tasks) minus the
cost of the command itself, measured in the same process right after by spawning the same
``true`` commands directly with ``subprocess.run`` (the baseline); the ratio is
executor ms per task / direct ms per spawn.

With ``--containers N`` (1 worker): the same chain again with every task in a container
(``true`` in a local busybox image, through the detected runtime), N runs, right after the
local one on the same backend; it reports the per-task overhead of a container task against
a local one (``container_ms_per_task_wall - ms_per_task_wall``) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import structlog

from bench.common import ScratchDatabase, machine, scratch_database
from bench.container_image import busybox_image
from executor import Executor
from executor.candidates import EventScan
from executor.container import find_runtime
from ledger.domain.status import TERMINAL
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.filestore import FileStore

TASKS = 5


def five_tasks(image: str | None = None) -> dict[str, Any]:
    """A chain of five ``true`` tasks (in ``image`` when given)."""
    return {
        "name": "bench-five",
        "tasks": [
            {
                "name": f"t{i}",
                "command": ["true"],
                **({"depends_on": [f"t{i - 1}"]} if i else {}),
                **({"image": image} if image else {}),
            }
            for i in range(TASKS)
        ],
    }


def baseline_ms_per_spawn(count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        subprocess.run(["true"], check=True)
    return (time.perf_counter() - began) * 1000 / count


def measure(db: ScratchDatabase, *, workers: int, runs: int, image: str | None = None) -> dict[str, Any]:
    settings = Settings(database_url=db.url, data_dir=db.directory / "state")
    ledger = Ledger(settings)
    ledger.register_workflow(five_tasks(image), principal="bench")
    run_ids = [ledger.trigger(workflow="bench-five", principal="bench").run_id for _ in range(runs)]
    files = FileStore(settings.file_store_dir)
    apps = [Ledger(settings) for _ in range(workers)]
    executors = [
        Executor(
            app,
            files,
            settings,
            candidates=EventScan(app).pending_run_ids,
            lapsed=lambda now: [],
            concurrency=1,
            worker_id=f"bench-{i}",
        )
        for i, app in enumerate(apps)
    ]
    began = time.perf_counter()
    for executor in executors:
        executor.start()
    for run_id in run_ids:
        while ledger.get_run(run_id).status not in TERMINAL:
            time.sleep(0.02)
    elapsed = time.perf_counter() - began
    for executor in executors:
        executor.stop(drain_seconds=0)
    statuses = {ledger.get_run(r).status.value for r in run_ids}
    durations = [
        e.data["duration_seconds"]
        for r in run_ids
        for e in ledger.stream_events(r)
        if e.type == "Run.TaskFinished"
    ]
    for app in apps:
        app.close()
    ledger.close()
    return {
        "backend": db.backend,
        "workers": workers,
        "runs": runs,
        "tasks": runs * TASKS,
        "statuses": sorted(statuses),
        "elapsed_s": round(elapsed, 3),
        "runs_per_s": round(runs / elapsed, 2),
        "tasks_per_s": round(runs * TASKS / elapsed, 1),
        "ms_per_task_wall": round(elapsed * 1000 / (runs * TASKS), 2),
        "ms_per_attempt_recorded": round(statistics.mean(durations) * 1000, 2),
    }


def container_overhead(backend: str, local: dict[str, Any], runs: int) -> dict[str, Any]:
    """The container chain on ``backend``, against the local chain's figures ``local``."""
    with busybox_image(find_runtime(None)) as image, scratch_database(backend, prefix="rl_bench_ctr") as db:
        measured = measure(db, workers=1, runs=runs, image=image)
    wall = measured["ms_per_task_wall"]
    return {
        "container_runs": runs,
        "container_statuses": measured["statuses"],
        "container_ms_per_task_wall": wall,
        "container_overhead_ms_per_task_vs_local": round(wall - local["ms_per_task_wall"], 2),
        "ratio_container_vs_local": round(wall / local["ms_per_task_wall"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--workers", default="1,4")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--containers", type=int, default=0, help="runs of the container chain")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = []
    for backend in args.backend.split(","):
        for workers in [int(w) for w in args.workers.split(",")]:
            with scratch_database(backend, prefix="rl_bench_exec") as db:
                result = measure(db, workers=workers, runs=args.runs)
            if workers == 1:
                base = baseline_ms_per_spawn(args.runs * TASKS)
                result["baseline_ms_per_direct_spawn"] = round(base, 2)
                result["overhead_ms_per_task"] = round(result["ms_per_task_wall"] - base, 2)
                result["ratio_executor_vs_direct"] = round(result["ms_per_task_wall"] / base, 2)
                if args.containers:
                    result |= container_overhead(backend, result, args.containers)
            results.append(result)
            print(json.dumps(result), flush=True)
    summary = {"benchmark": "executor", "machine": machine(), "results": results}
    if args.out is not None:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
