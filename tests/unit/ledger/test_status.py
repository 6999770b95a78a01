"""The run and task status rules (ledger/domain/status.py), which every reader asks."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.status import (
    ENDING_EVENTS,
    LEGAL_TRANSITIONS,
    TERMINAL,
    RunStatus,
    TaskStatus,
    error_after,
    status_after,
    task_status_after,
    transition,
    transition_time,
)

RECORDED_AT = "2026-12-04T10:00:00.000000Z"
EVENT_TIME = "2026-12-04T09:59:58.500+01:00"

#: Every event of a run, each with the data the rules read.
EVENTS: dict[str, dict[str, Any]] = {
    "Run.Triggered": {"workflow": "etl"},
    "Run.Started": {"worker_id": "w", "lease_expires_at": RECORDED_AT},
    "Run.LeaseRenewed": {"worker_id": "w", "lease_expires_at": RECORDED_AT},
    "Run.TaskStarted": {"task": "a", "attempt": 1},
    "Run.TaskFinished": {"task": "a", "attempt": 1, "status": "success"},
    "Run.TaskReused": {"task": "a", "source_run_id": "r0"},
    "Run.Succeeded": {"by": "w"},
    "Run.Failed": {"error": "task 'a' failed: exit 1", "by": "w"},
    "Run.Killed": {"by": "ops", "reason": None},
}


def lineage(event_type: str, **data: Any) -> dict[str, Any]:
    return {"event_type": event_type, "event_time": EVENT_TIME, "run_facets": {}} | data


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        ("pending", "Run.Started", "running"),
        ("pending", "Run.Killed", "killed"),
        ("running", "Run.Succeeded", "success"),
        ("running", "Run.Failed", "failed"),
        ("running", "Run.Killed", "killed"),
    ],
)
def test_each_ending_or_starting_event_moves_its_run_as_spec_section_1_says(
    current: str, event_type: str, expected: str
) -> None:
    assert status_after(current, event_type, EVENTS[event_type]) == RunStatus(expected)
    assert (RunStatus(current), RunStatus(expected)) in LEGAL_TRANSITIONS


@pytest.mark.parametrize(
    "event_type", ["Run.LeaseRenewed", "Run.TaskStarted", "Run.TaskFinished", "Run.TaskReused"]
)
@pytest.mark.parametrize("current", ["pending", "running"])
def test_lease_and_task_events_leave_the_run_status_as_it_is(current: str, event_type: str) -> None:
    assert status_after(current, event_type, EVENTS[event_type]) == RunStatus(current)
    assert transition(event_type, EVENTS[event_type]).to is None


def test_an_event_of_another_aggregate_or_an_unknown_type_moves_nothing() -> None:
    assert status_after("running", "Workflow.Registered", {"name": "etl"}) == RunStatus.RUNNING
    assert status_after("pending", "Run.SomethingNew", {}) == RunStatus.PENDING
    assert transition("Batch.Created", {}).to is None


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        ("pending", "START", "running"),
        ("pending", "RUNNING", "running"),
        ("running", "RUNNING", "running"),
        ("running", "COMPLETE", "success"),
        ("pending", "COMPLETE", "success"),
        ("running", "FAIL", "failed"),
        ("running", "ABORT", "killed"),
        ("running", "OTHER", "running"),
        ("pending", "OTHER", "pending"),
    ],
)
def test_an_openlineage_event_moves_its_run_by_its_event_type(
    current: str, event_type: str, expected: str
) -> None:
    assert status_after(current, "Run.LineageReported", lineage(event_type)) == RunStatus(expected)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
@pytest.mark.parametrize(
    ("event_type", "data"),
    [*EVENTS.items(), *(("Run.LineageReported", lineage(t)) for t in ("START", "COMPLETE", "FAIL", "ABORT"))],
)
def test_terminal_states_are_final_whatever_comes_next(
    terminal: RunStatus, event_type: str, data: dict[str, Any]
) -> None:
    assert status_after(terminal, event_type, data) == terminal


def test_a_late_start_after_complete_keeps_the_run_successful() -> None:
    status = status_after("running", "Run.LineageReported", lineage("COMPLETE"))
    assert status_after(status, "Run.LineageReported", lineage("START")) == RunStatus.SUCCESS


def test_before_its_trigger_a_run_has_no_status_and_only_the_trigger_gives_one() -> None:
    assert status_after(None, "Run.Triggered", EVENTS["Run.Triggered"]) == RunStatus.PENDING
    assert status_after(None, "Run.Started", EVENTS["Run.Started"]) is None
    assert status_after(None, "Run.Killed", EVENTS["Run.Killed"]) is None
    assert status_after(None, "Run.LineageReported", lineage("START")) is None


def test_the_ending_events_are_those_that_move_a_run_to_a_terminal_state() -> None:
    ending = {
        event_type for event_type, data in EVENTS.items() if transition(event_type, data).to in TERMINAL
    }
    assert set(ENDING_EVENTS) == ending


def test_no_legal_transition_leaves_a_terminal_state_or_returns_to_pending() -> None:
    """Only a run signed through its approval gate (SPEC 10) is pending again, to be claimed."""
    assert all(start not in TERMINAL for start, _ in LEGAL_TRANSITIONS)
    back = {start for start, target in LEGAL_TRANSITIONS if target == RunStatus.PENDING}
    assert back == {RunStatus.WAITING}


def test_statuses_compare_equal_to_the_text_stored_in_views() -> None:
    stored: list[str] = ["killed", "success", "reused"]
    assert stored[0] == RunStatus.KILLED
    assert stored[1] in TERMINAL
    assert stored[2] == TaskStatus.REUSED


def test_a_failed_run_keeps_the_error_of_its_failed_event() -> None:
    assert error_after("Run.Failed", EVENTS["Run.Failed"]) == "task 'a' failed: exit 1"
    assert error_after("Run.Failed", {"error": "worker_lost", "by": "lease"}) == "worker_lost"


def test_a_killed_run_has_the_error_killed_and_a_successful_one_none() -> None:
    assert error_after("Run.Killed", EVENTS["Run.Killed"]) == "killed"
    assert error_after("Run.Succeeded", EVENTS["Run.Succeeded"]) is None


def test_an_openlineage_fail_takes_its_error_message_facet_or_says_failed() -> None:
    facet = {"errorMessage": {"message": "division by zero", "programmingLanguage": "python"}}
    assert error_after("Run.LineageReported", lineage("FAIL", run_facets=facet)) == "division by zero"
    assert error_after("Run.LineageReported", lineage("FAIL")) == "failed"
    assert error_after("Run.LineageReported", lineage("FAIL", run_facets={"errorMessage": "x"})) == "failed"
    assert error_after("Run.LineageReported", lineage("FAIL", run_facets=None)) == "failed"


def test_an_openlineage_abort_is_killed_and_other_event_types_give_no_error() -> None:
    assert error_after("Run.LineageReported", lineage("ABORT")) == "killed"
    for event_type in ("START", "RUNNING", "COMPLETE", "OTHER"):
        assert error_after("Run.LineageReported", lineage(event_type)) is None


def test_events_that_end_nothing_give_no_error() -> None:
    for event_type in ("Run.Triggered", "Run.Started", "Run.TaskFinished"):
        assert error_after(event_type, EVENTS[event_type]) is None


def test_an_openlineage_transition_happened_at_its_event_time_any_other_when_recorded() -> None:
    assert transition_time("Run.LineageReported", lineage("COMPLETE"), RECORDED_AT) == EVENT_TIME
    assert transition_time("Run.LineageReported", {"event_type": "START"}, RECORDED_AT) == RECORDED_AT
    assert transition_time("Run.Killed", EVENTS["Run.Killed"], RECORDED_AT) == RECORDED_AT


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        ("Run.TaskStarted", EVENTS["Run.TaskStarted"], "running"),
        ("Run.TaskFinished", EVENTS["Run.TaskFinished"], "success"),
        ("Run.TaskFinished", EVENTS["Run.TaskFinished"] | {"status": "failed"}, "failed"),
        ("Run.TaskReused", EVENTS["Run.TaskReused"], "reused"),
    ],
)
def test_a_task_event_moves_its_task(event_type: str, data: dict[str, Any], expected: str) -> None:
    assert task_status_after(event_type, data) == TaskStatus(expected)


def test_run_events_leave_task_statuses_alone() -> None:
    for event_type in ("Run.Triggered", "Run.Started", "Run.Succeeded", "Run.Killed", "Run.LineageReported"):
        assert task_status_after(event_type, EVENTS.get(event_type, {})) is None
