"""Workers are identified by their token (its id), never by the token's name: a second token
with the same name, or a token whose name spells ``<name>/<worker id>``, cannot report on a run
another token claimed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger

STARTED = {"type": "task_started", "task": "fetch", "attempt": 1}


def worker_client(server: Server, name: str) -> httpx.Client:
    return server.client(None, token=server.token("worker", name))


def claim(worker: httpx.Client, worker_id: str | None = None) -> dict[str, Any]:
    response = worker.post("/api/runs/claim", json={"worker_id": worker_id} if worker_id else {})
    assert response.status_code == 200, response.text
    return dict(response.json())


def report(worker: httpx.Client, run_id: str, worker_id: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"events": [STARTED]}
    if worker_id is not None:
        body["worker_id"] = worker_id
    return worker.post(f"/api/runs/{run_id}/events", json=body)


def a_pending_run(server: Server) -> str:
    definition = pipeline()
    with server.client("operator") as operator:
        register(operator, definition)
        return str(trigger(operator, definition["name"])["run_id"])


def test_a_second_worker_token_with_the_same_name_cannot_report_on_the_first_ones_run(
    server: Server,
) -> None:
    name = f"engine-{uuid.uuid4().hex[:6]}"
    first, second = worker_client(server, name), worker_client(server, name)
    run_id = a_pending_run(server)
    claimed = claim(first)
    assert claimed["run_id"] == run_id
    assert name not in claimed["worker_id"]  # the token's id, not its name

    assert_problem(report(second, run_id), 409)
    assert report(first, run_id).status_code == 200


def test_a_token_named_like_name_slash_worker_id_cannot_report_for_that_worker(
    server: Server,
) -> None:
    engine = worker_client(server, "engineA")
    impostor = worker_client(server, "engineA/x")
    run_id = a_pending_run(server)
    assert claim(engine, worker_id="x")["run_id"] == run_id

    assert_problem(report(impostor, run_id), 409)
    assert_problem(report(impostor, run_id, worker_id="x"), 409)
    assert report(engine, run_id, worker_id="x").status_code == 200
    with server.client("auditor") as auditor:
        events = auditor.get(f"/api/runs/{run_id}/events").json()["events"]
    assert [e["type"] for e in events] == ["Run.Triggered", "Run.Started", "Run.TaskStarted"]
