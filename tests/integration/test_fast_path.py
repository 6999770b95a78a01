"""The ingest fast path (``api/fastpath.py``) answers trigger, claim and report as the full
FastAPI path does, on the real app over a real ledger (both backends).

A request with a query string always goes to the full path (the fast path takes none), so the
same request is sent both ways and the answers compared. A spy around the full stack (the
app FastPath wraps) records which requests reached it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.fastpath import FastPath, FastPathAPI, lean_routes
from api.metrics import request_metrics
from api.routes import workers, workflows
from api.runtime import Runtime
from ledger.settings import Settings

DEFINITION = {
    "name": "fast",
    "params": {"dataset": {"type": "string", "required": True}},
    "tasks": [{"name": "t0", "command": ["true"]}],
}
FULL = "?via=full"  # any query string sends a request down the full path


class Spy:
    """The full stack, recording the POSTs that reached it (with a ``?`` when they had a query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.paths.append(scope["path"] + ("?" if scope["query_string"] else ""))
        await self.app(scope, receive, send)


class Api:
    def __init__(self, client: TestClient, runtime: Runtime, spy: Spy) -> None:
        self.client = client
        self.spy = spy
        self.tokens = {
            role: runtime.tokens.create(name=f"fast-{role}", role=role)[1]
            for role in ("operator", "worker", "auditor")
        }
        self.tokens["other-worker"] = runtime.tokens.create(name="fast-other", role="worker")[1]

    def post(self, path: str, role: str | None, body: Any = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            kwargs["json"] = body
        return self.client.post(path, headers=headers, **kwargs)

    def trigger(self, full: bool = False) -> Any:
        return self.post(
            f"/api/workflows/fast/trigger{FULL if full else ''}", "operator", {"parameters": {"dataset": "d"}}
        )

    def claim(self, full: bool = False, role: str = "worker") -> Any:
        return self.post(f"/api/runs/claim{FULL if full else ''}", role)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    app = create_app(settings.model_copy(update={"max_body_bytes": 4096}))
    assert isinstance(app, FastPathAPI)
    with TestClient(app) as client:
        fast = app.fast_path  # made at the lifespan's start
        assert isinstance(fast, FastPath)
        spy = Spy(fast.app)
        fast.app = spy
        api = Api(client, app.state.runtime, spy)
        assert api.post("/api/workflows", "operator", {"definition": DEFINITION}).status_code == 201
        yield api


def _started(task: str = "t0") -> dict[str, Any]:
    return {"events": [{"type": "task_started", "task": task, "attempt": 1, "host": "h"}]}


def _without_ids(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in {"run_id", "lease_expires_at", "parameters"}}


def test_trigger_claim_and_report_answer_as_the_full_path_without_reaching_it(api: Api) -> None:
    fast, full = api.trigger(), api.trigger(full=True)
    assert fast.status_code == full.status_code == 202
    assert fast.headers["content-type"] == full.headers["content-type"] == "application/json"
    assert set(fast.json()) == set(full.json()) and fast.json()["status"] == "pending"
    claimed_fast, claimed_full = api.claim(), api.claim(full=True)
    assert claimed_fast.status_code == claimed_full.status_code == 200
    assert _without_ids(claimed_fast.json()) == _without_ids(claimed_full.json())
    first, second = claimed_fast.json()["run_id"], claimed_full.json()["run_id"]
    reported = api.post(f"/api/runs/{first}/events", "worker", _started(), headers={"X-Request-ID": "req-7"})
    reported_full = api.post(f"/api/runs/{second}/events{FULL}", "worker", _started())
    assert reported.status_code == reported_full.status_code == 200
    assert reported.json() == {"run_id": first, "status": "running", "events_appended": 1}
    assert _without_ids(reported.json()) == _without_ids(reported_full.json())
    assert reported.headers["x-request-id"] == "req-7"
    assert api.client.get("/api/workflows/fast/trigger").status_code == 405  # GET: the full path
    fast_paths = ["/api/workflows/fast/trigger", "/api/runs/claim", f"/api/runs/{first}/events"]
    assert not set(fast_paths) & set(api.spy.paths), api.spy.paths
    assert {"/api/workflows/fast/trigger?", "/api/runs/claim?", f"/api/runs/{second}/events?"} <= set(
        api.spy.paths
    )
    # The run's own events, as read back, are the reported ones (written through the ledger).
    tasks = api.client.get(
        f"/api/runs/{first}/tasks", headers={"Authorization": f"Bearer {api.tokens['auditor']}"}
    )
    assert tasks.status_code == 200 and tasks.json()["tasks"][0]["status"] == "running"
    counted = request_metrics().registry.get_sample_value(
        "runledger_http_requests_total",
        {"method": "POST", "route": "/api/runs/{run_id}/events", "status": "200"},
    )
    assert counted is not None and counted >= 2


def test_claim_with_nothing_waiting_is_204_on_both_paths(api: Api) -> None:
    fast, full = api.claim(), api.claim(full=True)
    assert fast.status_code == full.status_code == 204
    assert fast.content == full.content == b""


def test_every_refusal_is_the_full_paths_problem(api: Api) -> None:
    api.trigger()
    run_id = api.claim().json()["run_id"]
    cases: list[tuple[str, str | None, Any, dict[str, Any]]] = [
        (f"/api/runs/{run_id}/events", "other-worker", _started(), {}),  # 409: another worker's run
        ("/api/runs/no-such-run/events", "worker", _started(), {}),  # 404
        (f"/api/runs/{run_id}/events", None, _started(), {}),  # 401: no token
        (f"/api/runs/{run_id}/events", "operator", _started(), {}),  # 403: not a worker
        (f"/api/runs/{run_id}/events", "worker", {"events": []}, {}),  # 422: does not validate
        (f"/api/runs/{run_id}/events", "worker", _started("bad name!"), {}),  # 422
        (f"/api/runs/{run_id}/events", "worker", _started("t\u0000"), {}),  # 422: the input guard
        (f"/api/runs/{run_id}/events", "worker", None, {"content": b"{not json"}),  # 422
        (f"/api/runs/{run_id}/events", "worker", _started("t" * 5000), {}),  # 413: over the limit
        ("/api/workflows/nope/trigger", "operator", {"parameters": {}}, {}),  # 404: no workflow
        ("/api/workflows/fast/trigger", "operator", {"parameters": {}}, {}),  # 422: a required param
        ("/api/workflows/fast/trigger", "operator", {"parameters": {"dataset": "d"}, "x": 1}, {}),  # 422
    ]
    for path, role, body, extra in cases:
        fast = api.post(path, role, body, headers={"Content-Type": "application/json"}, **extra)
        full = api.post(path + FULL, role, body, headers={"Content-Type": "application/json"}, **extra)
        assert fast.status_code == full.status_code >= 400, (path, role, fast.text)
        assert fast.headers["content-type"] == "application/problem+json", fast.text
        assert fast.json() == full.json(), (path, role)
    # A claim with a body of another type, or with a query, is the full path's too.
    form = api.post("/api/runs/claim", "worker", None, content=b"a=b", headers={"Content-Type": "text/plain"})
    assert form.status_code == api.post(f"/api/runs/claim{FULL}", "worker", None, content=b"a=b").status_code


def test_a_route_whose_signature_changed_is_left_to_fastapi() -> None:
    routes = [*workflows.router.routes, *workers.router.routes]
    assert {lean.route.endpoint for lean in lean_routes(routes)} == {
        workflows.trigger_workflow,
        workers.claim,
        workers.report,
    }
    changed = APIRoute(
        "/api/runs/{run_id}/events", workers.report, methods=["POST"], dependencies=[Depends(lambda: None)]
    )
    others = [r for r in routes if getattr(r, "endpoint", None) is not workers.report]
    assert workers.report not in {lean.route.endpoint for lean in lean_routes([*others, changed])}


def test_a_revoked_token_is_refused_on_the_fast_path_at_once_and_writes_nothing(api: Api) -> None:
    api.trigger()
    run_id = api.claim().json()["run_id"]
    assert api.post(f"/api/runs/{run_id}/events", "worker", _started()).status_code == 200
    runtime: Runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    before = runtime.ledger.stream_events(run_id)
    assert runtime.tokens.revoke("fast-worker") == 1
    reported = api.post(f"/api/runs/{run_id}/events", "worker", _started("t1"))
    assert reported.status_code == 401, reported.text
    assert reported.headers["content-type"] == "application/problem+json"
    assert runtime.ledger.stream_events(run_id) == before  # nothing written
    assert api.claim().status_code == 401  # the claim's fast path refuses it too
    assert api.spy.paths[-2:] == [f"/api/runs/{run_id}/events", "/api/runs/claim"]  # worded there
