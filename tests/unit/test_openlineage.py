"""OpenLineage RunEvent validation, the facts recorded, and the status rule."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.domain.openlineage import (
    OPENLINEAGE_DEFINITION_HASH,
    lineage_facts,
    parse_run_event,
)
from ledger.domain.run import Run
from ledger.domain.status import RunStatus, status_after
from ledger.errors import Conflict, InvalidRequest
from ledger.hashing import definition_hash

RUN_ID = "0190a2b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"
PARENT_ID = "0190a2b4-0000-7000-8000-00000000abcd"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def ol_event(
    event_type: str = "START", event_time: str = "2026-01-02T03:04:05.123+02:00", **overrides: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": event_time,
        "run": {
            "runId": RUN_ID,
            "facets": {
                "nominalTime": {
                    "_producer": "p",
                    "_schemaURL": "s",
                    "nominalStartTime": "2026-01-01T00:00:00Z",
                    "weird": [1, 2.5, None, {"deep": True}],
                }
            },
        },
        "job": {
            "namespace": "airflow",
            "name": "daily.load",
            "facets": {"jobType": {"_producer": "p", "_schemaURL": "s", "jobType": "TASK"}},
        },
        "inputs": [
            {
                "namespace": "postgres://db:5432",
                "name": "public.raw",
                "facets": {"schema": {"fields": [{"name": "id", "type": "int"}]}},
                "inputFacets": {"dataQualityMetrics": {"rowCount": 10}},
            }
        ],
        "outputs": [
            {
                "namespace": "s3://bucket",
                "name": "clean/day.parquet",
                "outputFacets": {"outputStatistics": {"rowCount": 9}},
            }
        ],
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    event.update(overrides)
    return event


def triggered_run() -> Run:
    return Run.trigger(
        run_id=RUN_ID,
        at=AT,
        workflow="airflow/daily.load",
        version=1,
        definition_hash=OPENLINEAGE_DEFINITION_HASH,
        definition={},
        engine_version="0",
        triggered_by="ci",
        trigger_kind="openlineage",
        parameters={},
        replay_of=None,
        resume_of=None,
        resume_from_task=None,
        batch_id=None,
        idempotency_key=None,
    )


def test_a_valid_event_is_recorded_with_its_facets_verbatim_and_its_time_in_utc() -> None:
    raw = ol_event()
    facts = lineage_facts(parse_run_event(copy.deepcopy(raw)))
    assert facts["event_type"] == "START"
    assert facts["event_time"] == "2026-01-02T01:04:05.123000Z"
    assert facts["run_facets"] == raw["run"]["facets"]
    assert facts["job"] == raw["job"]
    assert facts["inputs"] == [
        {
            "namespace": "postgres://db:5432",
            "name": "public.raw",
            "facets": raw["inputs"][0]["facets"],
            "input_facets": raw["inputs"][0]["inputFacets"],
        }
    ]
    assert facts["outputs"][0]["output_facets"] == {"outputStatistics": {"rowCount": 9}}
    assert facts["producer"] == raw["producer"]
    assert facts["schema_url"] == raw["schemaURL"]
    assert facts["parent"] is None


def test_the_parent_run_facet_is_recorded_as_a_link_to_the_parent_run() -> None:
    raw = ol_event()
    raw["run"]["facets"]["parent"] = {
        "_producer": "p",
        "_schemaURL": "s",
        "run": {"runId": PARENT_ID.upper()},
        "job": {"namespace": "airflow", "name": "dag"},
    }
    facts = lineage_facts(parse_run_event(raw))
    assert facts["parent"] == {"run_id": PARENT_ID, "namespace": "airflow", "name": "dag"}
    assert facts["run_facets"]["parent"]["run"]["runId"] == PARENT_ID.upper()


def test_a_missing_event_type_means_other() -> None:
    raw = ol_event()
    del raw["eventType"]
    assert parse_run_event(raw).event_type == "OTHER"


def _without(path: str) -> dict[str, Any]:
    raw = ol_event()
    *parents, last = path.split(".")
    target = raw
    for part in parents:
        target = target[part]
    del target[last]
    return raw


@pytest.mark.parametrize(
    "raw",
    [
        ol_event(run={"runId": "not-a-uuid"}),
        ol_event(event_type="FINISHED"),
        ol_event(event_time="yesterday"),
        ol_event(job={"namespace": "", "name": "x"}),
        ol_event(inputs=[{"namespace": "n"}]),
        ol_event(inputs="public.raw"),
        ol_event(
            run={
                "runId": RUN_ID,
                "facets": {"parent": {"run": {"runId": "zzz"}, "job": {"namespace": "a", "name": "b"}}},
            }
        ),
        ol_event(run={"runId": RUN_ID, "facets": {"nominalTime": "not an object"}}),
        ol_event(run={"runId": RUN_ID, "facets": {"x": {"v": float("nan")}}}),
        ol_event(run={"runId": RUN_ID, "facets": {"x": {"v": 2**64}}}),
        ol_event(producer=7),
        _without("eventTime"),
        _without("producer"),
        _without("schemaURL"),
        _without("run.runId"),
        _without("job.name"),
        [],
        "START",
    ],
    ids=[
        "run-id-not-a-uuid",
        "unknown-event-type",
        "bad-event-time",
        "empty-namespace",
        "dataset-without-name",
        "inputs-not-a-list",
        "parent-run-id-not-a-uuid",
        "facet-not-an-object",
        "nan",
        "huge-integer",
        "producer-not-a-string",
        "no-event-time",
        "no-producer",
        "no-schema-url",
        "no-run-id",
        "no-job-name",
        "a-list",
        "a-string",
    ],
)
def test_a_malformed_event_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidRequest):
        parse_run_event(raw)


@pytest.mark.parametrize(
    ("current", "event_type", "expected"),
    [
        ("pending", "START", "running"),
        ("pending", "RUNNING", "running"),
        ("running", "COMPLETE", "success"),
        ("running", "FAIL", "failed"),
        ("running", "ABORT", "killed"),
        ("pending", "COMPLETE", "success"),
        ("running", "OTHER", "running"),
        ("pending", "OTHER", "pending"),
        ("success", "START", "success"),
        ("failed", "COMPLETE", "failed"),
        ("killed", "RUNNING", "killed"),
    ],
)
def test_the_status_follows_the_event_type_but_a_terminal_run_stays_terminal(
    current: str, event_type: str, expected: str
) -> None:
    def status_after_lineage(current: str, event_type: str) -> RunStatus:
        return status_after(current, "Run.LineageReported", {"event_type": event_type})

    assert status_after_lineage(current, event_type) == RunStatus(expected)


def test_the_openlineage_definition_hash_is_the_hash_of_an_empty_object() -> None:
    assert definition_hash({}) == OPENLINEAGE_DEFINITION_HASH
    assert OPENLINEAGE_DEFINITION_HASH == ("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")


def test_a_run_records_each_event_once_and_a_late_start_keeps_it_successful() -> None:
    run = triggered_run()
    complete = lineage_facts(parse_run_event(ol_event("COMPLETE", "2026-01-02T03:05:00Z")))
    start = lineage_facts(parse_run_event(ol_event("START", "2026-01-02T03:04:00Z")))
    assert run.record_lineage(at=AT, **complete) is True
    assert run.status == RunStatus.SUCCESS
    assert run.record_lineage(at=AT, **complete) is False
    assert run.record_lineage(at=AT, **start) is True
    assert run.status == RunStatus.SUCCESS
    events = run.collect_events()
    assert [type(e).__qualname__ for e in events] == [
        "Run.Triggered",
        "Run.LineageReported",
        "Run.LineageReported",
    ]
    assert events[2].prev_hash == events[1].hash  # type: ignore[attr-defined]


def test_a_failed_run_keeps_the_error_message_facet() -> None:
    run = triggered_run()
    fail = ol_event("FAIL")
    fail["run"]["facets"]["errorMessage"] = {"message": "division by zero", "programmingLanguage": "python"}
    run.record_lineage(at=AT, **lineage_facts(parse_run_event(fail)))
    assert (run.status, run.error) == (RunStatus.FAILED, "division by zero")


def test_a_run_that_is_not_an_openlineage_run_refuses_lineage_events() -> None:
    run = Run.trigger(
        run_id=RUN_ID,
        at=AT,
        workflow="w",
        version=1,
        definition_hash="0" * 64,
        definition={},
        engine_version="0",
        triggered_by="ci",
        trigger_kind="name",
        parameters={},
        replay_of=None,
        resume_of=None,
        resume_from_task=None,
        batch_id=None,
        idempotency_key=None,
    )
    with pytest.raises(Conflict):
        run.record_lineage(at=AT, **lineage_facts(parse_run_event(ol_event())))


def test_run_ids_are_kept_in_canonical_lowercase_form() -> None:
    raw = ol_event(run={"runId": str(uuid.UUID(RUN_ID)).upper()})
    assert parse_run_event(raw).run_id == RUN_ID
