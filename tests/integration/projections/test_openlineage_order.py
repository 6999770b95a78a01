"""OpenLineage events out of order, on both backends: a late START still dates the run's
start, and a terminal event after the run's end is shown in the summary and the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.domain.openlineage import parse_run_event
from ledger.service import Ledger
from projections import ReadModels
from projections.runner import ProjectionRunner


def report(ledger: Ledger, run_id: str, event_type: str, at: str, **run_facets: Any) -> None:
    raw = {
        "eventType": event_type,
        "eventTime": at,
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": "ns", "name": "late"},
        "producer": "tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
    }
    ledger.record_openlineage(parse_run_event(raw), principal="ol")


def test_a_start_arriving_after_complete_sets_started_at_and_the_duration(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    run_id = str(uuid.uuid4())
    report(ledger, run_id, "COMPLETE", "2026-01-01T00:05:00Z")
    report(ledger, run_id, "START", "2026-01-01T00:00:00Z")
    report(ledger, run_id, "RUNNING", "2026-01-01T00:01:00Z")
    runner.catch_up()
    summary = views.run_summary(run_id)
    assert summary is not None
    assert summary["status"] == "success"
    assert summary["started_at"] == "2026-01-01T00:00:00.000000Z"
    assert summary["completed_at"] == "2026-01-01T00:05:00.000000Z"
    assert summary["duration_seconds"] == 300.0
    assert summary["late_events"] == []


def test_a_fail_after_complete_is_a_late_event_in_the_summary_and_the_audit_trail(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    run_id = str(uuid.uuid4())
    report(ledger, run_id, "START", "2026-01-01T00:00:00Z")
    report(ledger, run_id, "COMPLETE", "2026-01-01T00:05:00Z")
    report(ledger, run_id, "FAIL", "2026-01-01T00:06:00Z", errorMessage={"message": "boom"})
    runner.catch_up()
    summary = views.run_summary(run_id)
    assert summary is not None
    assert (summary["status"], summary["error"]) == ("success", None)
    assert summary["late_events"] == [{"event_type": "FAIL", "event_time": "2026-01-01T00:06:00.000000Z"}]
    entries = views.audit(run_id)
    assert [(e["action"], e["to_status"], e["detail"].get("late")) for e in entries] == [
        ("triggered", "pending", None),
        ("openlineage_start", "running", None),
        ("openlineage_complete", "success", None),
        ("openlineage_fail", None, True),
    ]
