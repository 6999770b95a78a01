"""A real ``runledger serve`` whose database connections are ended under it
(``pg_terminate_backend``, again and again for a few seconds, of this server's backends only:
it connects under an application name of its own): ``/readyz`` reports the outage, and
afterwards projections, execution and the Merkle follower go on.

Also: leases lapse under ``serve --no-executor`` (runs claimed by an outside engine through the
worker API are failed with ``worker_lost`` when it goes away), on both backends.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from tests.builders import eventually
from tests.conftest import BACKENDS, PG_ADMIN_URL, POSTGRES
from tests.e2e.conftest import Server
from tests.e2e.helpers import register

QUICK = {"name": "quick", "tasks": [{"name": "say", "command": ["echo", "hi"]}]}


def terminate_backends(application_name: str) -> int:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def run_to_success(client: httpx.Client, workflow: str) -> str:
    response = client.post(f"/api/workflows/{workflow}/trigger", json={"parameters": {}})
    assert response.status_code == 202, response.text
    run_id = str(response.json()["run_id"])

    def succeeded() -> bool:
        status = client.get(f"/api/runs/{run_id}").json()["status"]
        assert status not in {"failed", "killed"}, status
        return bool(status == "success")

    eventually(succeeded, timeout=60)
    return run_id


def merkle_tree_size(database_url: str) -> int:
    schema = database_url.split("schema=")[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(f'SELECT tree_size FROM "{schema}".runledger_merkle_state WHERE id = 1').fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_after_its_connections_are_terminated_the_server_reports_not_ready_then_goes_on(
    server_factory: Callable[..., Server],
) -> None:
    app_name = f"rl-outage-{uuid.uuid4().hex[:8]}"
    server = server_factory(executor=True, env={"PGAPPNAME": app_name})
    workflow = f"quick-{uuid.uuid4().hex[:8]}"
    with server.client("operator") as client:
        register(client, QUICK | {"name": workflow})
        run_to_success(client, workflow)
        eventually(lambda: client.get("/readyz").status_code == 200, timeout=30)
        assert terminate_backends(app_name) > 0, "the server's connections are named"

        stop = threading.Event()
        terminated: list[int] = []

        def keep_terminating() -> None:
            while not stop.wait(0.05):
                terminated.append(terminate_backends(app_name))

        killer = threading.Thread(target=keep_terminating)
        killer.start()
        answers: list[tuple[int, dict[str, Any]]] = []
        try:
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                try:
                    ready = client.get("/readyz", timeout=4)  # it answers within 2 s
                    answers.append((ready.status_code, ready.json()))
                except httpx.HTTPError as exc:
                    answers.append((0, {"error": repr(exc)}))
                time.sleep(0.05)
        finally:
            stop.set()
            killer.join()

        assert sum(terminated) > 0
        outage = [body for status, body in answers if status == 503]
        assert outage, f"/readyz never said not ready during the outage: {answers[:3]}"
        assert any(body.get("loops_down") for body in outage), "a loop reported itself down"

        # Afterwards: ready again, every loop back, runs executed and projected, tree followed.
        def ready_again() -> dict[str, Any]:
            response = client.get("/readyz")
            body: dict[str, Any] = response.json()
            assert response.status_code == 200, body
            # The lease monitor takes its per-database lock again before it reports back.
            assert {"projections", "executor", "lease-monitor", "merkle-follower"} <= set(body["loops"]), body
            return body

        body = eventually(ready_again, timeout=60)  # the pools reconnect with backoff
        assert "loops_down" not in body
        assert set(body["loops"].values()) == {"ok"}
        run_id = run_to_success(client, workflow)
        listed = client.get("/api/runs", params={"workflow": workflow}).json()
        assert run_id in {r["run_id"] for r in listed["runs"]}
        size = int(client.get("/readyz").json()["ledger_size"])
        eventually(lambda: merkle_tree_size(server.database_url) >= size, timeout=20)
    assert server.process.poll() is None
    assert "projection_batch_failed" in server.logs() or "loop_failed" in server.logs()


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_under_serve_no_executor_a_run_whose_outside_worker_vanished_fails_with_worker_lost(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory(executor=False, env={"RUNLEDGER_LEASE_SECONDS": "1.5"})
    workflow = f"outside-{uuid.uuid4().hex[:8]}"
    with server.client("operator") as operator, server.client("worker") as worker:
        register(operator, QUICK | {"name": workflow})
        response = operator.post(f"/api/workflows/{workflow}/trigger", json={"parameters": {}})
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]

        def claimed() -> dict[str, Any]:
            answer = worker.post("/api/runs/claim", json={"worker_id": "engine-1"})
            assert answer.status_code == 200, answer.status_code
            body: dict[str, Any] = answer.json()
            return body

        claim = eventually(claimed, timeout=20)
        assert claim["run_id"] == run_id
        # The engine goes away without another word: no renewal, no report.

        def lost() -> dict[str, Any] | None:
            run: dict[str, Any] = operator.get(f"/api/runs/{run_id}").json()
            return run if run["status"] not in {"pending", "running"} else None

        run = eventually(lost, timeout=20)
    assert run["status"] == "failed"
    assert run["error"] == "worker_lost"
    events = server.client("auditor").get(f"/api/runs/{run_id}/events").json()["events"]
    assert [e["data"]["error"] for e in events if e["type"] == "Run.Failed"] == ["worker_lost"]
