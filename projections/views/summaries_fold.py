"""The run-summary fold: everything ``GET /api/runs/{id}`` shows, from a run's stored events.

:class:`Fold` (one ``match`` over event types) is pure: the summaries view
(:mod:`projections.views.summaries`) folds each batch of events with it, and the API's
read-your-writes path folds one run's own events (:func:`summary_from_events`). The status
rules it applies are :mod:`ledger.domain.status`'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ledger.domain.labels import apply_labels
from ledger.domain.status import (
    TERMINAL,
    RunStatus,
    TaskStatus,
    ends_run,
    error_after,
    started_time,
    status_after,
    task_status_after,
    transition_time,
)
from ledger.domain.workspace import workspace_of
from ledger.hashing import parse_timestamp
from ledger.sensitive import ERASED, HIDDEN, is_sealed, masked
from ledger.store.event_record import EventRecord
from projections.view import dumps

State = dict[str, Any]

#: Task states that count as succeeded (and whose output variables the summary shows).
_SUCCEEDED = frozenset({TaskStatus.SUCCESS, TaskStatus.REUSED})

#: The summary fields of SPEC section 2, in order.
SUMMARY_FIELDS = (
    "run_id",
    "workflow",
    "version",
    "definition_hash",
    "engine_version",
    "status",
    "triggered_by",
    "trigger_kind",
    "parameters",
    "created_at",
    "started_at",
    "completed_at",
    "duration_seconds",
    "tasks_total",
    "tasks_succeeded",
    "tasks_failed",
    "retry_count",
    "error",
    "outputs",
    "replay_of",
    "resume_of",
    "batch_id",
    "late_events",
    # (SPEC 9) the run's workspace, ``default`` for runs triggered before workspaces
    "workspace",
    "labels",
    # SPEC section 11: a legal hold is on; the run is expunged (sensitive values "[erased]").
    "held",
    "expunged",
)


def summary_from_events(events: list[EventRecord]) -> dict[str, Any] | None:
    """The summary of one run from its events (oldest first); None if it was never triggered."""
    fold = Fold({})
    for event in events:
        fold.add(event)
    state = next(iter(fold.states.values()), None)
    return None if state is None else public(state)


class Fold:
    """One pass over events: the fold state of each run they touch (starting from ``states``,
    the ones already known), and the parameter and batch rows that a run's or a batch's first
    event adds. Events of other kinds, and a run's events before its trigger, change nothing."""

    def __init__(self, states: dict[str, State]) -> None:
        self.states = states
        self.touched: set[str] = set()
        self.params: list[tuple[str, str, str, float | None, str]] = []
        self.batches: list[tuple[Any, ...]] = []

    def add(self, event: EventRecord) -> None:
        match event.type:
            case "Batch.Created":
                self.batches.append(_batch_row(event))
            case "Run.Triggered":
                state = self.states[event.stream] = _triggered(event)
                sealed = event.data.get("parameters") or {}
                self.touched.add(event.stream)
                self.params.extend(
                    (event.stream, f"param.{k}", param_text(v), param_number(v), state["created_at"])
                    for k, v in state["parameters"].items()
                    if v is not None and not is_sealed(sealed.get(k))  # no filtering on a sealed value
                )
            case "Run.Started" | "Run.LeaseRenewed":
                self._run(event, _leased)
            case "Run.TaskStarted" | "Run.TaskFinished" | "Run.TaskReused":
                self._run(event, _task_moved)
            case "Run.Succeeded" | "Run.Failed" | "Run.Killed" | "Run.LineageReported":
                self._run(event, _moved)
            case "Run.Labelled":
                self._run(event, _labelled)
            case "Run.HoldPlaced" | "Run.HoldReleased" | "Run.Expunged":
                self._run(event, _retention)
            case "Run.GateReached" | "Run.GateApproved" | "Run.GateRejected":
                self._run(event, _gate_moved)
            case _:
                pass

    def _run(self, event: EventRecord, handle: Callable[[State, EventRecord], None]) -> None:
        state = self.states.get(event.stream)
        if state is not None:
            handle(state, event)
            self.touched.add(event.stream)


def _triggered(event: EventRecord) -> State:
    d = event.data
    defined = (d.get("definition") or {}).get("tasks") or []
    return {
        "run_id": event.stream,
        "workflow": d["workflow"],
        "version": d.get("version"),
        "definition_hash": d.get("definition_hash"),
        "engine_version": d.get("engine_version"),
        "status": RunStatus.PENDING.value,
        "triggered_by": d.get("triggered_by"),
        "trigger_kind": d.get("trigger_kind"),
        "parameters": masked(d.get("parameters") or {}, erased=False),
        "created_at": event.timestamp,
        "started_at": None,
        "completed_at": None,
        "error": None,
        "outputs": {},
        "replay_of": d.get("replay_of"),
        "resume_of": d.get("resume_of"),
        "batch_id": d.get("batch_id"),
        "late_events": [],
        "workspace": workspace_of(d),
        "labels": {},
        "held": False,
        "expunged": False,
        "worker_id": None,
        "lease_expires_at": None,
        "tasks": {},
        "defined_tasks": len(defined),
        "position": event.position,
    }


def _moved(state: State, event: EventRecord) -> None:
    """The status rules applied: when the run started or ended, and its error. An OpenLineage
    event may arrive out of order: ``started_at`` is the earliest start it reports
    (:func:`~ledger.domain.status.started_time`), and a terminal event after the run's end
    moves nothing but is kept in ``late_events``."""
    started = started_time(event.type, event.data)
    if started is not None and (state["started_at"] is None or started < state["started_at"]):
        state["started_at"] = started
    if RunStatus(state["status"]) in TERMINAL and ends_run(event.type, event.data):
        late = {"event_type": event.data.get("event_type"), "event_time": event.data.get("event_time")}
        state["late_events"] = [*state.get("late_events", []), late]
        return
    status = status_after(state["status"], event.type, event.data)
    if status == state["status"]:
        return
    at = transition_time(event.type, event.data, event.timestamp)
    if status == RunStatus.RUNNING:
        state["started_at"] = state["started_at"] or at
    elif status in TERMINAL:
        state["completed_at"] = at
        state["error"] = error_after(event.type, event.data)
    state["status"] = status.value


def _labelled(state: State, event: EventRecord) -> None:
    d = event.data
    state["labels"] = apply_labels(state.get("labels") or {}, d.get("set") or {}, d.get("remove") or [])


def _retention(state: State, event: EventRecord) -> None:
    """A legal hold placed or released; the run expunged (its sealed values now erased)."""
    if event.type == "Run.Expunged":
        state["expunged"] = True
        state["parameters"] = {
            k: ERASED if v == HIDDEN else v for k, v in (state.get("parameters") or {}).items()
        }
    else:
        state["held"] = event.type == "Run.HoldPlaced"


def _leased(state: State, event: EventRecord) -> None:
    _moved(state, event)
    state["worker_id"] = event.data.get("worker_id")
    state["lease_expires_at"] = event.data.get("lease_expires_at")


def _gate_moved(state: State, event: EventRecord) -> None:
    """An approval gate (SPEC 10): the run waits, goes back to pending, or (with the
    ``Run.Failed`` that follows a rejection) ends; the gate's task moves with it."""
    _moved(state, event)
    status = task_status_after(event.type, event.data)
    state["tasks"][event.data["task"]] = {"status": str(status), "attempts": 0}


def _task_moved(state: State, event: EventRecord) -> None:
    d = event.data
    status = task_status_after(event.type, d)
    attempts = 0 if status == TaskStatus.REUSED else int(d.get("attempt") or 1)
    state["tasks"][d["task"]] = {"status": str(status), "attempts": attempts}
    if status in _SUCCEEDED:
        state["outputs"][d["task"]] = dict(d.get("output_vars") or {})


def _batch_row(event: EventRecord) -> tuple[Any, ...]:
    d = event.data
    return (
        event.stream.removeprefix("batch:"),
        d["workflow"],
        int(d["parallelism"]),
        dumps(d["run_ids"]),
        event.timestamp,
    )


def public(state: State) -> dict[str, Any]:
    """The SPEC summary of a fold state."""
    tasks = state["tasks"].values()
    duration = None
    if state["completed_at"] is not None:
        begun = state["started_at"] or state["created_at"]
        delta = parse_timestamp(state["completed_at"]) - parse_timestamp(begun)
        duration = max(0.0, delta.total_seconds())
    derived = {
        "duration_seconds": duration,
        "tasks_total": state["defined_tasks"] or len(state["tasks"]),
        "tasks_succeeded": sum(1 for t in tasks if t["status"] in _SUCCEEDED),
        "tasks_failed": sum(1 for t in tasks if t["status"] == TaskStatus.FAILED),
        "retry_count": sum(max(0, int(t["attempts"]) - 1) for t in tasks),
    }
    state.setdefault("late_events", [])
    state.setdefault("labels", {})
    state.setdefault("held", False)
    state.setdefault("expunged", False)
    return {name: derived[name] if name in derived else state[name] for name in SUMMARY_FIELDS}


def param_text(value: Any) -> str:
    """How a parameter value is compared with ``param.<name>=<value>`` (strings as they are)."""
    return value if isinstance(value, str) else json.dumps(value)


def param_number(value: Any) -> float | None:
    """A parameter's value as ``q`` compares it with a bare number: JSON numbers only (not
    booleans, not numeric-looking strings)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
