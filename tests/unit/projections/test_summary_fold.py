"""The run-summary fold as a pure function of stored events (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.store.event_record import EventRecord
from projections.views.summaries_fold import summary_from_events

RUN = "3f1c1a52-0000-4000-8000-000000000001"


def event(sequence: int, type_: str, second: int, **data: Any) -> EventRecord:
    return EventRecord(
        stream=RUN,
        sequence=sequence,
        position=sequence + 10,
        type=type_,
        timestamp=f"2030-01-01T00:00:{second:02d}.000000Z",
        data=data,
        hash="0" * 64,
        prev_hash=None,
    )


def triggered(definition: dict[str, Any] | None = None, **extra: Any) -> EventRecord:
    data = {
        "workflow": "etl",
        "version": 2,
        "definition_hash": "d" * 64,
        "definition": definition
        if definition is not None
        else {"tasks": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
        "engine_version": "0.1.0",
        "triggered_by": "carol",
        "trigger_kind": "resume",
        "parameters": {"q": "x"},
        "replay_of": None,
        "resume_of": "orig",
        "resume_from_task": "b",
        "batch_id": None,
        "idempotency_key": None,
    } | extra
    return event(1, "Run.Triggered", 0, **data)


def finished(sequence: int, task: str, attempt: int, status: str, **outputs: Any) -> EventRecord:
    return event(
        sequence, "Run.TaskFinished", sequence, task=task, attempt=attempt, status=status, output_vars=outputs
    )


def test_no_trigger_means_no_summary() -> None:
    assert summary_from_events([]) is None
    assert summary_from_events([event(1, "Workflow.Registered", 0, name="etl")]) is None


def test_a_pending_run_has_its_trigger_facts_and_nothing_else() -> None:
    summary = summary_from_events([triggered()])
    assert summary is not None
    assert summary["status"] == "pending" and summary["resume_of"] == "orig"
    assert (summary["started_at"], summary["completed_at"], summary["duration_seconds"]) == (None, None, None)
    assert (summary["tasks_total"], summary["tasks_succeeded"], summary["retry_count"]) == (3, 0, 0)


def test_reused_retried_and_failed_tasks_are_counted_and_outputs_kept() -> None:
    summary = summary_from_events(
        [
            triggered(),
            event(2, "Run.Started", 2, worker_id="w1", lease_expires_at="2030-01-01T00:01:00Z"),
            event(3, "Run.TaskReused", 3, task="a", source_run_id="orig", outputs=[], output_vars={"n": 1}),
            event(4, "Run.TaskStarted", 4, task="b", attempt=1),
            finished(5, "b", 1, "failed"),
            event(6, "Run.TaskStarted", 6, task="b", attempt=2),
            finished(7, "b", 2, "success", rows=7),
            event(8, "Run.TaskStarted", 8, task="c", attempt=1),
            finished(9, "c", 1, "failed"),
            event(10, "Run.Failed", 12, error="c failed", by="w1"),
        ]
    )
    assert summary is not None
    assert summary["status"] == "failed" and summary["error"] == "c failed"
    assert (summary["tasks_succeeded"], summary["tasks_failed"], summary["retry_count"]) == (2, 1, 1)
    assert summary["outputs"] == {"a": {"n": 1}, "b": {"rows": 7}}
    assert summary["started_at"] == "2030-01-01T00:00:02.000000Z"
    assert summary["duration_seconds"] == 10.0


def test_a_terminal_run_stays_terminal() -> None:
    summary = summary_from_events(
        [
            triggered(),
            event(2, "Run.Killed", 1, by="olga", reason=None),
            event(3, "Run.Succeeded", 2, by="w1"),
        ]
    )
    assert summary is not None
    assert (summary["status"], summary["error"], summary["completed_at"]) == (
        "killed",
        "killed",
        "2030-01-01T00:00:01.000000Z",
    )


def lineage(sequence: int, kind: str, second: int) -> EventRecord:
    return event(
        sequence,
        "Run.LineageReported",
        second,
        event_type=kind,
        event_time=f"2030-01-01T00:01:{second:02d}.000000Z",
        producer="p",
        job={"namespace": "ns", "name": "job"},
        run_facets={},
        inputs=[],
        outputs=[],
        parent=None,
    )


@pytest.mark.parametrize(
    ("kinds", "status"),
    [
        (["START"], "running"),
        (["START", "RUNNING"], "running"),
        (["START", "COMPLETE"], "success"),
        (["START", "FAIL"], "failed"),
        (["START", "ABORT"], "killed"),
        (["OTHER"], "pending"),
        (["START", "COMPLETE", "FAIL"], "success"),
        (["START", "OTHER"], "running"),
    ],
)
def test_openlineage_events_move_the_status_by_the_agreed_rule(kinds: list[str], status: str) -> None:
    events = [triggered({}, trigger_kind="openlineage")]
    events += [lineage(i + 2, kind, i) for i, kind in enumerate(kinds)]
    summary = summary_from_events(events)
    assert summary is not None and summary["status"] == status
    assert summary["tasks_total"] == 0


def test_an_openlineage_run_lasts_from_start_to_completion_by_event_time() -> None:
    summary = summary_from_events(
        [triggered({}, trigger_kind="openlineage"), lineage(2, "START", 5), lineage(3, "COMPLETE", 35)]
    )
    assert summary is not None and summary["duration_seconds"] == 30.0
