"""RFC 9457 problem details for every error the API returns, and the one map from domain
errors to HTTP status codes.

A malformed JSON body is answered with 422 (like any other body that does not validate), with
an ``errors`` entry of type ``json_invalid``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from api.wording import validation_message
from ledger.errors import (
    Conflict,
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
    InvalidDefinition: 422,
    InvalidParameters: 422,
    InvalidRequest: 422,
    IllegalTransition: 409,
    Conflict: 409,
    Unavailable: 503,
}

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


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
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}) or None)


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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(LedgerError, _on_ledger_error)


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
    for status in (400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503)
}
