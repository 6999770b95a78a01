"""structlog set-up (JSON when stderr is not a terminal, console when it is) and the request
logging middleware: one ``request_handled`` line per request with method, path, status,
duration_ms and request_id (and run_id when the path names a run). Every line passes
``api.redact.redact_secrets``: nothing shaped like a token is ever written.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.redact import redact_secrets

RUN_PATH = re.compile(r"^/api/runs/(?P<run_id>[0-9a-fA-F-]{36})(?:/|$)")
_configured = False


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog once per entry point."""
    global _configured
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if use_json else _identity,
            redact_secrets,  # last before rendering: also covers formatted tracebacks
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    _configured = True


def _stderr_logger(*args: Any) -> structlog.PrintLogger:
    """Resolve ``sys.stderr`` when a logger is made, not when logging is configured."""
    return structlog.PrintLogger(sys.stderr)


def _identity(logger: Any, name: str, event: Any) -> Any:
    return event


class RequestLoggingMiddleware:
    """Binds ``request_id`` (from ``X-Request-ID`` or new), logs each request once, and turns an
    unhandled exception into a 500 problem without a stack trace (the trace goes to the log)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("api.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        path = str(scope.get("path", ""))
        bound: dict[str, Any] = {"request_id": request_id}
        match = RUN_PATH.match(path)
        if match:
            bound["run_id"] = match["run_id"]
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(**bound):
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception:
                from api.errors import send_problem

                self.log.exception("request_failed", method=scope.get("method"), path=path)
                if not response_started:
                    status = 500
                    await send_problem(send_wrapper, 500, f"internal error; quote request id {request_id}")
            finally:
                self.log.info(
                    "request_handled",
                    method=scope.get("method"),
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return request_id_of(value)
    return None


def request_id_of(value: bytes) -> str | None:
    """A client's ``X-Request-ID`` when it is a plain id (its first 100 characters), else None."""
    text = bytes(value).decode("latin-1")[:100]
    return text if re.fullmatch(r"[A-Za-z0-9._-]+", text) else None
