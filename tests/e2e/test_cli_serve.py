"""``runledger serve`` as a real process: the first admin token, clean shutdown on SIGTERM,
several API processes, and the in-process executor running a workflow to the end. The console
script itself (``script=True``), not a process forked from one that imported it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import eventually
from tests.conftest import POSTGRES
from tests.e2e.conftest import RUNLEDGER, Server
from tests.e2e.helpers import pipeline, register, trigger


def test_first_serve_prints_an_admin_token_once_and_stops_cleanly_on_sigterm(
    server_factory: Callable[..., Server],
) -> None:
    first = server_factory(script=True)
    printed = first.stdout_path.read_text()
    assert first.admin_token and first.admin_token in printed
    token_file = first.state_dir / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    with first.client("admin") as client:
        assert client.get("/api/workflows").status_code == 200
    assert first.stop() == 0
    events = [json.loads(line)["event"] for line in first.logs().splitlines() if line.startswith("{")]
    assert "server_stopped" in events
    assert "request_handled" in events

    second = server_factory(script=True)  # same database: tokens exist, nothing new is printed
    assert "admin token" not in second.stdout_path.read_text()
    with second.client("admin") as client:
        assert client.get("/api/workflows").status_code == 200


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)  # several writers: PostgreSQL
def test_serve_with_two_worker_processes_answers_and_stops_on_sigterm(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(workers=2)
    definition = pipeline()
    with server.client("operator") as client:
        register(client, definition)
        run_ids = [trigger(client, definition["name"])["run_id"] for _ in range(4)]
        for run_id in run_ids:
            assert client.get(f"/api/runs/{run_id}").status_code == 200
        eventually(lambda: len(client.get("/api/runs").json()["runs"]) == 4)
    assert server.stop() == 0


def _api_processes(server: Server) -> set[int]:
    """The supervisor's children that are uvicorn workers (spawned: ``multiprocessing``)."""
    pid = server.process.pid
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):  # (gone meanwhile)
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
    return found


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)  # several writers: PostgreSQL
def test_a_worker_process_that_dies_is_replaced_before_the_next_ping(
    server_factory: Callable[..., Server],
) -> None:
    """The supervisor pings its workers every ``cli.supervisor.PING_SECONDS`` (5 s), but a
    worker's death is seen at its next look (0.5 s) and the worker replaced."""
    server = server_factory(workers=2)

    def two_workers(without: int | None = None) -> set[int] | None:
        found = _api_processes(server)
        return found if len(found) == 2 and without not in found else None

    workers = eventually(two_workers)
    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    replaced = eventually(lambda: two_workers(without=killed), timeout=4)
    assert replaced - workers and replaced & workers
    with server.client("admin") as client:
        assert eventually(lambda: client.get("/api/workflows").status_code == 200)
    assert server.stop() == 0


def test_the_in_process_executor_runs_a_triggered_workflow_to_success(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(executor=True, script=True)
    definition = {
        "name": "hello",
        "params": {"who": {"type": "string", "required": True}},
        "tasks": [{"name": "greet", "command": ["sh", "-c", 'echo "hello $PARAM_WHO"']}],
    }
    with server.client("operator") as client:
        register(client, definition)
        run_id = trigger(client, "hello", parameters={"who": "ledger"})["run_id"]

        def finished() -> str | None:
            status = str(client.get(f"/api/runs/{run_id}").json()["status"])
            return status if status in {"success", "failed", "killed"} else None

        assert eventually(finished, timeout=60) == "success"
        logs = client.get(f"/api/runs/{run_id}/tasks/greet/logs")
        assert logs.text == "hello ledger\n"
    assert server.stop() == 0
    requests = [
        json.loads(line)
        for line in server.logs().splitlines()
        if line.startswith("{") and '"request_handled"' in line
    ]
    assert any(r.get("run_id") == run_id and r["status"] == 200 for r in requests)
    assert all({"method", "path", "status", "duration_ms", "request_id"} <= set(r) for r in requests)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_without_projections_still_answers_single_runs_while_the_views_lag(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(projections=False)
    definition = pipeline()
    with server.client("operator") as client:
        register(client, definition)
        run_id = trigger(client, definition["name"])["run_id"]
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "pending"
        response = client.get("/api/projections")
        assert response.status_code == 200, response.text
        assert all(p["lag"] > 0 for p in response.json()["projections"])
        assert client.get("/api/runs").json()["runs"] == []
        batch = client.post(
            f"/api/workflows/{definition['name']}/trigger",
            json={"batch": {"items": ["a", "b"], "input_param": "query"}},
        ).json()
        client.post(f"/api/runs/{batch['run_ids'][0]}/cancel")
        progress = client.get(f"/api/batches/{batch['batch_id']}").json()
        assert progress["status"] == "running"  # as the batches view says
        assert progress["progress"] == {"total_items": 2, "processed_items": 1, "failed_items": 1}


def test_serve_on_a_database_it_cannot_open_exits_2_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where the database folder should be")
    done = subprocess.run(
        [RUNLEDGER, "--database-url", f"sqlite:///{tmp_path}/file/ledger.db", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "cannot open the database" in done.stderr
    assert "Traceback" not in done.stderr
