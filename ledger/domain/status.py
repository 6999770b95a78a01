"""The run and task status rules: the one place that says which event moves a run or a task to
which status.

Every reader asks here: the :class:`~ledger.domain.run.Run` aggregate, every view, the event
stream endpoint, the executor's candidate scan and the CLI. A run's states and legal
transitions are SPEC section 1's; terminal states are final, so an event after the end
(a late OpenLineage START, say) is recorded but moves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, overload


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    KILLED = "killed"


class TaskStatus(StrEnum):
    """SPEC section 5's task states."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    REUSED = "reused"
    KILLED = "killed"
    SKIPPED = "skipped"


TERMINAL = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.KILLED})
LEGAL_TRANSITIONS = frozenset(
    {
        (RunStatus.PENDING, RunStatus.RUNNING),
        (RunStatus.PENDING, RunStatus.KILLED),
        (RunStatus.RUNNING, RunStatus.SUCCESS),
        (RunStatus.RUNNING, RunStatus.FAILED),
        (RunStatus.RUNNING, RunStatus.KILLED),
    }
)

#: The events that end a run (written by a worker, an operator's cancel, or a lapsed lease).
ENDING_EVENTS = ("Run.Succeeded", "Run.Failed", "Run.Killed")

#: OpenLineage eventType -> the run status it leads to (OTHER leaves the status unchanged).
LINEAGE_STATUS = {
    "START": RunStatus.RUNNING,
    "RUNNING": RunStatus.RUNNING,
    "COMPLETE": RunStatus.SUCCESS,
    "FAIL": RunStatus.FAILED,
    "ABORT": RunStatus.KILLED,
}


def transition(event_type: str, data: Mapping[str, Any]) -> RunStatus | None:
    """The status an event of ``event_type`` (with its ``data``) moves its run to, or None
    for an event that leaves the status as it is. Terminal states are checked by
    :func:`status_after`, not here."""
    match event_type:
        case "Run.Triggered":
            return RunStatus.PENDING
        case "Run.Started":
            return RunStatus.RUNNING
        case "Run.Succeeded":
            return RunStatus.SUCCESS
        case "Run.Failed":
            return RunStatus.FAILED
        case "Run.Killed":
            return RunStatus.KILLED
        case "Run.LineageReported":
            return LINEAGE_STATUS.get(str(data.get("event_type")))
        case _:
            return None


@overload
def status_after(current: str, event_type: str, data: Mapping[str, Any]) -> RunStatus: ...
@overload
def status_after(current: None, event_type: str, data: Mapping[str, Any]) -> RunStatus | None: ...
def status_after(current: str | None, event_type: str, data: Mapping[str, Any]) -> RunStatus | None:
    """A run's status after one more event: terminal states are final, and an event that
    moves nothing leaves ``current``. ``current`` is None before the run's first event; then
    only its trigger gives it a status."""
    moved = transition(event_type, data)
    if current is None:
        return moved if moved is RunStatus.PENDING else None
    status = RunStatus(current)
    if status in TERMINAL or moved is None:
        return status
    return moved


def error_after(event_type: str, data: Mapping[str, Any]) -> str | None:
    """The run's ``error`` once an event has moved it to a terminal state (None: no error).
    Ask only when :func:`status_after` moved the run: an event after the end changes nothing."""
    match event_type:
        case "Run.Failed":
            error = data.get("error")
            return None if error is None else str(error)
        case "Run.Killed":
            return "killed"
        case "Run.LineageReported" if data.get("event_type") == "FAIL":
            facet = (data.get("run_facets") or {}).get("errorMessage")
            message = facet.get("message") if isinstance(facet, dict) else None
            return str(message) if message else "failed"
        case "Run.LineageReported" if data.get("event_type") == "ABORT":
            return "killed"
        case _:
            return None


def transition_time(event_type: str, data: Mapping[str, Any], recorded_at: str) -> str:
    """When a transition happened: an OpenLineage event says so itself (``event_time``);
    any other event happened when it was recorded."""
    if event_type == "Run.LineageReported":
        return str(data.get("event_time") or recorded_at)
    return recorded_at


def task_status_after(event_type: str, data: Mapping[str, Any]) -> TaskStatus | None:
    """The status a task event moves its task (``data["task"]``) to; None for other events."""
    match event_type:
        case "Run.TaskStarted":
            return TaskStatus.RUNNING
        case "Run.TaskFinished":
            return TaskStatus(data["status"])
        case "Run.TaskReused":
            return TaskStatus.REUSED
        case _:
            return None
