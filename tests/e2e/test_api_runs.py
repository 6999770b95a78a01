"""A run's life over real HTTP: a worker claims and reports it, then every read endpoint of
``/api/runs`` (summary, tasks, logs, files, lineage, audit, compare, list, stats) and the
operator actions (cancel, replay, resume)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger

STDOUT = b"fetched 3 urls\n"
OUT_TXT = b"a\nb\nc\n"


def claim(worker: httpx.Client, run_id: str, worker_id: str = "w1") -> dict[str, Any]:
    """Claim until the worker gets ``run_id`` (other tests' runs may be pending too)."""

    def attempt() -> dict[str, Any] | None:
        response = worker.post("/api/runs/claim", json={"worker_id": worker_id})
        assert response.status_code in (200, 204), response.text
        if response.status_code == 200 and response.json()["run_id"] == run_id:
            return dict(response.json())
        return None

    return dict(eventually(attempt))


def upload(client: httpx.Client, data: bytes) -> dict[str, Any]:
    response = client.post("/api/files", content=data, headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def successful_reports(out: dict[str, Any], stdout: dict[str, Any]) -> list[dict[str, Any]]:
    file_ref = {"path": "out.txt", "sha256": out["sha256"], "size": out["size"]}
    return [
        {
            "type": "task_started",
            "task": "fetch",
            "attempt": 1,
            "command": ["echo", "alpha"],
            "host": "test-host",
        },
        {
            "type": "task_finished",
            "task": "fetch",
            "attempt": 1,
            "exit_code": 0,
            "command": ["echo", "alpha"],
            "outputs": [file_ref],
            "output_vars": {"urls": 3},
            "stdout": stdout,
            "host": "test-host",
            "duration_seconds": 0.5,
        },
        {"type": "task_started", "task": "summarise", "attempt": 1},
        {
            "type": "task_finished",
            "task": "summarise",
            "attempt": 1,
            "exit_code": 0,
            "inputs": [file_ref],
            "duration_seconds": 0.25,
        },
        {"type": "run_succeeded"},
    ]


@pytest.fixture
def finished_run(shared_server: Server) -> dict[str, Any]:
    """A run of a fresh workflow that a worker claimed and completed through the API."""
    definition = pipeline()
    with shared_server.client("operator") as operator, shared_server.client("worker") as worker:
        register(operator, definition)
        run_id = trigger(operator, definition["name"], parameters={"query": "alpha"})["run_id"]
        out, stdout = upload(operator, OUT_TXT), upload(operator, STDOUT)
        claimed = claim(worker, run_id)
        assert claimed["parameters"] == {"query": "alpha", "limit": 5}
        assert claimed["definition"]["name"] == definition["name"]
        response = worker.post(
            f"/api/runs/{run_id}/events", json={"worker_id": "w1", "events": successful_reports(out, stdout)}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "success"
    return {"run_id": run_id, "workflow": definition["name"], "out": out, "stdout": stdout}


def test_a_claimed_run_reported_by_its_worker_shows_tasks_evidence_and_logs(
    shared_server: Server,
    finished_run: dict[str, Any],
) -> None:
    run_id = finished_run["run_id"]
    with shared_server.client("auditor") as client:
        summary = client.get(f"/api/runs/{run_id}").json()
        assert summary["status"] == "success"
        assert summary["outputs"]["fetch"] == {"urls": 3}
        tasks = client.get(f"/api/runs/{run_id}/tasks").json()["tasks"]
        assert [(t["name"], t["status"]) for t in tasks] == [("fetch", "success"), ("summarise", "success")]
        fetch = client.get(f"/api/runs/{run_id}/tasks/fetch").json()
        attempt = fetch["attempts"][0]
        assert (attempt["attempt"], attempt["exit_code"], attempt["host"]) == (1, 0, "test-host")
        assert attempt["command"] == ["echo", "alpha"]
        assert attempt["output_vars"] == {"urls": 3}
        assert attempt["stdout"]["sha256"] == finished_run["stdout"]["sha256"]
        logs = client.get(f"/api/runs/{run_id}/tasks/fetch/logs", params={"stream": "stdout"})
        assert logs.status_code == 200
        assert logs.headers["content-type"].startswith("text/plain")
        assert logs.text == STDOUT.decode()
        assert_problem(client.get(f"/api/runs/{run_id}/tasks/fetch/logs", params={"stream": "stderr"}), 404)
        assert_problem(client.get(f"/api/runs/{run_id}/tasks/nope"), 404)


def test_run_files_lineage_and_audit_follow_the_reported_evidence(
    shared_server: Server,
    finished_run: dict[str, Any],
) -> None:
    run_id, out = finished_run["run_id"], finished_run["out"]
    with shared_server.client("auditor") as client:
        files = client.get(f"/api/runs/{run_id}/files").json()["files"]
        assert {(f["path"], f["role"], f["task"]) for f in files} == {
            ("out.txt", "output", "fetch"),
            ("out.txt", "input", "summarise"),
        }
        assert {f["sha256"] for f in files} == {out["sha256"]}
        served = client.get(f"/api/files/{out['sha256']}")
        assert served.status_code == 200
        assert served.content == OUT_TXT
        assert_problem(client.get(f"/api/files/{'1' * 64}"), 404)

        def lineage() -> dict[str, Any]:
            graph = dict(client.get(f"/api/runs/{run_id}/lineage").json())
            assert any(e["kind"] == "produced" for e in graph["edges"])
            return graph

        graph = eventually(lineage)
        kinds = {node["kind"] for node in graph["nodes"]}
        assert {"run", "task", "file"} <= kinds
        assert {e["kind"] for e in graph["edges"]} >= {"consumed", "produced", "part_of"}
        prov = client.get(f"/api/runs/{run_id}/lineage", params={"format": "prov"})
        assert prov.status_code == 200, prov.text
        assert "prefix" in prov.json()
        assert_problem(client.get(f"/api/runs/{run_id}/lineage", params={"format": "xml"}), 422)

        def audit() -> list[dict[str, Any]]:
            entries = list(client.get(f"/api/runs/{run_id}/audit").json()["entries"])
            assert entries and entries[-1]["to_status"] == "success"
            return entries

        entries = eventually(audit)
        assert entries[0]["actor"] == "test-operator"
        assert [e["to_status"] for e in entries if e["to_status"]][-2:] == ["running", "success"]


def test_runs_are_listed_newest_first_with_filters_and_counted_in_stats(
    shared_server: Server,
    finished_run: dict[str, Any],
) -> None:
    workflow = finished_run["workflow"]
    with shared_server.client("operator") as client:
        second = trigger(client, workflow, parameters={"query": "beta"})["run_id"]

        def listed() -> list[str]:
            runs = client.get("/api/runs", params={"workflow": workflow}).json()["runs"]
            assert len(runs) == 2
            return [r["run_id"] for r in runs]

        assert eventually(listed) == [second, finished_run["run_id"]]
        by_param = client.get("/api/runs", params={"workflow": workflow, "param.query": "alpha"})
        assert [r["run_id"] for r in by_param.json()["runs"]] == [finished_run["run_id"]]
        by_status = client.get("/api/runs", params={"workflow": workflow, "status": "pending"})
        assert [r["run_id"] for r in by_status.json()["runs"]] == [second]
        page = client.get("/api/runs", params={"workflow": workflow, "limit": 1}).json()
        assert [r["run_id"] for r in page["runs"]] == [second]
        rest = client.get(
            "/api/runs", params={"workflow": workflow, "limit": 1, "cursor": page["next_cursor"]}
        ).json()
        assert [r["run_id"] for r in rest["runs"]] == [finished_run["run_id"]]
        assert_problem(client.get("/api/runs", params={"status": "sleeping"}), 422)
        assert_problem(client.get("/api/runs", params={"created_after": "yesterday"}), 422)
        assert_problem(client.get("/api/runs", params={"limit": 1001}), 422)

        stats = client.get("/api/stats", params={"workflow": workflow}).json()
        assert stats["total_runs"] == 2
        assert stats["by_status"].get("success") == 1
        projections = client.get("/api/projections").json()["projections"]
        assert {"name", "schema_version", "position", "lag", "state"} <= set(projections[0])


def test_replay_resume_compare_and_cancel_make_new_runs_and_leave_the_original(
    shared_server: Server,
    finished_run: dict[str, Any],
) -> None:
    original = finished_run["run_id"]
    with shared_server.client("operator") as client:
        replayed = client.post(f"/api/runs/{original}/replay", json={"param_overrides": {"query": "gamma"}})
        assert replayed.status_code == 202, replayed.text
        replay_id = replayed.json()["run_id"]
        summary = client.get(f"/api/runs/{replay_id}").json()
        assert (summary["trigger_kind"], summary["replay_of"]) == ("replay", original)
        assert summary["parameters"]["query"] == "gamma"

        resumed = client.post(f"/api/runs/{original}/resume", json={"from_task": "summarise"})
        assert resumed.status_code == 202, resumed.text
        summary = client.get(f"/api/runs/{resumed.json()['run_id']}").json()
        assert (summary["trigger_kind"], summary["resume_of"]) == ("resume", original)
        assert_problem(client.post(f"/api/runs/{original}/resume", json={"from_task": "x"}), 422)

        compared = client.get("/api/runs/compare", params={"a": original, "b": replay_id}).json()
        assert compared["definition_hash_equal"] is True
        assert compared["parameters"] == {"query": {"a": "alpha", "b": "gamma"}}
        assert {t["task"] for t in compared["tasks"]} == {"fetch", "summarise"}
        assert_problem(client.get("/api/runs/compare", params={"a": original, "b": "nope"}), 404)

        cancelled = client.post(f"/api/runs/{replay_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        assert client.get(f"/api/runs/{replay_id}").json()["status"] == "killed"

        def killed_by() -> list[str]:
            entries = client.get(f"/api/runs/{replay_id}/audit").json()["entries"]
            return [e["actor"] for e in entries if e["to_status"] == "killed"]

        assert eventually(killed_by) == ["test-operator"]
        assert_problem(client.post(f"/api/runs/{replay_id}/cancel"), 409)
        assert_problem(client.post(f"/api/runs/{original}/cancel"), 409)
        assert client.get(f"/api/runs/{original}").json()["status"] == "success"
        assert_problem(client.post("/api/runs/no-such-run/replay", json={}), 404)


def test_a_foreign_or_stale_worker_gets_409_and_nothing_is_appended(
    shared_server: Server,
) -> None:
    definition = pipeline()
    with shared_server.client("operator") as operator, shared_server.client("worker") as worker:
        register(operator, definition)
        run_id = trigger(operator, definition["name"])["run_id"]
        claim(worker, run_id, worker_id="holder")
        started = {"type": "task_started", "task": "fetch", "attempt": 1}
        foreign = worker.post(
            f"/api/runs/{run_id}/events", json={"worker_id": "intruder", "events": [started]}
        )
        assert_problem(foreign, 409)
        bad_order = worker.post(
            f"/api/runs/{run_id}/events",
            json={"worker_id": "holder", "events": [started, {"type": "run_succeeded"}]},
        )
        assert_problem(bad_order, 409)
        events = operator.get(f"/api/runs/{run_id}/tasks").json()["tasks"]
        assert all(t["attempts"] == [] for t in events)
        assert_problem(worker.post(f"/api/runs/{run_id}/events", json={"events": []}), 422)
        assert_problem(worker.post("/api/runs/no-such-run/events", json={"events": [started]}), 404)
