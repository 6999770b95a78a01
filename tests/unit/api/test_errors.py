"""Problem JSON from the error handlers and the request middleware, on a small real app."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.bodylimit import BodyLimitMiddleware
from api.errors import install_error_handlers, status_for
from api.logging import RequestLoggingMiddleware, configure_logging
from ledger.errors import Conflict, IllegalTransition, InvalidParameters, NotFound


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def small_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/conflict")
    def conflict() -> None:
        raise IllegalTransition("run r is success; it cannot become killed")

    @app.post("/echo")
    def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    app.add_middleware(BodyLimitMiddleware, max_body_bytes=64)
    app.add_middleware(RequestLoggingMiddleware)
    return app


def test_an_unhandled_exception_is_a_500_problem_without_the_trace_but_logged_with_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    with TestClient(small_app()) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 500 and "req-42" in body["detail"]
    assert "secret" not in response.text and "Traceback" not in response.text
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    failed = next(line for line in lines if line["event"] == "request_failed")
    assert failed["request_id"] == "req-42"
    assert "secret internal detail" in failed["exception"]
    handled = next(line for line in lines if line["event"] == "request_handled")
    assert (handled["status"], handled["method"], handled["path"]) == (500, "GET", "/boom")
    assert handled["duration_ms"] >= 0


def test_domain_errors_map_to_their_status_in_one_place() -> None:
    assert status_for(NotFound("x")) == 404
    assert status_for(InvalidParameters("x")) == 422
    assert status_for(IllegalTransition("x")) == 409
    assert status_for(Conflict("x")) == 409
    with TestClient(small_app()) as client:
        response = client.get("/conflict")
    assert response.status_code == 409
    assert response.json()["title"] == "Illegal state transition"


def test_validation_errors_and_oversized_bodies_are_problems() -> None:
    with TestClient(small_app()) as client:
        invalid = client.post("/echo", json={"a": "not a number"})
        too_big = client.post(
            "/echo", content=b"{" + b" " * 100 + b"}", headers={"Content-Type": "application/json"}
        )
        ok = client.post("/echo", json={"a": 1})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"] == "body.a"
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert ok.json() == {"a": 1}
