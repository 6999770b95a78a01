"""RFC 9457 problem details for every error the API returns, and the one map from domain
errors to HTTP status codes.

A malformed JSON body is answered with 422 (like any other body that does not validate), with
an ``errors`` entry of type ``json_invalid``.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import structlog
from eventsourcing import persistence as es_persistence
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from api.wording import validation_message
from ledger.errors import (
    Conflict,
    Forbidden,
    Gone,
    IllegalTransition,
    InvalidDefinition,
    InvalidParameters,
    InvalidRequest,
    LedgerError,
    NotFound,
)


class Unavailable(LedgerError):
    """A part of the service this request needs is not running."""

    title = "Service unavailable"


PROBLEM_MEDIA_TYPE = "application/problem+json"
#: Content types of HTML forms: what ``curl -d`` sends unless told otherwise.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

#: Domain error -> HTTP status. The one place where that decision is made.
STATUS_OF: dict[type[LedgerError], int] = {
    NotFound: 404,
    Gone: 410,
    InvalidDefinition: 422,
    InvalidParameters: 422,
    InvalidRequest: 422,
    IllegalTransition: 409,
    Conflict: 409,
    Forbidden: 403,
    Unavailable: 503,
}

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
    507: "Insufficient storage",
}

#: Seconds a client should wait before retrying a 503 (the database unreachable) or a 507.
RETRY_AFTER_SECONDS = 5
_NO_SPACE = ("database or disk is full", "could not extend file", "no space left on device")
_SQLITE_UNREACHABLE = ("unable to open database", "disk i/o error", "database is locked")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        **(extensions or {}),
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return ProblemResponse(body, status_code=status, headers=headers)


def status_for(exc: LedgerError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 422


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a request body passes the limit (see ``BodyLimitMiddleware``).

    It is an HTTPException so that FastAPI's body parsing re-raises it unchanged.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


def _validation_errors(request: Request, exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": ".".join(str(part) for part in err.get("loc", ())),
                "msg": validation_message(request, err),
                "type": str(err.get("type", "")),
            }
        )
    return out


async def _on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(exc.status_code, detail, headers=headers or None)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents on this path (RFC 9110 15.5.6: a 405 carries ``Allow``;
    a path may be served by several routes, one per method), read from the OpenAPI paths."""
    methods: set[str] = set()
    openapi = getattr(request.app, "openapi", None)
    paths: dict[str, dict[str, Any]] = openapi().get("paths", {}) if callable(openapi) else {}
    path = request.url.path
    if path in paths:  # a literal path (``/api/runs/claim``) before any template it also fits
        matching = [paths[path]]
    else:
        pattern = {t: re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) for t in paths}
        matching = [ops for t, ops in paths.items() if re.fullmatch(pattern[t], path)]
    for operations in matching:
        methods |= {method.upper() for method in operations if method in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(request, exc)
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    detail = f"request does not validate: {summary}"
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        detail = (
            f"the body was sent as {content_type}, but this route takes JSON: send it with "
            "'Content-Type: application/json' (curl: -H 'Content-Type: application/json' or "
            f"--json); {detail}"
        )
    return problem(422, detail, errors=errors)


async def _on_ledger_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, LedgerError)
    status = status_for(exc)
    errors = [{str(k): v for k, v in e.items()} for e in exc.errors] or None
    return problem(status, exc.detail, title=exc.title, errors=errors, extensions=exc.extensions)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from (the store wraps driver errors in its own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 10:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def retryable_status(exc: BaseException) -> int | None:
    """507 when storage is full, 503 when the database cannot be reached; None otherwise (a
    real 500). Nothing was acknowledged either way: a client may retry the same request."""
    causes = list(_causes(exc))
    for cause in causes:
        text = str(cause).lower()
        if isinstance(cause, psycopg.errors.DiskFull) or any(words in text for words in _NO_SPACE):
            return 507
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return 507
    for cause in causes:
        if isinstance(cause, psycopg.OperationalError | psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
            return 503
        if isinstance(cause, sqlite3.OperationalError) and any(
            w in str(cause).lower() for w in _SQLITE_UNREACHABLE
        ):
            return 503
    return None


async def _on_store_error(request: Request, exc: Exception) -> ProblemResponse:
    """A database or disk error: 503 + ``Retry-After`` or 507, else re-raised (a 500)."""
    status = retryable_status(exc)
    if status is None:
        raise exc
    detail = (
        "the database cannot be reached; nothing was recorded, retry later"
        if status == 503
        else "no storage space is left; nothing was recorded, retry later"
    )
    structlog.get_logger("api.errors").warning(
        "store_unavailable" if status == 503 else "storage_exhausted",
        status=status,
        error=type(exc).__name__,
        path=request.url.path,
    )
    return problem(status, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


#: Errors of the stores that may be retryable (see :func:`retryable_status`).
STORE_ERRORS: tuple[type[Exception], ...] = (
    es_persistence.PersistenceError,
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    psycopg_pool.PoolClosed,
    sqlite3.Error,
    OSError,
)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(LedgerError, _on_ledger_error)
    for error in STORE_ERRORS:
        app.add_exception_handler(error, _on_store_error)


async def send_problem(send: Send, status: int, detail: str) -> None:
    """Send a problem response from pure ASGI code (middlewares)."""
    response = problem(status, detail)

    async def _no_receive() -> Any:  # pragma: no cover - a response never reads
        return {"type": "http.disconnect"}

    scope: Scope = {"type": "http"}
    receive: Receive = _no_receive
    await response(scope, receive, send)


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}

#: The error responses every API route may give, documented as problem JSON in /openapi.json.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": TITLES[status], "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}}}
    for status in (400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 500, 503, 507)
}
