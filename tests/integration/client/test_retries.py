"""Retries with backoff against a real HTTP server that fails on purpose: idempotent calls are
sent again after a 5xx or a dropped connection; a call that records something is not."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runledger import AsyncClient, Client, ServerError, TransportError, _transport


@dataclass
class Flaky:
    """Answers 503 (or drops the connection) ``failures`` times, then 200 with a workflow list."""

    failures: int = 0
    drop: bool = False
    url: str = ""
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Iterator[Flaky]:
    monkeypatch.setattr(_transport, "BACKOFF_SECONDS", 0.01)
    state = Flaky()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            state.requests.append(f"{self.command} {self.path}")
            if len(state.requests) <= state.failures:
                if state.drop:
                    self.connection.close()
                    return
                body, status = (
                    {"type": "about:blank", "title": "Service unavailable", "status": 503, "detail": "busy"},
                    503,
                )
            else:
                body, status = (
                    {"workflows": [], "run_id": "r1", "status": "pending", "definition_hash": "0" * 64},
                    200,
                )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_an_idempotent_read_is_retried_after_5xx_until_it_succeeds(flaky: Flaky) -> None:
    flaky.failures = 2
    with Client(flaky.url, "t", retries=3) as client:
        assert client.workflows.list() == []
    assert flaky.requests == ["GET /api/workflows"] * 3


def test_retries_give_up_with_server_error_carrying_the_problem(flaky: Flaky) -> None:
    flaky.failures = 10
    with Client(flaky.url, "t", retries=2) as client, pytest.raises(ServerError) as caught:
        client.workflows.list()
    assert (caught.value.status, caught.value.detail) == (503, "busy")
    assert len(flaky.requests) == 3


def test_a_trigger_without_idempotency_key_is_never_sent_twice(flaky: Flaky) -> None:
    flaky.failures = 1
    with Client(flaky.url, "t", retries=3) as client, pytest.raises(ServerError):
        client.trigger("wf", {"q": 1})
    assert flaky.requests == ["POST /api/workflows/wf/trigger"]


def test_a_dropped_connection_is_retried_for_reads_only(flaky: Flaky) -> None:
    flaky.failures, flaky.drop = 1, True
    with Client(flaky.url, "t", retries=3) as client:
        assert client.workflows.list() == []
        flaky.requests.clear()
        with pytest.raises(TransportError):
            client.workflows.register({"name": "x"})
    assert flaky.requests == ["POST /api/workflows"]


def test_the_async_client_retries_the_same_way(flaky: Flaky) -> None:
    flaky.failures = 2

    async def main() -> list[Any]:
        async with AsyncClient(flaky.url, "t", retries=3) as client:
            return list(await client.workflows.list())

    assert asyncio.run(main()) == []
    assert flaky.requests == ["GET /api/workflows"] * 3


def test_url_token_and_workspace_come_from_the_environment(
    flaky: Flaky, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNLEDGER_URL", flaky.url)
    monkeypatch.setenv("RUNLEDGER_TOKEN", "env-token")
    monkeypatch.setenv("RUNLEDGER_WORKSPACE", "team-a")
    with Client() as client:
        headers = client._t.http.headers
        assert headers["Authorization"] == "Bearer env-token"
        assert headers["Runledger-Workspace"] == "team-a"
        assert client.workflows.list() == []
    monkeypatch.delenv("RUNLEDGER_URL")
    with pytest.raises(ValueError, match="RUNLEDGER_URL"):
        Client()
