"""The official openlineage-python client, with its own HTTP transport and a bearer token,
reporting runs to a real ``runledger serve``."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import nominal_time_run, parent_run, schema_dataset
from openlineage.client.serde import Serde
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from tests.builders import eventually

#: One shared server per module and backend (tests use run ids of their own); most tests
#: exercise the HTTP layer and run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)

NAMESPACE = "e2e-scheduler"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ol_client(server: Any, token: str) -> OpenLineageClient:
    config = HttpConfig(
        url=server.url, endpoint="api/v1/lineage", auth=ApiKeyTokenProvider({"apiKey": token})
    )
    return OpenLineageClient(transport=HttpTransport(config))


def ol_event(
    state: RunState,
    run_id: str,
    job: str,
    at: datetime,
    *,
    facets: dict[str, Any] | None = None,
    inputs: list[InputDataset] | None = None,
    outputs: list[OutputDataset] | None = None,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=at.isoformat(),
        run=Run(runId=run_id, facets=facets or {}),
        job=Job(namespace=NAMESPACE, name=job),
        inputs=inputs or [],
        outputs=outputs or [],
        producer="https://example.com/runledger-e2e",
    )


def test_a_run_reported_by_the_openlineage_client_is_a_ledger_run_with_its_datasets(
    shared_server: Any,
) -> None:
    server = shared_server
    token = server.token("operator", name="ol-e2e-client")
    headers = {"Authorization": f"Bearer {token}"}
    client = ol_client(server, token)
    run_id = str(uuid.uuid4())
    raw_table = InputDataset(
        namespace="postgres://warehouse:5432",
        name="public.raw_orders",
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="int")]
            )
        },
    )
    report = OutputDataset(namespace="s3://reports", name="daily/orders.parquet")
    client.emit(ol_event(RunState.START, run_id, "orders.daily", T0, inputs=[raw_table]))
    client.emit(
        ol_event(
            RunState.COMPLETE,
            run_id,
            "orders.daily",
            T0 + timedelta(minutes=2),
            inputs=[raw_table],
            outputs=[report],
        )
    )

    summary = httpx.get(f"{server.url}/api/runs/{run_id}", headers=headers).json()
    assert summary["status"] == "success"
    assert summary["workflow"] == f"{NAMESPACE}/orders.daily"
    assert summary["trigger_kind"] == "openlineage"

    def listed() -> list[dict[str, Any]]:
        page = httpx.get(
            f"{server.url}/api/runs", headers=headers, params={"workflow": f"{NAMESPACE}/orders.daily"}
        ).json()
        return [r for r in page["runs"] if r["run_id"] == run_id and r["status"] == "success"]

    assert eventually(listed, timeout=20), "the run never appeared as successful in GET /api/runs"

    def datasets() -> set[str]:
        graph = httpx.get(f"{server.url}/api/runs/{run_id}/lineage", headers=headers)
        if graph.status_code != 200:
            return set()
        return {n["id"] for n in graph.json()["nodes"] if n["kind"] == "dataset"}

    assert eventually(lambda: len(datasets()) == 2, timeout=20)
    assert datasets() == {
        "dataset:postgres://warehouse:5432/public.raw_orders",
        "dataset:s3://reports/daily/orders.parquet",
    }

    events = httpx.get(f"{server.url}/api/runs/{run_id}/events", headers=headers).json()["events"]
    assert [e["type"] for e in events] == ["Run.Triggered", "Run.LineageReported", "Run.LineageReported"]
    assert events[0]["data"]["triggered_by"] == "ol-e2e-client"  # the token's name
    schema_facet = events[1]["data"]["inputs"][0]["facets"]["schema"]
    assert [(f["name"], f["type"]) for f in schema_facet["fields"]] == [("id", "int")]
    assert schema_facet["_producer"]  # facets are kept verbatim, envelope included


@SQLITE_ONLY
def test_a_parent_run_facet_links_the_child_run_to_its_parent(shared_server: Any) -> None:
    server = shared_server
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    client = ol_client(server, server.admin_token)
    parent_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
    client.emit(ol_event(RunState.START, parent_id, "dag", T0))
    parent_facet = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent_id),
        job=parent_run.Job(namespace=NAMESPACE, name="dag"),
    )
    client.emit(
        ol_event(
            RunState.START, child_id, "dag.task", T0 + timedelta(seconds=1), facets={"parent": parent_facet}
        )
    )

    def linked() -> bool:
        graph = httpx.get(f"{server.url}/api/runs/{child_id}/lineage", headers=headers)
        if graph.status_code != 200:
            return False
        body = graph.json()
        runs = {node["id"] for node in body["nodes"] if node["kind"] == "run"}
        ends = {f"run:{parent_id}", f"run:{child_id}"}
        return ends <= runs and any({edge["source"], edge["target"]} == ends for edge in body["edges"])

    assert eventually(linked, timeout=5), "no run-to-run edge links the child run to its parent"


@SQLITE_ONLY
def test_repeated_and_late_events_are_handled_as_marquez_does(shared_server: Any) -> None:
    server = shared_server
    token = server.admin_token
    client = ol_client(server, token)
    run_id = str(uuid.uuid4())
    start = ol_event(RunState.START, run_id, "late", T0)
    complete = ol_event(RunState.COMPLETE, run_id, "late", T0 + timedelta(minutes=1))
    client.emit(complete)
    client.emit(start)  # arrives late: recorded, but the run stays successful
    client.emit(complete)  # a repeat: nothing recorded
    headers = {"Authorization": f"Bearer {token}"}
    events = httpx.get(f"{server.url}/api/runs/{run_id}/events", headers=headers).json()["events"]
    assert [e["data"].get("event_type") for e in events] == [None, "COMPLETE", "START"]
    summary = httpx.get(f"{server.url}/api/runs/{run_id}", headers=headers).json()
    assert summary["status"] == "success"


def _post(server: Any, token: str, body: bytes, extra: dict[str, str] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.post(f"{server.url}/api/v1/lineage", content=body, headers=headers | (extra or {}))


def _settled_digest(url: str, headers: dict[str, str]) -> httpx.Response:
    """The digest once the Merkle follower has caught up (two reads 0.3 s apart give the same
    tree: its ``at`` is the time of each read, so it is left out of the comparison)."""

    def tree(answer: httpx.Response) -> tuple[Any, Any]:
        body = answer.json()
        return body["tree_size"], body["root_hash"]

    previous = httpx.get(f"{url}/api/ledger/digest", headers=headers)
    for _ in range(50):
        time.sleep(0.3)
        current = httpx.get(f"{url}/api/ledger/digest", headers=headers)
        if current.status_code != 200 or tree(current) == tree(previous):
            return current
        previous = current
    return previous


def test_a_malformed_event_is_refused_and_writes_nothing(server: Any) -> None:
    # A server of its own: on the shared one, earlier tests' runs may still be writing, and
    # the tree's size is what shows that nothing was written here.
    token = server.admin_token
    headers = {"Authorization": f"Bearer {token}"}
    run_id = str(uuid.uuid4())
    good = {
        "eventType": "START",
        "eventTime": T0.isoformat(),
        "run": {"runId": run_id},
        "job": {"namespace": NAMESPACE, "name": "bad"},
        "producer": "p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    before = _settled_digest(server.url, headers)
    malformed = [
        b"{not json",
        json.dumps(good | {"eventType": "FINISHED"}).encode(),
        json.dumps(good | {"run": {"runId": "run-42"}}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "job"}).encode(),
        json.dumps(good | {"inputs": [{"namespace": "n"}]}).encode(),
    ]
    for body in malformed:
        answer = _post(server, token, body)
        assert answer.status_code in {400, 422}, body
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert httpx.get(f"{server.url}/api/runs/{run_id}", headers=headers).status_code == 404
    if before.status_code == 200:
        after = _settled_digest(server.url, headers)
        assert after.json()["tree_size"] == before.json()["tree_size"]
    # the same event, well formed and gzip-compressed as the client's compression option sends it
    answer = _post(server, token, gzip.compress(json.dumps(good).encode()), {"Content-Encoding": "gzip"})
    assert answer.status_code == 201
    assert answer.json() == {"run_id": run_id, "status": "running", "recorded": True}


@SQLITE_ONLY
def test_lineage_needs_an_operator_token_and_a_worker_token_cannot_create_runs(shared_server: Any) -> None:
    server = shared_server
    body = json.dumps(
        {
            "eventType": "START",
            "eventTime": T0.isoformat(),
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": NAMESPACE, "name": "auth"},
            "producer": "p",
            "schemaURL": "s",
        }
    ).encode()
    assert httpx.post(f"{server.url}/api/v1/lineage", content=body).status_code == 401
    assert _post(server, server.token("auditor"), body).status_code == 403
    assert _post(server, server.token("worker"), body).status_code == 403
    assert _post(server, server.token("operator"), body).status_code == 201


def test_the_client_s_static_lineage_and_richer_repeats_are_recorded_and_late_events_shown(
    shared_server: Any,
) -> None:
    """Issue 24 through the real client on both backends: a DatasetEvent and a JobEvent are
    recorded; a START differing only in a nominalTime facet is recorded (201, recorded true);
    a late START dates the run; a FAIL after COMPLETE is listed in ``late_events``."""
    server = shared_server
    token = server.admin_token
    headers = {"Authorization": f"Bearer {token}"}
    client = ol_client(server, token)
    producer = "https://example.com/runledger-e2e"
    static = f"static-{uuid.uuid4()}"
    client.emit(
        DatasetEvent(
            eventTime=T0.isoformat(),
            producer=producer,
            dataset=StaticDataset(namespace=NAMESPACE, name=static),
        )
    )
    client.emit(
        JobEvent(
            eventTime=T0.isoformat(),
            producer=producer,
            job=Job(namespace=NAMESPACE, name=static),
            outputs=[OutputDataset(namespace=NAMESPACE, name=static)],
        )
    )
    page = httpx.get(f"{server.url}/api/runs", headers=headers, params={"workflow": f"{NAMESPACE}/{static}"})
    assert page.json()["runs"] == []  # static lineage creates no run

    run_id = str(uuid.uuid4())
    start = ol_event(RunState.START, run_id, "richer", T0)
    body = Serde.to_json(start).encode()
    assert _post(server, token, body).json()["recorded"] is True
    nominal = {"nominalTime": nominal_time_run.NominalTimeRunFacet(nominalStartTime=T0.isoformat())}
    richer = Serde.to_json(ol_event(RunState.START, run_id, "richer", T0, facets=nominal)).encode()
    answer = _post(server, token, richer)
    assert (answer.status_code, answer.json()["recorded"]) == (201, True)
    assert _post(server, token, richer).json()["recorded"] is False  # identical: a repeat

    late_id = str(uuid.uuid4())
    client.emit(ol_event(RunState.COMPLETE, late_id, "late-fail", T0 + timedelta(minutes=5)))
    client.emit(ol_event(RunState.START, late_id, "late-fail", T0))
    client.emit(ol_event(RunState.FAIL, late_id, "late-fail", T0 + timedelta(minutes=6)))
    summary = httpx.get(f"{server.url}/api/runs/{late_id}", headers=headers).json()
    assert summary["status"] == "success"
    assert summary["started_at"] == "2026-03-01T12:00:00.000000Z"
    assert summary["duration_seconds"] == 300.0
    assert [e["event_type"] for e in summary["late_events"]] == ["FAIL"]


def test_marquez_read_endpoints_answer_what_the_client_reported(shared_server: Any) -> None:
    """Marquez's read API over runs the real client reported, on both backends: namespaces,
    colliding job names kept apart, jobs with their latest run state, dataset fields from the
    schema facet and versions, lineage from a dataset node and from a run, the event feed and
    search."""
    server = shared_server
    token = server.token("auditor", name="marquez-reader")
    client = ol_client(server, server.admin_token)
    ns = f"mq-{uuid.uuid4().hex[:8]}"
    fields = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="int")]
    )
    source = InputDataset(namespace=ns, name="raw")
    target = OutputDataset(namespace=ns, name="clean", facets={"schema": fields})
    for job_ns, job_name, state in ((f"{ns}/x", "job", RunState.COMPLETE), (ns, "x/job", RunState.FAIL)):
        run_id = str(uuid.uuid4())
        event = RunEvent(
            eventType=state,
            eventTime=T0.isoformat(),
            run=Run(runId=run_id),
            job=Job(namespace=job_ns, name=job_name),
            inputs=[source],
            outputs=[target],
            producer="https://example.com/runledger-e2e",
        )
        client.emit(event)
    base = f"{server.url}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}

    def get(path: str, **params: Any) -> Any:
        answer = httpx.get(f"{base}{path}", headers=headers, params=params)
        return answer.json() if answer.status_code == 200 else None

    assert eventually(lambda: get(f"/namespaces/{ns}/jobs/x%2Fjob") is not None, timeout=20)
    names = {n["name"] for n in get("/namespaces")["namespaces"]}
    assert {ns, f"{ns}/x"} <= names
    assert get(f"/namespaces/{ns}/jobs/x%2Fjob")["latestRun"]["state"] == "FAILED"
    assert get(f"/namespaces/{ns}%2Fx/jobs/job")["latestRun"]["state"] == "COMPLETED"
    assert [j["name"] for j in get(f"/namespaces/{ns}/jobs")["jobs"]] == ["x/job"]
    assert get(f"/namespaces/{ns}/jobs/x%2Fjob/runs")["totalCount"] == 1
    clean = get(f"/namespaces/{ns}/datasets/clean")
    assert [(f["name"], f["type"]) for f in clean["fields"]] == [("id", "int")]
    assert get(f"/namespaces/{ns}/datasets/clean/versions")["totalCount"] == 2
    found = get("/lineage", nodeId=f"dataset:{ns}:raw", depth=2)
    assert found["truncated"] is False
    graph = found["graph"]
    assert {n["id"] for n in graph} == {
        f"dataset:{ns}:raw",
        f"dataset:{ns}:clean",
        f"job:{ns}/x:job",
        f"job:{ns}:x/job",
    }
    assert get("/lineage", nodeId=f"dataset:{ns}:nope") is None
    from_run = get("/lineage", nodeId=f"run:{run_id}", depth=0)["graph"]  # the FAIL run's job
    assert {n["id"] for n in from_run} == {f"job:{ns}:x/job", f"dataset:{ns}:raw", f"dataset:{ns}:clean"}
    bad = httpx.get(f"{base}/lineage", headers=headers, params={"nodeId": "table:x"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    feed = get("/events/lineage", limit=500)["events"]
    assert sum(1 for e in feed if e.get("job", {}).get("namespace") in {ns, f"{ns}/x"}) == 2
    assert f"job:{ns}:x/job" in {r["nodeId"] for r in get("/search", q="x/JOB", limit=100)["results"]}
    assert httpx.get(f"{base}/namespaces", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_two_workspaces_report_the_same_namespace_and_job_and_each_reads_back_only_its_own(
    shared_server: Any,
) -> None:
    """SPEC 9 for OpenLineage, on both backends, through the real client: a token of one
    workspace and a ``*`` token naming the other each report the same namespace and job (and
    the same DatasetEvent, a repeat in neither); each workspace's runs, jobs, datasets,
    lineage, events and search results are its own, and the other's run is not found."""
    server = shared_server
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    suffix = uuid.uuid4().hex[:8]
    ns, job = f"ws-{suffix}", "shared.job"
    a, b = f"ola-{suffix}", f"olb-{suffix}"
    tokens: dict[str, dict[str, str]] = {}
    for ws in (a, b):
        assert httpx.post(f"{server.url}/api/workspaces", json={"name": ws}, headers=admin).status_code == 201
        for role in ("operator", "auditor"):
            made = httpx.post(
                f"{server.url}/api/tokens",
                json={"name": f"{ws}-{role}", "role": role, "workspaces": [ws]},
                headers=admin,
            )
            assert made.status_code == 201, made.text
            tokens.setdefault(ws, {})[role] = made.json()["token"]
    star_in_b = HttpConfig(
        url=server.url,
        endpoint="api/v1/lineage",
        auth=ApiKeyTokenProvider({"apiKey": server.admin_token}),
        custom_headers={"Runledger-Workspace": b},
    )
    clients = {
        a: ol_client(server, tokens[a]["operator"]),
        b: OpenLineageClient(transport=HttpTransport(star_in_b)),
    }
    runs = {a: str(uuid.uuid4()), b: str(uuid.uuid4())}
    for ws, client in clients.items():
        fields = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=f"col_{ws}")]
        )
        source = InputDataset(namespace=ns, name=f"in_{ws}")
        target = OutputDataset(namespace=ns, name="out", facets={"schema": fields})
        for state, at in ((RunState.START, T0), (RunState.COMPLETE, T0 + timedelta(minutes=1))):
            client.emit(
                RunEvent(
                    eventType=state,
                    eventTime=at.isoformat(),
                    run=Run(runId=runs[ws]),
                    job=Job(namespace=ns, name=job),
                    inputs=[source],
                    outputs=[target],
                    producer="https://example.com/runledger-e2e",
                )
            )
    static = Serde.to_json(
        DatasetEvent(
            eventTime=T0.isoformat(), producer="p", dataset=StaticDataset(namespace=ns, name="static")
        )
    ).encode()
    assert _post(server, tokens[a]["operator"], static).status_code == 201
    assert _post(server, server.admin_token, static, {"Runledger-Workspace": b}).status_code == 201
    assert _post(server, server.admin_token, static, {"Runledger-Workspace": b}).status_code == 200
    # the other workspace's runId is not found (nothing written), from its token and a * token naming it
    complete_a = Serde.to_json(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=T0.isoformat(),
            run=Run(runId=runs[a]),
            job=Job(namespace=ns, name=job),
            producer="p",
        )
    ).encode()
    assert _post(server, server.admin_token, complete_a, {"Runledger-Workspace": b}).status_code == 404

    readers = {
        a: [{"Authorization": f"Bearer {tokens[a]['auditor']}"}, admin | {"Runledger-Workspace": a}],
        b: [{"Authorization": f"Bearer {tokens[b]['auditor']}"}, admin | {"Runledger-Workspace": b}],
    }
    base = f"{server.url}/api/v1"
    for ws, other in ((a, b), (b, a)):
        for headers in readers[ws]:

            def get(path: str, headers: dict[str, str] = headers, **params: Any) -> Any:
                answer = httpx.get(f"{base}{path}", headers=headers, params=params)
                return answer.json() if answer.status_code == 200 else answer.status_code

            def settled(ws: str = ws, get: Any = get) -> bool:
                found = get(f"/namespaces/{ns}/jobs/{job}")
                datasets = get(f"/namespaces/{ns}/datasets")
                return (
                    isinstance(found, dict)
                    and found["latestRun"]["state"] == "COMPLETED"
                    and isinstance(datasets, dict)
                    and datasets["totalCount"] == 3
                )

            assert eventually(settled, timeout=20)
            assert get(f"/namespaces/{ns}/jobs/{job}")["latestRun"]["id"] == runs[ws]
            assert [n["name"] for n in get("/namespaces")["namespaces"]] == [ns]
            listed = get(f"/namespaces/{ns}/jobs/{job}/runs")
            assert (listed["totalCount"], listed["runs"][0]["id"]) == (1, runs[ws])
            datasets = {d["name"] for d in get(f"/namespaces/{ns}/datasets")["datasets"]}
            assert datasets == {f"in_{ws}", "out", "static"}
            assert [f["name"] for f in get(f"/namespaces/{ns}/datasets/out")["fields"]] == [f"col_{ws}"]
            assert get(f"/namespaces/{ns}/datasets/in_{other}") == 404
            assert get(f"/jobs/runs/{runs[ws]}")["state"] == "COMPLETED"
            assert get(f"/jobs/runs/{runs[other]}") == 404
            graph = get("/lineage", nodeId=f"dataset:{ns}:out", depth=2)["graph"]
            assert {n["id"] for n in graph} == {
                f"dataset:{ns}:out",
                f"job:{ns}:{job}",
                f"dataset:{ns}:in_{ws}",
            }
            assert get("/lineage", nodeId=f"dataset:{ns}:in_{other}") == 404
            feed = get("/events/lineage", limit=500)["events"]
            mine = [e for e in feed if (e.get("job") or e.get("dataset") or {}).get("namespace") == ns]
            assert len(mine) == 3 and {e["run"]["runId"] for e in mine if "run" in e} == {runs[ws]}
            assert {r["name"] for r in get("/search", q="in_ol", limit=100)["results"]} == {f"in_{ws}"}
            summary = httpx.get(f"{server.url}/api/runs/{runs[ws]}", headers=headers).json()
            assert (summary["workspace"], summary["workflow"]) == (ws, f"{ns}/{job}")
            assert httpx.get(f"{server.url}/api/runs/{runs[other]}", headers=headers).status_code == 404
    # a * token naming no workspace reads default, which holds none of it
    default = httpx.get(f"{base}/namespaces", headers=admin).json()["namespaces"]
    assert ns not in {n["name"] for n in default}
