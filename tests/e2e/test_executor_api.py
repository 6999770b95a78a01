"""The executor behind ``runledger serve``: workflows triggered over HTTP run as real
subprocesses and leave evidence the API serves (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.conftest import Server, serving

TERMINAL = {"success", "failed", "killed"}

PIPELINE = {
    "name": "evidence",
    "params": {"word": {"type": "string", "required": True}, "seed": {"type": "file", "required": True}},
    "tasks": [
        {
            "name": "make",
            "command": [
                "sh",
                "-c",
                'cat "$1" > seed.txt; echo "$2" >> seed.txt; '
                'echo lines=2 >> "$RUNLEDGER_OUTPUTS"; '
                "echo made; echo warn >&2",
                "sh",
                "{{ params.seed }}",
                "{{ params.word }}",
            ],
            "outputs": ["seed.txt"],
        },
        {
            "name": "left",
            "depends_on": ["make"],
            "inputs": ["seed.txt"],
            "command": ["sh", "-c", "sleep 0.5; tr a-z A-Z < seed.txt > left.txt"],
            "outputs": ["left.txt"],
        },
        {
            "name": "right",
            "depends_on": ["make"],
            "inputs": ["seed.txt"],
            "command": [
                "sh",
                "-c",
                'sleep 0.5; echo "$1" > right.txt',
                "sh",
                "{{ tasks.make.outputs.lines }} lines",
            ],
            "outputs": ["right.txt"],
        },
        {
            "name": "join",
            "depends_on": ["left", "right"],
            "inputs": ["left.txt", "right.txt"],
            "command": ["sh", "-c", "cat left.txt right.txt > joined.txt"],
            "outputs": ["joined.txt"],
        },
    ],
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_done(client: httpx.Client, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return body if body.get("status") in TERMINAL else None

    result: dict[str, Any] = eventually(done, timeout=timeout, interval=0.2)
    return result


def register_and_trigger(
    client: httpx.Client, definition: dict[str, Any], parameters: dict[str, Any] | None = None
) -> str:
    registered = client.post("/api/workflows", json={"definition": definition})
    assert registered.status_code in (200, 201), registered.text
    triggered = client.post(
        f"/api/workflows/{definition['name']}/trigger", json={"parameters": parameters or {}}
    )
    assert triggered.status_code == 202, triggered.text
    return str(triggered.json()["run_id"])


@pytest.fixture(scope="module", params=BACKENDS)
def executing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``runledger serve`` with its executor per module and backend; every test uses a
    workflow name of its own."""
    with serving(request.param, tmp_path_factory, "executing", executor=True) as server:
        yield server


def test_a_dag_triggered_over_http_runs_branches_in_parallel_with_evidence_we_can_recompute(
    executing: Server,
) -> None:
    client = executing.client("operator")
    seed = b"abc\n"
    uploaded = client.post("/api/files", content=seed)
    assert uploaded.status_code == 201, uploaded.text
    run_id = register_and_trigger(
        client, PIPELINE, {"word": "x; touch pwned $(touch pwned2)", "seed": uploaded.json()["sha256"]}
    )

    summary = wait_done(client, run_id)

    assert summary["status"] == "success", summary
    tasks = {t["name"]: t for t in client.get(f"/api/runs/{run_id}/tasks").json()["tasks"]}
    make, left, right = (tasks[n]["attempts"][0] for n in ("make", "left", "right"))
    assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"]
    seed_txt = b"abc\nx; touch pwned $(touch pwned2)\n"
    assert make["command"][-1] == "x; touch pwned $(touch pwned2)"
    assert make["outputs"] == [{"path": "seed.txt", "sha256": sha(seed_txt), "size": len(seed_txt)}]
    assert {"path": "params/seed", "sha256": sha(seed), "size": 4} in make["inputs"]
    assert make["output_vars"] == {"lines": "2"}
    assert make["stdout"]["sha256"] == sha(b"made\n")
    assert make["executable_sha256"] == sha(Path(make["executable"]).read_bytes())
    assert make["exit_code"] == 0 and make["attempt"] == 1 and make["image"] is None
    logs = client.get(f"/api/runs/{run_id}/tasks/make/logs", params={"stream": "stderr"})
    assert logs.text == "warn\n"
    joined = tasks["join"]["attempts"][0]["outputs"][0]
    served = client.get(f"/api/files/{joined['sha256']}").content
    assert served == seed_txt.upper() + b"2 lines\n"
    assert sha(served) == joined["sha256"]
    assert summary["outputs"]["make"] == {"lines": "2"}
    run_dir = executing.state_dir / "runs" / run_id
    assert not list(run_dir.glob("pwned*"))


def test_retries_timeouts_and_on_failure_continue_show_in_the_run_summary(
    executing: Server,
) -> None:
    client = executing.client("operator")
    definition = {
        "name": "rough",
        "retry_delay_seconds": 0.2,
        "tasks": [
            {"name": "flaky", "command": ["sh", "-c", 'test "$RUNLEDGER_ATTEMPT" -ge 2'], "max_retries": 2},
            {"name": "slow", "command": ["sleep", "30"], "timeout_seconds": 0.5, "on_failure": "continue"},
            {"name": "after", "depends_on": ["slow"], "command": ["true"]},
        ],
    }
    run_id = register_and_trigger(client, definition)

    summary = wait_done(client, run_id)

    assert summary["status"] == "failed"
    assert summary["retry_count"] == 1
    tasks = {t["name"]: t for t in client.get(f"/api/runs/{run_id}/tasks").json()["tasks"]}
    assert [a["attempt"] for a in tasks["flaky"]["attempts"]] == [1, 2]
    assert [a["exit_code"] for a in tasks["flaky"]["attempts"]] == [1, 0]
    assert "timed out" in tasks["slow"]["attempts"][0]["error"]
    assert tasks["after"]["attempts"][0]["status"] == "success"


def test_cancel_over_http_kills_the_sleeping_process_group_and_records_the_actor(
    executing: Server,
) -> None:
    client = executing.client("operator")
    definition = {
        "name": "sleeper",
        "tasks": [{"name": "nap", "command": ["sh", "-c", "sleep 60 & echo $! > child.pid; wait"]}],
    }
    run_id = register_and_trigger(client, definition)
    pid_file = executing.state_dir / "runs" / run_id / "child.pid"
    eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=20)
    child = int(pid_file.read_text())

    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
    cancelled = time.monotonic()
    while Path(f"/proc/{child}").exists() and "Z" not in _state(child):
        assert time.monotonic() - cancelled < 5, "the task outlived the cancel by 5 s"
        time.sleep(0.05)

    summary = wait_done(client, run_id)
    assert summary["status"] == "killed"
    audit = client.get(f"/api/runs/{run_id}/audit").json()["entries"]
    assert any(e["to_status"] == "killed" and e["actor"] == "test-operator" for e in audit)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1]
    except OSError:
        return "Z"


def test_replay_and_resume_over_http_rerun_and_reuse_by_hash(executing: Server) -> None:
    client = executing.client("operator")
    definition = {
        "name": "two",
        "params": {"n": {"type": "integer", "default": 1}},
        "tasks": [
            {
                "name": "first",
                "command": ["sh", "-c", 'echo "$PARAM_N-$$" > a.txt; echo pid=$$ >> "$RUNLEDGER_OUTPUTS"'],
                "outputs": ["a.txt"],
            },
            {
                "name": "second",
                "depends_on": ["first"],
                "inputs": ["a.txt"],
                "command": [
                    "sh",
                    "-c",
                    'cat a.txt > b.txt; echo "$1" >> b.txt',
                    "sh",
                    "{{ tasks.first.outputs.pid }}",
                ],
                "outputs": ["b.txt"],
            },
        ],
    }
    original = register_and_trigger(client, definition)
    assert wait_done(client, original)["status"] == "success"
    first_attempt = client.get(f"/api/runs/{original}/tasks/first").json()["attempts"][0]

    replayed = client.post(f"/api/runs/{original}/replay", json={"param_overrides": {"n": 2}})
    resumed = client.post(f"/api/runs/{original}/resume", json={"from_task": "second"})
    assert replayed.status_code == 202 and resumed.status_code == 202, resumed.text

    replay = wait_done(client, replayed.json()["run_id"])
    resume = wait_done(client, resumed.json()["run_id"])
    assert replay["status"] == "success" and replay["replay_of"] == original
    assert replay["parameters"]["n"] == 2
    assert resume["status"] == "success" and resume["resume_of"] == original
    reused = client.get(f"/api/runs/{resume['run_id']}/tasks/first").json()
    assert reused["status"] == "reused"
    assert original in str(reused)
    second = client.get(f"/api/runs/{resume['run_id']}/tasks/second").json()["attempts"][0]
    assert second["inputs"] == first_attempt["outputs"]
    assert second["command"][-1] == first_attempt["output_vars"]["pid"]


def test_a_batch_runs_every_item_within_its_parallelism_and_reports_progress(
    executing: Server,
) -> None:
    client = executing.client("operator")
    definition = {
        "name": "items",
        "params": {"item": {"type": "string"}},
        "tasks": [{"name": "work", "command": ["sh", "-c", 'sleep 0.3; test "$PARAM_ITEM" != bad']}],
    }
    client.post("/api/workflows", json={"definition": definition})
    response = client.post(
        "/api/workflows/items/trigger",
        json={"batch": {"items": ["a", "bad", "c", "d"], "input_param": "item", "parallelism": 2}},
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/batches/{batch_id}").json()
        return body if body["progress"]["processed_items"] == 4 else None

    batch = eventually(finished, timeout=40, interval=0.3)
    assert batch["progress"] == {"total_items": 4, "processed_items": 4, "failed_items": 1}
    statuses = [client.get(f"/api/runs/{r}").json()["status"] for r in batch["run_ids"]]
    assert statuses == ["success", "failed", "success", "success"]
