"""Path and query parameters more than one router takes, and their checks (422 otherwise)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from ledger.errors import InvalidRequest
from ledger.hashing import parse_timestamp

RunId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
TaskName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
#: The largest position or tree size a request may name (a 64-bit signed integer on both
#: backends; larger values, such as ``1e30``, are refused with 422 before any query).
MAX_POSITION = 2**62
Status = Literal["pending", "running", "waiting", "success", "failed", "killed"]
#: An optional ISO 8601 / RFC 3339 time in a query (checked by :func:`iso_timestamp`);
#: documented as ``format: date-time``.
TimeQuery = Annotated[str | None, Query(max_length=64, json_schema_extra={"format": "date-time"})]


def iso_timestamp(value: str | None, name: str) -> str | None:
    """A query parameter that must be ISO 8601 (422 otherwise)."""
    if value is None:
        return None
    try:
        parse_timestamp(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 timestamp, got {value!r}") from None
    return value


#: The OpenAPI extension naming the query parameter prefixes a route takes beyond those it
#: declares (``param.<name>``): :func:`reject_unknown_query` lets them through.
PREFIXES_KEY = "x-query-prefixes"


def dynamic_query(*prefixes: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes query parameters named ``<prefix><name>``."""
    return {PREFIXES_KEY: list(prefixes)}


def prefixed(request: Request, prefix: str) -> dict[str, list[str]]:
    """The values of the query parameters ``<prefix><name>``, by name (repeats kept)."""
    found: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key.startswith(prefix) and len(key) > len(prefix):
            found.setdefault(key[len(prefix) :], []).append(value)
    return found


_KNOWN: dict[int, tuple[frozenset[str], tuple[str, ...]]] = {}


def _known_query(route: APIRoute) -> tuple[frozenset[str], tuple[str, ...]]:
    known = _KNOWN.get(id(route))
    if known is None:
        names = frozenset(_query_names(route.dependant))
        prefixes = tuple((route.openapi_extra or {}).get(PREFIXES_KEY, ()))
        known = _KNOWN[id(route)] = (names, prefixes)
    return known


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter a ``GET /api/...`` route does not take (SPEC section 8):
    ``?bogus=1`` is an error, not every run. ``async``: it only reads the request, so it runs
    on the event loop rather than costing every request a hop through the thread pool."""
    route = request.scope.get("route")
    if request.method != "GET" or not isinstance(route, APIRoute) or not request.url.path.startswith("/api/"):
        return
    names, prefixes = _known_query(route)
    for key in request.query_params:
        if key in names or any(key.startswith(p) and len(key) > len(p) for p in prefixes):
            continue
        takes = ", ".join([*sorted(names), *(f"{p}<name>" for p in prefixes)]) or "none"
        raise InvalidRequest(f"unknown query parameter {key!r} (this endpoint takes: {takes})")
