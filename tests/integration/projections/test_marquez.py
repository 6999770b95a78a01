"""The Marquez read model on both backends: jobs keyed by (namespace, name), runs with their
state, datasets with fields and versions, the lineage graph by node both ways, column lineage,
the event feed and search."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.domain.openlineage import DatasetEvent, parse_lineage_event, parse_run_event
from ledger.service import Ledger
from projections import ReadModels
from projections.runner import ProjectionRunner
from projections.views import marquez_graph as graph
from projections.views import marquez_queries as q

URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def schema(*names: str) -> dict[str, Any]:
    return {"_producer": "t", "_schemaURL": "u", "fields": [{"name": n, "type": "int"} for n in names]}


def emit(ledger: Ledger, run_id: str, event_type: str, at: str, job: tuple[str, str], **parts: Any) -> None:
    raw = {
        "eventType": event_type,
        "eventTime": at,
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": job[0], "name": job[1]},
        "producer": "tests",
        "schemaURL": URL,
    } | parts
    ledger.record_openlineage(parse_run_event(raw), principal="ol")


def test_jobs_whose_joined_names_collide_are_two_jobs_each_with_its_latest_run(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    emit(ledger, a, "START", "2026-01-01T00:00:00Z", ("team/x", "job"))
    emit(ledger, a, "COMPLETE", "2026-01-01T00:01:00Z", ("team/x", "job"))
    emit(ledger, b, "FAIL", "2026-01-01T00:02:00Z", ("team", "x/job"))
    runner.catch_up()
    one = views.marquez(lambda c, t: q.job(c, t, "default", "team/x", "job"))
    two = views.marquez(lambda c, t: q.job(c, t, "default", "team", "x/job"))
    assert one is not None and two is not None
    assert (one["latestRun"]["id"], one["latestRun"]["state"]) == (a, "COMPLETED")
    assert (two["latestRun"]["id"], two["latestRun"]["state"]) == (b, "FAILED")
    assert one["latestRun"]["durationMs"] == 60_000
    assert [n["name"] for n in views.marquez(lambda c, t: q.namespaces(c, t, "default"))] == [
        "team",
        "team/x",
    ]


def test_datasets_versions_lineage_by_node_and_column_lineage(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    ns = "duckdb://db:5432"  # a namespace with ':' in it
    raw = {"namespace": ns, "name": "raw", "facets": {"schema": schema("id", "v")}}
    stg_facets = {
        "schema": schema("id"),
        "columnLineage": {
            "_producer": "t",
            "_schemaURL": "u",
            "fields": {"id": {"inputFields": [{"namespace": ns, "name": "raw", "field": "id"}]}},
        },
    }
    stg = {"namespace": ns, "name": "stg", "facets": stg_facets}
    mart = {"namespace": ns, "name": "mart", "facets": {"schema": schema("id")}}
    for n, (job, source, target) in enumerate([("m.stg", raw, stg), ("m.mart", stg, mart)]):
        run_id = str(uuid.uuid4())
        emit(ledger, run_id, "START", f"2026-01-01T00:0{n}:00Z", ("dbt", job))
        emit(
            ledger,
            run_id,
            "COMPLETE",
            f"2026-01-01T00:0{n}:30Z",
            ("dbt", job),
            inputs=[source],
            outputs=[target],
        )
    static = {"eventTime": "2026-01-01T01:00:00Z", "producer": "t", "schemaURL": URL}
    ds_event = parse_lineage_event(static | {"dataset": {"namespace": ns, "name": "lonely"}})
    assert isinstance(ds_event, DatasetEvent)
    ledger.record_static_lineage(ds_event)
    runner.catch_up()

    stg_row = views.marquez(lambda c, t: q.dataset(c, t, "default", ns, "stg"))
    assert stg_row is not None and [f["name"] for f in stg_row["fields"]] == ["id"]
    versions, total = views.marquez(lambda c, t: q.versions(c, t, "default", ns, "stg", 10, 0))
    assert total == 1 and versions[0]["createdByRun"] is not None
    assert versions[0]["version"] == stg_row["currentVersion"]

    found = views.marquez(lambda c, t: graph.lineage(c, t, "default", f"dataset:{ns}:stg", 2))
    assert found is not None
    ids = {node["id"] for node in found["graph"]}
    assert ids == {f"dataset:{ns}:{d}" for d in ("raw", "stg", "mart")} | {"job:dbt:m.stg", "job:dbt:m.mart"}
    node = next(n for n in found["graph"] if n["id"] == f"dataset:{ns}:stg")
    assert node["inEdges"] == [{"origin": "job:dbt:m.stg", "destination": f"dataset:{ns}:stg"}]
    assert node["outEdges"] == [{"origin": f"dataset:{ns}:stg", "destination": "job:dbt:m.mart"}]
    near = views.marquez(lambda c, t: graph.lineage(c, t, "default", "job:dbt:m.mart", 0))
    assert near is not None and {n["id"] for n in near["graph"]} == {
        "job:dbt:m.mart",
        f"dataset:{ns}:stg",
        f"dataset:{ns}:mart",
    }
    assert views.marquez(lambda c, t: graph.lineage(c, t, "default", "job:dbt:nope", 2)) is None

    columns: dict[str, Any] | None = views.marquez(
        lambda c, t: graph.column_lineage(c, t, "default", f"dataset:{ns}:stg", 5, False)
    )
    assert columns is not None
    field_node = next(n for n in columns["graph"] if n["id"] == f"datasetField:{ns}:stg:id")
    assert field_node["data"]["inputFields"][0]["field"] == "id"
    assert field_node["inEdges"] == [
        {"origin": f"datasetField:{ns}:raw:id", "destination": f"datasetField:{ns}:stg:id"}
    ]

    feed = views.marquez(lambda c, t: graph.events(c, t, "default", None, None, 100, 0))
    assert feed["totalCount"] == 5
    assert "dataset" in feed["events"][0]  # newest first: the static DatasetEvent
    hits = views.marquez(lambda c, t: graph.search(c, t, "default", "MART", 10))
    assert {r["nodeId"] for r in hits["results"]} == {f"dataset:{ns}:mart", "job:dbt:m.mart"}


def test_the_same_namespace_and_job_in_two_workspaces_are_two_jobs_each_read_only_in_its_own(
    ledger: Ledger, runner: ProjectionRunner, views: ReadModels
) -> None:
    """SPEC 9: every read of the Marquez model is one workspace's: namespaces, jobs, runs,
    datasets, versions, lineage, column lineage, the event feed and search."""
    ledger.create_workspace("red", principal="admin")
    lineage_facet = {
        "_producer": "t",
        "_schemaURL": "u",
        "fields": {"id": {"inputFields": [{"namespace": "db", "name": "raw", "field": "id"}]}},
    }
    runs: dict[str, str] = {}
    for ws, extra in (("default", "only_default"), ("red", "only_red")):
        run_id = runs[ws] = str(uuid.uuid4())
        out = {
            "namespace": "db",
            "name": "clean",
            "facets": {"schema": schema("id"), "columnLineage": lineage_facet},
        }
        raw = {
            "eventType": "COMPLETE",
            "eventTime": "2026-01-01T00:00:00Z",
            "run": {"runId": run_id, "facets": {}},
            "job": {"namespace": "etl", "name": "load"},
            "inputs": [{"namespace": "db", "name": "raw"}, {"namespace": "db", "name": extra}],
            "outputs": [out],
            "producer": "tests",
            "schemaURL": URL,
        }
        ledger.record_openlineage(parse_run_event(raw), principal="ol", workspace=ws)
        static = parse_lineage_event(
            {"eventTime": "2026-01-01T01:00:00Z", "producer": "t", "schemaURL": URL}
            | {"dataset": {"namespace": "db", "name": f"{extra}_static"}}
        )
        assert isinstance(static, DatasetEvent)
        ledger.record_static_lineage(static, workspace=ws)
    ledger.create_workspace("blue", principal="admin")  # (holds nothing)
    runner.catch_up()

    def check(ws: str, mine: str, theirs: str) -> None:
        other = "red" if ws == "default" else "default"

        def read(fn: Any) -> Any:
            return views.marquez(lambda c, t: fn(c, t, ws))

        job = read(lambda c, t, w: q.job(c, t, w, "etl", "load"))
        assert job["latestRun"]["id"] == runs[ws]
        assert {d["name"] for d in job["inputs"]} == {"raw", mine}
        jobs, total = read(lambda c, t, w: q.runs(c, t, w, "etl", "load", 10, 0))
        assert (total, [r["id"] for r in jobs]) == (1, [runs[ws]])
        assert read(lambda c, t, w: q.run(c, t, w, runs[ws])) is not None
        assert read(lambda c, t, w: q.run(c, t, w, runs[other])) is None
        assert read(lambda c, t, w: q.run_job_facets(c, t, w, runs[other])) is None
        names = {d["name"] for d in read(lambda c, t, w: q.datasets(c, t, w, "db", 100, 0))[0]}
        assert names == {"raw", "clean", mine, f"{mine}_static"}
        assert read(lambda c, t, w: q.dataset(c, t, w, "db", theirs)) is None
        versions, total = read(lambda c, t, w: q.versions(c, t, w, "db", "clean", 10, 0))
        assert total == 1 and versions[0]["createdByRun"] == {"id": runs[ws]}
        assert [n["name"] for n in read(q.namespaces)] == ["db", "etl"]
        found = read(lambda c, t, w: graph.lineage(c, t, w, "dataset:db:raw", 5))
        assert {n["id"] for n in found["graph"]} == {
            "dataset:db:raw",
            f"dataset:db:{mine}",
            "dataset:db:clean",
            "job:etl:load",
        }
        assert read(lambda c, t, w: graph.lineage(c, t, w, f"dataset:db:{theirs}", 5)) is None
        assert read(lambda c, t, w: graph.lineage(c, t, w, f"run:{runs[other]}", 5)) is None
        columns = read(lambda c, t, w: graph.column_lineage(c, t, w, "dataset:db:clean", 5, True))
        assert {n["id"] for n in columns["graph"]} == {"datasetField:db:clean:id", "datasetField:db:raw:id"}
        feed = read(lambda c, t, w: graph.events(c, t, w, None, None, 100, 0))
        assert feed["totalCount"] == 2
        assert {e["run"]["runId"] for e in feed["events"] if "run" in e} == {runs[ws]}
        hits = read(lambda c, t, w: graph.search(c, t, w, "only", 10))
        assert {r["name"] for r in hits["results"]} == {mine, f"{mine}_static"}

    check("default", "only_default", "only_red")
    check("red", "only_red", "only_default")

    empty = {
        "namespaces": views.marquez(lambda c, t: q.namespaces(c, t, "blue")),
        "job": views.marquez(lambda c, t: q.job(c, t, "blue", "etl", "load")),
        "lineage": views.marquez(lambda c, t: graph.lineage(c, t, "blue", "job:etl:load", 5)),
        "events": views.marquez(lambda c, t: graph.events(c, t, "blue", None, None, 100, 0))["events"],
        "search": views.marquez(lambda c, t: graph.search(c, t, "blue", "load", 10))["results"],
    }
    assert empty == {"namespaces": [], "job": None, "lineage": None, "events": [], "search": []}
