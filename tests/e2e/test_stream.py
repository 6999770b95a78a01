"""Following a run live over Server-Sent Events (``GET /api/runs/{id}/events?follow=true``)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

#: One shared server per module and backend (tests use run ids of their own); most tests
#: exercise the HTTP layer and run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)

SLOW_WORKFLOW = {
    "name": "sse_slow",
    "params": {"who": {"type": "string", "default": "world"}},
    "tasks": [
        {"name": "first", "command": ["python3", "-c", "import time; time.sleep(0.8)"]},
        {
            "name": "second",
            "depends_on": ["first"],
            "command": ["python3", "-c", "import time; time.sleep(0.8); print('hi')"],
        },
    ],
}


def follow(
    server: Any, token: str, run_id: str, *, last_event_id: str | None = None, timeout: float = 60.0
) -> list[tuple[float, dict[str, Any]]]:
    """Every ``data:`` event of the SSE stream, with its arrival time, until the server closes."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    received: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream(
        "GET",
        f"{server.url}/api/runs/{run_id}/events",
        params={"follow": "true"},
        headers=headers,
        timeout=httpx.Timeout(10.0, read=30.0),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                received.append((time.monotonic(), json.loads(line[len("data:") :].strip())))
            assert time.monotonic() < deadline, "the stream did not end with the run"
    return received


def test_following_a_running_run_receives_every_event_in_order_with_the_stored_hashes(
    server_factory: Callable[..., Any],
) -> None:
    server = server_factory(executor=True)
    operator = {"Authorization": f"Bearer {server.admin_token}"}
    auditor = server.admin_token
    registered = httpx.post(
        f"{server.url}/api/workflows", json={"definition": SLOW_WORKFLOW}, headers=operator
    )
    assert registered.status_code in {200, 201}, registered.text
    triggered = httpx.post(
        f"{server.url}/api/workflows/sse_slow/trigger", json={"parameters": {}}, headers=operator
    )
    assert triggered.status_code == 202, triggered.text
    run_id = triggered.json()["run_id"]

    received = follow(server, auditor, run_id)

    stored = httpx.get(f"{server.url}/api/runs/{run_id}/events", headers=operator).json()["events"]
    assert [event for _, event in received] == stored
    assert [e["sequence"] for _, e in received] == list(range(1, len(stored) + 1))
    assert received[-1][1]["type"] == "Run.Succeeded"
    assert {"Run.Started", "Run.TaskStarted", "Run.TaskFinished"} <= {e["type"] for e in stored}
    # it really followed: the last event arrived well after the first (the tasks sleep 1.6 s)
    assert received[-1][0] - received[0][0] > 0.6


@SQLITE_ONLY
def test_a_follower_gets_events_appended_after_it_connected_and_stops_when_the_run_ends(
    shared_server: Any,
) -> None:
    server = shared_server
    token = server.admin_token
    headers = {"Authorization": f"Bearer {token}"}
    run_id = str(uuid.uuid4())

    def report(event_type: str, second: int) -> None:
        answer = httpx.post(
            f"{server.url}/api/v1/lineage",
            headers=headers,
            json={
                "eventType": event_type,
                "eventTime": f"2026-03-01T12:00:{second:02d}Z",
                "run": {"runId": run_id},
                "job": {"namespace": "sse", "name": "job"},
                "producer": "tests",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
            },
        )
        assert answer.status_code == 201, answer.text

    report("START", 0)
    result: list[list[tuple[float, dict[str, Any]]]] = []
    follower = threading.Thread(target=lambda: result.append(follow(server, token, run_id)))
    follower.start()
    time.sleep(0.5)
    report("RUNNING", 1)
    time.sleep(0.3)
    report("OTHER", 2)
    report("COMPLETE", 3)
    follower.join(timeout=30)
    assert not follower.is_alive(), "the stream stayed open after the run completed"
    received = [event for _, event in result[0]]
    stored = httpx.get(f"{server.url}/api/runs/{run_id}/events", headers=headers).json()["events"]
    assert received == stored
    assert [e["data"].get("event_type") for e in received] == [None, "START", "RUNNING", "OTHER", "COMPLETE"]

    resumed = follow(server, token, run_id, last_event_id="3")
    assert [event for _, event in resumed] == stored[3:]

    missing = str(uuid.uuid4())
    for url in (f"/api/runs/{missing}/events", f"/api/runs/{missing}/events?follow=true"):
        assert httpx.get(f"{server.url}{url}", headers=headers).status_code == 404


def test_many_slow_followers_hold_no_database_connections(shared_server: Any) -> None:
    """More idle SSE clients than the server has database connections (pool of 8 + 8)."""
    server = shared_server
    token = server.admin_token
    headers = {"Authorization": f"Bearer {token}"}
    run_id = str(uuid.uuid4())
    answer = httpx.post(
        f"{server.url}/api/v1/lineage",
        headers=headers,
        json={
            "eventType": "START",
            "eventTime": "2026-03-01T12:00:00Z",
            "run": {"runId": run_id},
            "job": {"namespace": "sse", "name": "slow"},
            "producer": "tests",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
        },
    )
    assert answer.status_code == 201
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"GET /api/runs/{run_id}/events?follow=true HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    slow = []
    try:
        for _ in range(24):  # connect and never read a byte
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(request)
            slow.append(sock)
        time.sleep(1.0)  # every follower has sent its past events and is polling
        with httpx.Client(base_url=server.url, headers=headers, timeout=5.0) as client:
            started = time.monotonic()
            for _ in range(20):
                assert client.get(f"/api/runs/{run_id}/events").status_code == 200
            assert time.monotonic() - started < 5.0
    finally:
        for sock in slow:
            sock.close()
