"""A run's tasks and attempts on one time axis (the run page's timeline), like Temporal's and
Dagster's: one row per task, one bar per attempt, a retry being a second bar on the same row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _at(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Bar:
    attempt: int
    status: str
    left: float  # percent of the axis
    width: float
    started_at: str | None
    ended_at: str | None
    exit_code: int | None
    retry: bool


@dataclass(frozen=True)
class Row:
    task: str
    status: str
    bars: list[Bar]
    source_run_id: str | None


def timeline(tasks: list[dict[str, Any]], run: dict[str, Any], now: float) -> tuple[list[Row], float]:
    """Rows of bars, and the axis length in seconds (from the run's start to its end or now)."""
    starts = [_at(a.get("started_at")) for t in tasks for a in t["attempts"]]
    start = _at(run.get("started_at")) or min((s for s in starts if s is not None), default=None)
    end = _at(run.get("completed_at")) or now
    if start is None:
        return [Row(t["name"], t["status"], [], t.get("source_run_id")) for t in tasks], 0.0
    span = max(end - start, 0.001)
    rows = []
    for task in tasks:
        bars = []
        for index, attempt in enumerate(task["attempts"]):
            a_start = _at(attempt.get("started_at")) or start
            # An attempt without an end ran until now, or until the run ended (a cancel).
            a_end = _at(attempt.get("ended_at")) or (
                end if attempt.get("status") in ("running", "killed") else a_start
            )
            left = min(100.0, max(0.0, (a_start - start) / span * 100))
            width = max(0.8, min(100.0 - left, (a_end - a_start) / span * 100))
            bars.append(
                Bar(
                    attempt=int(attempt.get("attempt", index + 1)),
                    status=str(attempt.get("status", "")),
                    left=round(left, 2),
                    width=round(width, 2),
                    started_at=attempt.get("started_at"),
                    ended_at=attempt.get("ended_at"),
                    exit_code=attempt.get("exit_code"),
                    retry=index > 0,
                )
            )
        rows.append(Row(task["name"], task["status"], bars, task.get("source_run_id")))
    return rows, span
