"""The client's exceptions, built from the server's RFC 9457 problem JSON (SPEC section 6).

Every one is a :class:`RunledgerError` carrying ``status``, ``title`` and ``detail``;
:func:`error_from_response` picks the class from the status (and, for 404, from what was asked
for: a run or a workflow).
"""

from __future__ import annotations

from typing import Any

import httpx


class RunledgerError(Exception):
    """Any error the server answered (or the client found); ``status`` is 0 when no HTTP status
    applies (a connection that failed, a verification that did not hold)."""

    def __init__(
        self, detail: str, *, status: int = 0, title: str = "", errors: list[Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, title={self.title!r}, detail={self.detail!r})"

    def __str__(self) -> str:
        return self.detail if not self.status else f"{self.status} {self.title}: {self.detail}"


class AuthenticationError(RunledgerError):
    """401: no token, or one the server does not know (or has revoked)."""


class PermissionDeniedError(RunledgerError):
    """403: the token's role is too low for the call."""


class NotFoundError(RunledgerError):
    """404."""


class RunNotFoundError(NotFoundError):
    """404 for a run id."""


class WorkflowNotFoundError(NotFoundError):
    """404 for a workflow name or definition hash."""


class ConflictError(RunledgerError):
    """409: an illegal transition, a stale worker, an idempotency clash."""


class GoneError(RunledgerError):
    """410: the thing existed and was erased (an expunged run's files and logs)."""


class ValidationError(RunledgerError):
    """422: the request does not validate; ``errors`` holds the server's details."""


class ServerError(RunledgerError):
    """5xx: retried with backoff for idempotent calls before it is raised."""


class TransportError(RunledgerError):
    """The server could not be reached (after retries for idempotent calls)."""


class VerificationError(RunledgerError):
    """A verified read did not hold: a hash, a chain or a Merkle proof does not match."""


_BY_STATUS: dict[int, type[RunledgerError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: ValidationError,
}


def error_from_response(
    response: httpx.Response, *, not_found: type[NotFoundError] = NotFoundError
) -> RunledgerError:
    """The exception for an error ``response`` (problem JSON, or whatever text it carried)."""
    status = response.status_code
    title, detail, errors = response.reason_phrase, response.text[:500], None
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        title = str(body.get("title") or title)
        detail = str(body.get("detail") or detail)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else None
    cls: type[RunledgerError]
    if status == 404:
        cls = not_found
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, RunledgerError)
    return cls(detail or title, status=status, title=title, errors=errors)
