"""``runledger workflows register``, ``trigger [--wait]``, ``runs list|show`` and ``replay`` as
real processes against the database a real server serves."""

from __future__ import annotations

import getpass
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.builders import eventually
from tests.e2e.conftest import RUNLEDGER, Server
from tests.e2e.test_api_runs import claim, successful_reports, upload

#: Argument handling is the same whatever the database; one backend is enough for it.
SQLITE_ONLY = pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)

#: A two-task workflow as a YAML file (``{name}`` filled in per test).
DEFINITION_YAML = """\
name: {name}
params:
  query: {{type: string, required: true}}
  limit: {{type: integer, default: 5}}
tasks:
  - name: fetch
    command: ["echo", "{{{{ params.query }}}}"]
    outputs: ["out.txt"]
  - name: summarise
    depends_on: [fetch]
    command: ["wc", "-l", "out.txt"]
    inputs: ["out.txt"]
"""


def definition_file(tmp_path: Path) -> tuple[str, Path]:
    name = f"cli-{uuid.uuid4().hex[:10]}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(DEFINITION_YAML.format(name=name))
    return name, path


def register_over_http(server: Server, tmp_path: Path) -> str:
    """Register through the API (no extra process) when registration is not under test."""
    name, path = definition_file(tmp_path)
    with server.client("operator") as client:
        response = client.post(
            "/api/workflows", content=path.read_text(), headers={"Content-Type": "application/yaml"}
        )
    assert response.status_code == 201, response.text
    return name


def test_register_trigger_show_list_and_replay_through_the_command_line(
    shared_server: Server,
    tmp_path: Path,
) -> None:
    name, path = definition_file(tmp_path)
    registered = json.loads(shared_server.cli("workflows", "register", str(path)).stdout)
    assert (registered["name"], registered["version"], registered["created"]) == (name, 1, True)

    run_id = shared_server.cli("trigger", name, "-p", "query=hello", "-p", "limit=3").stdout.strip()
    with shared_server.client("auditor") as client:
        summary = client.get(f"/api/runs/{run_id}").json()
    assert summary["parameters"] == {"query": "hello", "limit": 3}
    assert summary["triggered_by"] == f"cli:{getpass.getuser()}"

    shown = json.loads(shared_server.cli("runs", "show", run_id).stdout)
    assert (shown["run_id"], shown["status"]) == (run_id, "pending")
    assert [t["name"] for t in shown["tasks"]] == ["fetch", "summarise"]

    replay_id = shared_server.cli("replay", run_id, "-p", "query=again").stdout.strip()
    with shared_server.client("auditor") as client:
        replayed = client.get(f"/api/runs/{replay_id}").json()
    assert replayed["replay_of"] == run_id
    assert replayed["parameters"] == {"query": "again", "limit": 3}

    def listed() -> list[str]:
        lines = shared_server.cli("runs", "list", "--workflow", name).stdout.splitlines()
        assert len(lines) == 2
        return [line.split("\t")[0] for line in lines]

    assert eventually(listed) == [replay_id, run_id]


def test_trigger_wait_shows_progress_until_the_run_ends_and_exits_0_on_success(
    shared_server: Server,
    tmp_path: Path,
) -> None:
    name = register_over_http(shared_server, tmp_path)
    waiting = subprocess.Popen(
        [RUNLEDGER, "trigger", name, "-p", "query=w", "--wait", "--timeout", "60"],
        env=shared_server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stdout is not None
        run_id = waiting.stdout.readline().strip()
        assert waiting.poll() is None  # still waiting for the run
        with shared_server.client("operator") as operator, shared_server.client("worker") as worker:
            out, stdout = upload(operator, b"x\n"), upload(operator, b"log\n")
            claim(worker, run_id, worker_id="cli-test")
            response = worker.post(
                f"/api/runs/{run_id}/events",
                json={"worker_id": "cli-test", "events": successful_reports(out, stdout)},
            )
            assert response.status_code == 200, response.text
        _, progress = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, progress
    assert f"run {run_id}: pending" in progress
    assert f"run {run_id}: success, tasks 2/2 done" in progress


@SQLITE_ONLY
def test_bad_command_line_input_exits_2_with_a_message(
    shared_server: Server,
    tmp_path: Path,
) -> None:
    name = register_over_http(shared_server, tmp_path)
    unknown = shared_server.cli("trigger", "no-such-workflow", check=False)
    assert unknown.returncode == 2 and "no workflow" in unknown.stderr
    malformed = shared_server.cli("trigger", name, "-p", "query", check=False)
    assert malformed.returncode == 2 and "KEY=VALUE" in malformed.stderr
    wrong_type = shared_server.cli("trigger", name, "-p", "query=a", "-p", "limit=many", check=False)
    assert wrong_type.returncode == 2 and "limit" in wrong_type.stderr
    missing = shared_server.cli("workflows", "register", str(tmp_path / "absent.yaml"), check=False)
    assert missing.returncode == 2
