"""Recording OpenLineage RunEvents through the Ledger service on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from ledger.domain.openlineage import DatasetEvent, JobEvent, parse_lineage_event, parse_run_event
from ledger.domain.static_lineage import dataset_stream, job_stream
from ledger.errors import Conflict, NotFound
from ledger.hashing import definition_hash
from ledger.service import Ledger


def ol_event(
    run_id: str, event_type: str, event_time: str, *, job: str = "load", parent: str | None = None
) -> dict[str, Any]:
    facets: dict[str, Any] = {"custom": {"_producer": "t", "_schemaURL": "u", "n": [1, {"x": None}]}}
    if parent is not None:
        facets["parent"] = {
            "_producer": "t",
            "_schemaURL": "u",
            "run": {"runId": parent},
            "job": {"namespace": "ns", "name": "parent"},
        }
    return {
        "eventType": event_type,
        "eventTime": event_time,
        "run": {"runId": run_id, "facets": facets},
        "job": {"namespace": "ns", "name": job, "facets": {}},
        "inputs": [{"namespace": "db", "name": "raw.events"}],
        "outputs": [{"namespace": "db", "name": "clean.events"}],
        "producer": "tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json",
    }


def record(ledger: Ledger, raw: dict[str, Any], principal: str = "ol-client") -> Any:
    return ledger.record_openlineage(parse_run_event(raw), principal=principal)


def test_the_first_event_of_an_openlineage_run_creates_a_ledger_run(ledger: Ledger) -> None:
    run_id = str(uuid.uuid4())
    result = record(ledger, ol_event(run_id, "START", "2026-01-01T00:00:00Z"))
    assert (result.run_id, result.status, result.recorded) == (run_id, "running", True)
    events = ledger.stream_events(run_id)
    assert [e.type for e in events] == ["Run.Triggered", "Run.LineageReported"]
    trigger = events[0].data
    assert trigger["workflow"] == "ns/load"
    assert trigger["trigger_kind"] == "openlineage"
    assert trigger["triggered_by"] == "ol-client"
    assert trigger["definition"] == {}
    assert trigger["definition_hash"] == definition_hash({})
    assert trigger["parameters"] == {}
    reported = events[1].data
    assert reported["run_facets"]["custom"] == {"_producer": "t", "_schemaURL": "u", "n": [1, {"x": None}]}
    assert reported["inputs"][0]["name"] == "raw.events"
    assert all(e.recompute_hash() == e.hash for e in events)


def test_a_repeated_event_records_nothing(ledger: Ledger) -> None:
    run_id = str(uuid.uuid4())
    record(ledger, ol_event(run_id, "START", "2026-01-01T00:00:00Z"))
    again = record(ledger, ol_event(run_id, "START", "2026-01-01T00:00:00.000+00:00"))
    assert again.recorded is False
    assert len(ledger.stream_events(run_id)) == 2


def test_a_late_start_after_complete_is_recorded_but_the_run_stays_successful(
    ledger: Ledger,
) -> None:
    run_id = str(uuid.uuid4())
    record(ledger, ol_event(run_id, "COMPLETE", "2026-01-01T00:05:00Z"))
    late = record(ledger, ol_event(run_id, "START", "2026-01-01T00:00:00Z"))
    assert (late.recorded, late.status) == (True, "success")
    assert ledger.get_run(run_id).status == "success"
    assert [e.data.get("event_type") for e in ledger.stream_events(run_id)] == [None, "COMPLETE", "START"]


def test_the_parent_run_is_recorded_on_the_child_run(ledger: Ledger) -> None:
    parent_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
    record(ledger, ol_event(parent_id, "START", "2026-01-01T00:00:00Z", job="parent"))
    record(ledger, ol_event(child_id, "START", "2026-01-01T00:00:01Z", parent=parent_id))
    reported = ledger.stream_events(child_id)[1].data
    assert reported["parent"] == {"run_id": parent_id, "namespace": "ns", "name": "parent"}


def test_an_event_for_a_run_of_another_job_is_refused(ledger: Ledger) -> None:
    run_id = str(uuid.uuid4())
    record(ledger, ol_event(run_id, "START", "2026-01-01T00:00:00Z"))
    with pytest.raises(Conflict):
        record(ledger, ol_event(run_id, "COMPLETE", "2026-01-01T00:01:00Z", job="other"))
    assert len(ledger.stream_events(run_id)) == 2


def test_concurrent_first_events_of_one_run_make_one_run_with_both_events(
    ledger: Ledger,
) -> None:
    run_id = str(uuid.uuid4())
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        barrier.wait()
        try:
            record(ledger, ol_event(run_id, "RUNNING", f"2026-01-01T00:00:0{n}Z"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = ledger.stream_events(run_id)
    assert [e.type for e in events].count("Run.Triggered") == 1
    assert sorted(e.data["event_time"] for e in events[1:]) == [
        f"2026-01-01T00:00:0{n}.000000Z" for n in range(4)
    ]


def test_a_pending_openlineage_run_is_never_claimed_by_a_worker(ledger: Ledger) -> None:
    run_id = str(uuid.uuid4())
    result = record(ledger, ol_event(run_id, "OTHER", "2026-01-01T00:00:00Z"))
    assert result.status == "pending"
    assert ledger.claim(run_id, worker_id="w1") is None
    assert ledger.claim_first([run_id], worker_id="w1") is None
    assert [e.type for e in ledger.stream_events(run_id)] == ["Run.Triggered", "Run.LineageReported"]


def test_an_event_differing_only_in_a_facet_is_recorded_not_dropped_as_a_repeat(
    ledger: Ledger,
) -> None:
    run_id = str(uuid.uuid4())
    record(ledger, ol_event(run_id, "START", "2026-01-01T00:00:00Z"))
    richer = ol_event(run_id, "START", "2026-01-01T00:00:00Z")
    richer["run"]["facets"]["nominalTime"] = {
        "_producer": "t",
        "_schemaURL": "u",
        "nominalStartTime": "2026-01-01T00:00:00Z",
    }
    assert record(ledger, richer).recorded is True
    assert record(ledger, richer).recorded is False
    reported = [e.data for e in ledger.stream_events(run_id)[1:]]
    assert len(reported) == 2
    assert "nominalTime" in reported[1]["run_facets"]


def test_jobs_whose_joined_names_collide_are_two_jobs_and_a_run_keeps_its_own(
    ledger: Ledger,
) -> None:
    run_id = str(uuid.uuid4())
    first = ol_event(run_id, "START", "2026-01-01T00:00:00Z")
    first["job"] = {"namespace": "team/x", "name": "job"}
    record(ledger, first)
    other = ol_event(run_id, "COMPLETE", "2026-01-01T00:01:00Z")
    other["job"] = {"namespace": "team", "name": "x/job"}
    with pytest.raises(Conflict):
        record(ledger, other)
    events = ledger.stream_events(run_id)
    assert len(events) == 2
    assert events[0].data["workflow"] == "team/x/job"  # the display name, unchanged
    assert (events[1].data["job"]["namespace"], events[1].data["job"]["name"]) == ("team/x", "job")


STATIC = {"producer": "tests", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}


def test_a_dataset_event_is_recorded_on_the_dataset_stream_once_and_creates_no_run(
    ledger: Ledger,
) -> None:
    raw = STATIC | {
        "eventTime": "2026-01-01T00:00:00Z",
        "dataset": {
            "namespace": "db",
            "name": "raw.events",
            "facets": {"schema": {"_producer": "t", "_schemaURL": "u", "fields": [{"name": "id"}]}},
        },
    }
    event = parse_lineage_event(raw)
    assert isinstance(event, DatasetEvent)
    assert ledger.record_static_lineage(event) is True
    again = parse_lineage_event(raw)
    assert isinstance(again, DatasetEvent)
    assert ledger.record_static_lineage(again) is False
    events = ledger.stream_events(dataset_stream("db", "raw.events"))
    assert [e.type for e in events] == ["DatasetLineage.Declared", "DatasetLineage.Reported"]
    assert events[1].data["facets"]["schema"]["fields"] == [{"name": "id"}]
    assert ledger.reader.stream_ids("") == [dataset_stream("db", "raw.events")]


def test_a_job_event_is_recorded_on_the_job_stream_with_its_datasets(ledger: Ledger) -> None:
    raw = STATIC | {
        "eventTime": "2026-01-01T00:00:00Z",
        "job": {"namespace": "team", "name": "x/job", "facets": {}},
        "inputs": [{"namespace": "db", "name": "raw.events"}],
        "outputs": [{"namespace": "db", "name": "clean.events"}],
    }
    event = parse_lineage_event(raw)
    assert isinstance(event, JobEvent)
    assert ledger.record_static_lineage(event) is True
    changed = raw | {"eventTime": "2026-01-01T00:00:01Z"}
    later = parse_lineage_event(changed)
    assert isinstance(later, JobEvent)
    assert ledger.record_static_lineage(later) is True
    events = ledger.stream_events(job_stream("team", "x/job"))
    assert [e.type for e in events] == ["JobLineage.Declared", "JobLineage.Reported", "JobLineage.Reported"]
    assert events[0].data == {"namespace": "team", "name": "x/job", "workspace": "default"}
    assert events[1].data["outputs"][0]["name"] == "clean.events"
    assert job_stream("team", "x/job") != job_stream("team/x", "job")


def test_a_run_event_is_recorded_in_the_workspace_named_and_a_run_id_of_another_is_not_found(
    ledger: Ledger,
) -> None:
    ledger.create_workspace("red", principal="admin")
    run_id = str(uuid.uuid4())
    event = parse_run_event(ol_event(run_id, "START", "2026-01-01T00:00:00Z"))
    assert ledger.record_openlineage(event, principal="ol", workspace="red").recorded is True
    trigger = ledger.stream_events(run_id)[0].data
    assert (trigger["workspace"], trigger["workflow"]) == ("red", "ns/load")
    assert ledger.run_workspace(run_id) == "red"
    # the same runId posted in default names red's run: not disclosed, nothing written
    with pytest.raises(NotFound):
        ledger.record_openlineage(event, principal="ol")
    assert len(ledger.stream_events(run_id)) == 2
    assert ledger.record_openlineage(event, principal="ol", workspace="red").recorded is False  # a repeat


def test_static_lineage_of_the_same_dataset_in_two_workspaces_is_two_streams_each_with_its_repeats(
    ledger: Ledger,
) -> None:
    ledger.create_workspace("red", principal="admin")
    raw = STATIC | {"eventTime": "2026-01-01T00:00:00Z", "dataset": {"namespace": "db", "name": "raw.events"}}
    event = parse_lineage_event(raw)
    assert isinstance(event, DatasetEvent)
    assert ledger.record_static_lineage(event) is True
    assert ledger.record_static_lineage(event, workspace="red") is True  # not a repeat of default's
    assert ledger.record_static_lineage(event, workspace="red") is False
    assert dataset_stream("db", "raw.events", "red") != dataset_stream("db", "raw.events")
    assert dataset_stream("db", "raw.events", "default") == dataset_stream("db", "raw.events")
    red = ledger.stream_events(dataset_stream("db", "raw.events", "red"))
    assert [e.type for e in red] == ["DatasetLineage.Declared", "DatasetLineage.Reported"]
    assert red[0].data == {"namespace": "db", "name": "raw.events", "workspace": "red"}
    job = parse_lineage_event(
        STATIC | {"eventTime": "2026-01-01T00:00:00Z", "job": {"namespace": "t", "name": "j"}}
    )
    assert isinstance(job, JobEvent)
    assert ledger.record_static_lineage(job, workspace="red") is True
    assert ledger.record_static_lineage(job) is True
    assert ledger.stream_events(job_stream("t", "j", "red"))[0].data["workspace"] == "red"
