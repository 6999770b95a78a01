"""The run and task status rules: the one place that says which event moves a run or a task to
which status.

Every reader asks here: the :class:`~ledger.domain.run.Run` aggregate, every view, the event
stream endpoint, the executor's candidate and resume scans and the CLI. A run's states and
legal transitions are SPEC section 1's; terminal states are final, so an event after the end
(a late OpenLineage START, say) is recorded but moves nothing. Each event type is named once
here, in :func:`transition` (or :func:`task_status_after`); a grep for an event's full name in
quotes finds its rule and every reader that reacts to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple, overload


class RunStatus(StrEnum):
    """SPEC section 1's run states."""

    PENDING = "pending"
    RUNNING = "running"
    #: At an approval gate (SPEC 10): no worker holds it until the signatures are in.
    WAITING = "waiting"
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
    #: An approval gate reached, waiting for its signatures (SPEC 10).
    WAITING = "waiting"


TERMINAL = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.KILLED})
LEGAL_TRANSITIONS = frozenset(
    {
        (RunStatus.PENDING, RunStatus.RUNNING),
        (RunStatus.PENDING, RunStatus.KILLED),
        (RunStatus.RUNNING, RunStatus.SUCCESS),
        (RunStatus.RUNNING, RunStatus.FAILED),
        (RunStatus.RUNNING, RunStatus.KILLED),
        # approval gates (SPEC 10): the worker lets the run go at a gate; the signatures
        # make it claimable again, a rejection fails it, and a cancel still works
        (RunStatus.RUNNING, RunStatus.WAITING),
        (RunStatus.WAITING, RunStatus.PENDING),
        (RunStatus.WAITING, RunStatus.FAILED),
        (RunStatus.WAITING, RunStatus.KILLED),
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


class Transition(NamedTuple):
    """What one event does to its run: the status it moves the run to (None: it leaves the
    status as it is), the run's ``error`` once it ends there, and when that happened (None:
    when the event was recorded)."""

    to: RunStatus | None
    error: str | None = None
    at: str | None = None


def transition(event_type: str, data: Mapping[str, Any]) -> Transition:
    """The rule for an event of ``event_type`` (with its ``data``), whatever the run's status;
    :func:`status_after` keeps terminal states final."""
    match event_type:
        case "Run.Triggered":
            return Transition(RunStatus.PENDING)
        case "Run.Started":
            return Transition(RunStatus.RUNNING)
        case "Run.Succeeded":
            return Transition(RunStatus.SUCCESS)
        case "Run.Failed":
            error = data.get("error")
            return Transition(RunStatus.FAILED, None if error is None else str(error))
        case "Run.Killed":
            return Transition(RunStatus.KILLED, "killed")
        case "Run.GateReached":
            return Transition(RunStatus.WAITING)
        case "Run.GateApproved":
            return Transition(RunStatus.PENDING)
        case "Run.LineageReported":
            to = LINEAGE_STATUS.get(str(data.get("event_type")))
            at = data.get("event_time")
            return Transition(to, _lineage_error(to, data), None if at is None else str(at))
        case _:
            return Transition(None)


def _lineage_error(to: RunStatus | None, data: Mapping[str, Any]) -> str | None:
    """A FAIL's error is its ``errorMessage`` facet's message ("failed" without one); an ABORT's
    is "killed", as a cancel's."""
    if to is RunStatus.FAILED:
        facet = (data.get("run_facets") or {}).get("errorMessage")
        message = facet.get("message") if isinstance(facet, dict) else None
        return str(message) if message else "failed"
    if to is RunStatus.KILLED:
        return "killed"
    return None


@overload
def status_after(current: str, event_type: str, data: Mapping[str, Any]) -> RunStatus: ...
@overload
def status_after(current: None, event_type: str, data: Mapping[str, Any]) -> RunStatus | None: ...
def status_after(current: str | None, event_type: str, data: Mapping[str, Any]) -> RunStatus | None:
    """A run's status after one more event: terminal states are final, and an event that
    moves nothing leaves ``current``. ``current`` is None before the run's first event; then
    only its trigger gives it a status."""
    moved = transition(event_type, data).to
    if current is None:
        return moved if moved is RunStatus.PENDING else None
    status = RunStatus(current)
    if status in TERMINAL or moved is None:
        return status
    return moved


def error_after(event_type: str, data: Mapping[str, Any]) -> str | None:
    """The run's ``error`` once an event has moved it to a terminal state (None: no error).
    Ask only when :func:`status_after` moved the run: an event after the end changes nothing."""
    return transition(event_type, data).error


def transition_time(event_type: str, data: Mapping[str, Any], recorded_at: str) -> str:
    """When a transition happened: an OpenLineage event says so itself (``event_time``);
    any other event happened when it was recorded."""
    return transition(event_type, data).at or recorded_at


def started_time(event_type: str, data: Mapping[str, Any]) -> str | None:
    """When an event says its run started, whatever order it arrived in: an OpenLineage
    START or RUNNING's ``event_time`` (a run's ``started_at`` is the earliest of them); None
    for any other event (a worker's start counts only as a transition)."""
    if event_type == "Run.LineageReported" and transition(event_type, data).to is RunStatus.RUNNING:
        at = data.get("event_time")
        return None if at is None else str(at)
    return None


def ends_run(event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether an event, by its own rule, ends a run (a late one, after the end, moves nothing)."""
    return transition(event_type, data).to in TERMINAL


def task_status_after(event_type: str, data: Mapping[str, Any]) -> TaskStatus | None:
    """The status a task event moves its task (``data["task"]``) to; None for other events."""
    match event_type:
        case "Run.TaskStarted":
            return TaskStatus.RUNNING
        case "Run.TaskFinished":
            return TaskStatus(data["status"])
        case "Run.TaskReused":
            return TaskStatus.REUSED
        case "Run.GateReached":
            return TaskStatus.WAITING
        case "Run.GateApproved":
            return TaskStatus.SUCCESS
        case "Run.GateRejected":
            return TaskStatus.FAILED
        case _:
            return None
