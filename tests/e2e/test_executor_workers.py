"""``runledger worker`` processes: racing over many runs, and dying mid-task (SQLite and
PostgreSQL, with the projection runner of ``runledger serve`` feeding their candidates)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.conftest import RUNLEDGER, Server, serving
from tests.e2e.test_executor_isolation import task_processes

LEASE = {"RUNLEDGER_LEASE_SECONDS": "3"}


@pytest.fixture(scope="module", params=BACKENDS)
def leased_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One ``runledger serve`` (projections, no executor) with 3 s leases per module and
    backend; every test uses a workflow name of its own."""
    with serving(request.param, tmp_path_factory, "leased", env=LEASE) as server:
        yield server


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    workers: list[subprocess.Popen[bytes]] = []

    def start(server: Server, *args: str) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker{len(workers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [RUNLEDGER, "worker", *args],
                env={**server.env, **LEASE},
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        workers.append(process)
        return process

    yield start
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def status_of(client: httpx.Client, run_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
    return body


def test_two_worker_processes_racing_over_24_runs_execute_each_run_exactly_once(
    leased_server: Server,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    server = leased_server
    client = server.client("operator")
    marks = tmp_path / "marks"
    marks.mkdir()
    definition = {
        "name": "once",
        "params": {"n": {"type": "integer"}},
        "tasks": [
            {
                "name": "mark",
                "command": [
                    "sh",
                    "-c",
                    f'echo "$RUNLEDGER_RUN_ID" >> {marks}/"$1"; sleep 0.2',
                    "sh",
                    "{{ params.n }}",
                ],
            }
        ],
    }
    assert client.post("/api/workflows", json={"definition": definition}).status_code == 201
    workers = [start_worker(server, "--concurrency", "2") for _ in range(2)]
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    # Both must be claiming before the runs exist, or on a loaded machine the first one up
    # can drain the queue alone.
    eventually(lambda: all("executor_started" in log.read_text() for log in logs), timeout=30)
    run_ids = []
    for n in range(24):
        response = client.post("/api/workflows/once/trigger", json={"parameters": {"n": n}})
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["run_id"])

    def all_succeeded() -> bool:
        return all(status_of(client, r)["status"] == "success" for r in run_ids)

    eventually(all_succeeded, timeout=60, interval=0.5)

    started: Counter[str] = Counter()
    claimed_by = set()
    for run_id in run_ids:
        events = client.get(f"/api/runs/{run_id}/events").json()["events"]
        for event in events:
            if event["type"] == "Run.Started":
                started[run_id] += 1
                claimed_by.add(event["data"]["worker_id"])
    assert all(started[r] == 1 for r in run_ids), started
    assert len(claimed_by) == 2, "both worker processes took part"
    for n, run_id in enumerate(run_ids):
        assert (marks / str(n)).read_text() == f"{run_id}\n"
    for process in workers:  # SIGTERM stops a worker cleanly
        process.send_signal(signal.SIGTERM)
    assert [w.wait(timeout=30) for w in workers] == [0, 0]


def test_a_worker_killed_with_sigkill_mid_task_leaves_its_run_failed_with_worker_lost(
    leased_server: Server,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    server = leased_server
    client = server.client("operator")
    definition = {
        "name": "doomed",
        "tasks": [{"name": "nap", "command": ["sh", "-c", "sleep 600 & echo $! > child.pid; wait"]}],
    }
    assert client.post("/api/workflows", json={"definition": definition}).status_code == 201
    doomed_worker = start_worker(server)
    run_id = client.post("/api/workflows/doomed/trigger", json={}).json()["run_id"]
    pid_file = server.state_dir / "runs" / run_id / "child.pid"
    eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    child_group = os.getpgid(int(pid_file.read_text()))
    try:
        doomed_worker.send_signal(signal.SIGKILL)
        doomed_worker.wait(timeout=10)
        killed_at = time.monotonic()
        assert status_of(client, run_id)["status"] == "running"
        start_worker(server)  # a healthy worker whose lease monitor notices

        eventually(lambda: status_of(client, run_id)["status"] == "failed", timeout=40)
        lost_after = time.monotonic() - killed_at
        # No process of the dead worker's task is left (read from /proc): the shell died with
        # its executor, and what it spawned is ended by the next worker's executor as it starts.
        eventually(lambda: not task_processes(run_id) or None, timeout=40)  # (once it is up)
    finally:
        # The dead worker's orphaned task: the next executor to start reaps it, or we do.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child_group, signal.SIGKILL)

    summary = status_of(client, run_id)
    assert summary["error"] == "worker_lost"
    assert lost_after < 25  # lease of 3 s, checked every second (slack for a loaded machine)
    events = client.get(f"/api/runs/{run_id}/events").json()["events"]
    assert [e["data"]["error"] for e in events if e["type"] == "Run.Failed"] == ["worker_lost"]
