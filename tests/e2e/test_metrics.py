"""``/metrics`` (Prometheus text format) and ``/readyz`` of a real ``runledger serve``."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

#: One shared server per module and backend (tests use run ids of their own); most tests
#: exercise the HTTP layer and run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)


def scrape(server: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_counters_move_as_runs_happen_and_readyz_says_ready(shared_server: Any) -> None:
    server = shared_server
    token = server.admin_token
    headers = {"Authorization": f"Bearer {token}"}
    before = scrape(server)
    for state in ("COMPLETE", "FAIL"):
        run_id = str(uuid.uuid4())
        for event_type, second in (("START", 0), (state, 5)):
            answer = httpx.post(
                f"{server.url}/api/v1/lineage",
                headers=headers,
                json={
                    "eventType": event_type,
                    "eventTime": f"2026-03-01T12:00:0{second}Z",
                    "run": {"runId": run_id},
                    "job": {"namespace": "metrics", "name": "job"},
                    "producer": "tests",
                    "schemaURL": "https://openlineage.io/spec/2-0-2/x.json",
                },
            )
            assert answer.status_code == 201
    assert httpx.get(f"{server.url}/api/runs/{uuid.uuid4()}/events", headers=headers).status_code == 404

    deadline = time.monotonic() + 20
    while True:
        after = scrape(server)
        settled = (
            value(after, "runledger_runs", status="success")
            >= value(before, "runledger_runs", status="success") + 1
            and value(after, "runledger_runs", status="failed")
            >= value(before, "runledger_runs", status="failed") + 1
        )
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert settled, "runs by state did not follow the two runs"

    route = "/api/v1/lineage"
    assert (
        value(after, "runledger_http_requests_total", method="POST", route=route, status="201")
        == value(before, "runledger_http_requests_total", method="POST", route=route, status="201") + 4
    )
    assert (
        value(
            after,
            "runledger_http_requests_total",
            method="GET",
            route="/api/runs/{run_id}/events",
            status="404",
        )
        >= 1
    )
    assert value(after, "runledger_http_request_duration_seconds_count", method="POST", route=route) >= 4
    assert value(after, "runledger_events_appended_total") >= (
        value(before, "runledger_events_appended_total") + 6  # 2 runs x (trigger + 2 reports)
    )
    lags = [v for (name, _), v in after.items() if name == "runledger_projection_lag_events"]
    assert lags, "no projection lag reported"
    assert ("runledger_executor_queue_depth", ()) in after

    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (body["ready"], body["database"]) == (True, "ok")
    assert all(p["lag"] <= body["max_lag"] for p in body["projections"])
