"""The read models' queries on both backends: filters, cursor paging, stats percentiles,
lineage across runs, the audit trail, executor work lists and batch progress."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from ledger.domain.openlineage import RunEvent
from ledger.errors import InvalidRequest
from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.runner import ProjectionRunner
from tests.integration.projections.conftest import FILE_PASSING_DEFINITION, Driver, sha


def test_a_summary_carries_every_spec_field_with_outputs_and_retries(
    driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    run_id = driver.trigger("report")
    driver.succeed(run_id, extract_attempts=3)
    runner.catch_up()
    summary = views.run_summary(run_id)
    assert summary is not None
    assert list(summary) == [
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
        "workspace",
        "labels",
        "held",
        "expunged",
    ]
    assert summary["status"] == "success" and summary["triggered_by"] == "carol"
    assert summary["workspace"] == "default"
    assert summary["parameters"] == {"query": "report", "limit": 5}
    assert (summary["tasks_total"], summary["tasks_succeeded"], summary["tasks_failed"]) == (2, 2, 0)
    assert summary["retry_count"] == 2
    assert summary["outputs"] == {"extract": {"rows": 3}, "load": {"loaded": True}}
    assert summary["created_at"] < summary["started_at"] < summary["completed_at"]
    assert summary["duration_seconds"] is not None and summary["duration_seconds"] >= 0
    assert views.run_summary("no-such-run") is None


def test_replays_name_their_original_and_failures_carry_their_error(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    original = driver.trigger("x")
    driver.fail(original)
    replay = ledger.replay(original, overrides={"limit": 9}, principal="dave").run_id
    runner.catch_up()
    failed = views.run_summary(original)
    assert failed is not None
    assert (failed["status"], failed["error"], failed["tasks_failed"]) == ("failed", "extract failed", 1)
    replayed = views.run_summary(replay)
    assert replayed is not None
    assert (replayed["trigger_kind"], replayed["replay_of"], replayed["triggered_by"]) == (
        "replay",
        original,
        "dave",
    )
    assert replayed["parameters"] == {"query": "x", "limit": 9}


def test_list_filters_combine_with_and_including_parameters(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    a = driver.trigger("apples", principal="carol", limit=1)
    b = driver.trigger("apples", principal="dave", limit=2)
    c = driver.trigger("pears", principal="dave", limit=2)
    driver.succeed(b)
    runner.catch_up()

    def ids(**filters: Any) -> set[str]:
        return {r["run_id"] for r in views.list_runs(**filters)[0]}

    assert ids() == {a, b, c}
    assert ids(params={"query": "apples"}) == {a, b}
    assert ids(params={"query": "apples", "limit": "2"}) == {b}
    assert ids(triggered_by="dave") == {b, c}
    assert ids(triggered_by="dave", status="pending") == {c}
    assert ids(workflow="etl", status="success") == {b}
    assert ids(workflow="other") == set()
    created = views.run_summary(b)["created_at"]  # type: ignore[index]
    assert ids(created_after=created) == {b, c}
    assert ids(created_before=created) == {a}
    assert ids(created_after=created, created_before=created.replace("Z", "+00:00")) == set()
    with pytest.raises(InvalidRequest):
        views.list_runs(created_after="yesterday")


def test_pages_are_newest_first_and_the_cursor_walks_every_run_once(
    driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    runs = [driver.trigger(f"q{i}") for i in range(7)]
    runner.catch_up()
    seen: list[str] = []
    page, cursor = views.list_runs(limit=3)
    seen += [r["run_id"] for r in page]
    while cursor is not None:
        page, cursor = views.list_runs(limit=3, cursor=cursor)
        seen += [r["run_id"] for r in page]
    assert seen == list(reversed(runs))
    with pytest.raises(InvalidRequest):
        views.list_runs(limit=1001)
    with pytest.raises(InvalidRequest):
        views.list_runs(cursor="not-a-cursor")


def test_a_parameter_filtered_list_pages_newest_first_through_every_match_once(
    driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    matching = [driver.trigger("needle" if i % 2 == 0 else "hay", limit=i % 3) for i in range(9)]
    wanted = [run for i, run in enumerate(matching) if i % 2 == 0]
    runner.catch_up()
    seen: list[str] = []
    page, cursor = views.list_runs(params={"query": "needle"}, limit=2)
    seen += [r["run_id"] for r in page]
    while cursor is not None:
        page, cursor = views.list_runs(params={"query": "needle"}, limit=2, cursor=cursor)
        seen += [r["run_id"] for r in page]
    assert seen == list(reversed(wanted))
    both = views.list_runs(params={"query": "needle", "limit": "0"}, status="pending")[0]
    assert [r["run_id"] for r in both] == [matching[6], matching[0]]


def test_stats_count_by_status_and_match_independently_computed_percentiles(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    for i in range(6):
        run_id = driver.trigger(f"s{i}")
        driver.succeed(run_id) if i % 3 else driver.fail(run_id)
    driver.trigger("waiting")
    runner.catch_up()
    page, _ = views.list_runs()
    durations = sorted(r["duration_seconds"] for r in page if r["duration_seconds"] is not None)
    stats = views.stats(workflow="etl")
    assert stats["total_runs"] == 7
    assert stats["by_status"] == {
        "pending": 1,
        "running": 0,
        "waiting": 0,
        "success": 4,
        "failed": 2,
        "killed": 0,
    }
    assert stats["avg_duration_seconds"] == pytest.approx(statistics.fmean(durations))
    quantiles = statistics.quantiles(durations, n=100, method="inclusive")
    assert stats["p50_duration_seconds"] == pytest.approx(statistics.median(durations))
    assert stats["p95_duration_seconds"] == pytest.approx(quantiles[94])
    assert [w["workflow"] for w in stats["per_workflow"]] == ["etl"]
    assert stats["per_workflow"][0]["total_runs"] == 7
    assert views.stats(workflow="nope")["total_runs"] == 0
    newest = max(r["created_at"] for r in page)
    assert views.stats(created_after=newest)["total_runs"] == 1


def test_lineage_links_runs_through_a_shared_file_up_to_the_requested_depth(
    driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    producer = driver.trigger("make")
    driver.succeed(producer, produced=sha("a"))
    middle = driver.trigger("use")
    driver.succeed(middle, consumed=sha("a"), produced=sha("b"))
    last = driver.trigger("end")
    driver.succeed(last, consumed=sha("b"))
    runner.catch_up()

    def runs_in(graph: dict[str, Any] | None) -> set[str]:
        assert graph is not None
        return {n["run_id"] for n in graph["nodes"] if n["kind"] == "run"}

    assert runs_in(views.lineage(producer, depth=0)) == {producer}
    assert runs_in(views.lineage(producer)) == {producer, middle}
    assert runs_in(views.lineage(producer, depth=2)) == {producer, middle, last}
    graph = views.lineage(middle, depth=0)
    assert graph is not None
    edges = {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
    task = f"task:{middle}/extract"
    assert (f"file:{sha('a')}", task, "consumed") in edges
    assert (task, f"file:{sha('b')}", "produced") in edges
    assert (task, f"run:{middle}", "part_of") in edges
    files = [n for n in graph["nodes"] if n["kind"] == "file"]
    assert {f["sha256"] for f in files} == {sha("a"), sha("b")}
    assert views.lineage("no-such-run") is None


def test_the_audit_trail_lists_transitions_with_actors_in_order(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    run_id = driver.trigger("audited", principal="carol")
    ledger.claim(run_id, worker_id="w7")
    ledger.cancel(run_id, principal="olga", reason="wrong input")
    runner.catch_up()
    entries = views.audit(run_id)
    assert [(e["actor"], e["action"], e["from_status"], e["to_status"]) for e in entries] == [
        ("carol", "triggered", None, "pending"),
        ("w7", "started", "pending", "running"),
        ("olga", "killed", "running", "killed"),
    ]
    assert entries[2]["detail"] == {"reason": "wrong input"}
    assert entries[0]["at"] < entries[1]["at"] < entries[2]["at"]


def test_a_lapsed_lease_shows_as_worker_lost_in_the_audit_trail(
    settings: Settings, runner: ProjectionRunner, views: ReadModels
) -> None:
    from datetime import UTC, datetime, timedelta

    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    ledger = Ledger(settings, clock=lambda: now[0])
    try:
        ledger.register_workflow(FILE_PASSING_DEFINITION, principal="alice")
        run_id = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="carol").run_id
        ledger.claim(run_id, worker_id="w1")
        runner.catch_up()
        later = "2030-01-01T00:10:00.000000Z"
        assert views.lapsed_run_ids(later) == [run_id]
        assert views.lapsed_run_ids("2030-01-01T00:00:01.000000Z") == []
        now[0] += timedelta(minutes=10)
        assert ledger.expire_lease(run_id)
        runner.catch_up()
    finally:
        ledger.close()
    assert views.audit(run_id)[-1]["action"] == "worker_lost"
    assert views.run_summary(run_id)["error"] == "worker_lost"  # type: ignore[index]
    assert views.lapsed_run_ids(later) == []


def test_pending_runs_come_oldest_first_and_respect_batch_parallelism(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    single = driver.trigger("alone")
    batch = ledger.trigger_batch(
        workflow="etl", items=["a", "b", "c"], input_param="query", parallelism=2, principal="carol"
    )
    runner.catch_up()
    assert views.pending_run_ids() == [single, *batch.run_ids[:2]]
    ledger.claim(batch.run_ids[0], worker_id="w1")
    runner.catch_up()
    assert views.pending_run_ids() == [single, batch.run_ids[1]]
    progress = views.batch_progress(batch.batch_id)
    assert progress == {
        "batch_id": batch.batch_id,
        "status": "running",
        "progress": {"total_items": 3, "processed_items": 0, "failed_items": 0},
        "run_ids": batch.run_ids,
    }
    for run_id in batch.run_ids[1:]:
        ledger.cancel(run_id, principal="olga")
    runner.catch_up()
    progress = views.batch_progress(batch.batch_id)
    assert progress is not None
    assert progress["progress"] == {"total_items": 3, "processed_items": 2, "failed_items": 2}
    assert views.run_summary(batch.run_ids[2])["batch_id"] == batch.batch_id  # type: ignore[index]
    assert views.batch_progress("no-such-batch") is None


def emit_start(
    ledger: Ledger,
    run_id: str,
    job: str,
    facets: dict[str, Any],
    *,
    workspace: str = "default",
    outputs: list[dict[str, Any]] | None = None,
) -> None:
    """An OpenLineage START of job ``ns``/``job`` for ``run_id``, recorded in ``workspace``."""
    ledger.record_openlineage(
        RunEvent.model_validate(
            {
                "eventType": "START",
                "eventTime": "2026-11-22T03:00:00Z",
                "producer": "https://example.test/producer",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": run_id, "facets": facets},
                "job": {"namespace": "ns", "name": job},
                "inputs": [],
                "outputs": outputs or [],
            }
        ),
        principal="ol",
        workspace=workspace,
    )


def test_an_openlineage_parent_facet_links_child_and_parent_runs_in_both_lineages(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    parent_id, child_id = "6f1b3c1e-0000-4000-8000-000000000001", "6f1b3c1e-0000-4000-8000-000000000002"

    emit_start(ledger, parent_id, "dag", {})
    emit_start(
        ledger,
        child_id,
        "dag.task",
        {
            "parent": {
                "_producer": "https://example.test/producer",
                "_schemaURL": "https://example.test/parent",
                "run": {"runId": parent_id},
                "job": {"namespace": "ns", "name": "dag"},
            }
        },
    )
    runner.catch_up()
    link = (f"run:{child_id}", f"run:{parent_id}", "part_of")
    for run_id in (child_id, parent_id):
        graph = views.lineage(run_id, depth=1)
        assert graph is not None
        assert link in {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}
    parent_only = views.lineage(parent_id, depth=0)
    assert parent_only is not None
    assert link not in {(e["source"], e["target"], e["kind"]) for e in parent_only["edges"]}


def test_a_parent_facet_naming_another_workspace_s_run_first_claims_nothing_of_it(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    """A parent facet in blue names a run id before red's run of that id exists: the run's
    workspace in the view is still red's (its own trigger's), so blue never reads its graph."""
    ledger.create_workspace("red", principal="admin")
    ledger.create_workspace("blue", principal="admin")
    taken, child = "6f1b3c1e-0000-4000-8000-0000000000a1", "6f1b3c1e-0000-4000-8000-0000000000a2"

    parent = {
        "_producer": "https://example.test/producer",
        "_schemaURL": "https://example.test/parent",
        "run": {"runId": taken},
        "job": {"namespace": "ns", "name": "dag"},
    }
    emit_start(ledger, child, "dag.task", {"parent": parent}, workspace="blue")
    outputs = [{"namespace": "warehouse", "name": "red.secret_table"}]
    emit_start(ledger, taken, "dag", {}, workspace="red", outputs=outputs)
    for rebuilt in (False, True):
        if rebuilt:
            runner.rebuild()
        runner.catch_up()
        assert views.lineage(taken, depth=2, workspace="blue") is None
        red = views.lineage(taken, depth=2, workspace="red")
        assert red is not None
        assert "dataset:warehouse/red.secret_table" in {n["id"] for n in red["nodes"]}
        blue = views.lineage(child, depth=2, workspace="blue")
        assert blue is not None
        ids = {n["id"] for n in blue["nodes"]} | {
            x for e in blue["edges"] for x in (e["source"], e["target"])
        }
        assert f"run:{taken}" not in ids and "dataset:warehouse/red.secret_table" not in ids


def test_runs_reported_by_openlineage_are_never_offered_to_workers(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    ledger.record_openlineage(
        RunEvent.model_validate(
            {
                "eventType": "OTHER",
                "eventTime": "2026-11-22T03:00:00Z",
                "producer": "https://example.test/producer",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": "6f1b3c1e-0000-4000-8000-000000000003"},
                "job": {"namespace": "ns", "name": "elsewhere"},
            }
        ),
        principal="ol",
    )
    ours = driver.trigger("ours")
    runner.catch_up()
    summary = views.run_summary("6f1b3c1e-0000-4000-8000-000000000003")
    assert summary is not None and summary["status"] == "pending"
    assert views.pending_run_ids() == [ours]
