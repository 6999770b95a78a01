"""Path and query parameters more than one router takes, and their checks (422 otherwise)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query

from ledger.errors import InvalidRequest
from ledger.hashing import parse_timestamp

RunId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]
TaskName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
#: The largest position or tree size a request may name (a 64-bit signed integer on both
#: backends; larger values, such as ``1e30``, are refused with 422 before any query).
MAX_POSITION = 2**62
Status = Literal["pending", "running", "success", "failed", "killed"]
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
