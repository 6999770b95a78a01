"""What the tests build again and again: a workflow definition, a worker's reports, and a wait
for something that happens in the background (a projection catching up, a server's executor)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ledger.domain.reports import Report, ReportBatch

#: The workflow most tests run: ``extract`` (echoes the required ``query``), then ``load``.
DEFINITION: dict[str, Any] = {
    "name": "etl",
    "params": {"query": {"type": "string", "required": True}, "limit": {"type": "integer", "default": 5}},
    "tasks": [
        {"name": "extract", "command": ["echo", "{{ params.query }}"]},
        {"name": "load", "depends_on": ["extract"], "command": ["true"]},
    ],
}


def reports(*events: dict[str, Any]) -> list[Report]:
    """A worker's report events (the JSON bodies of ``POST /api/runs/{id}/events``), parsed."""
    return list(ReportBatch.model_validate({"events": list(events)}).events)


def eventually(check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy (or stops raising AssertionError), and
    return that; after ``timeout`` seconds, fail."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        else:
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s: {result!r}")
        time.sleep(interval)
