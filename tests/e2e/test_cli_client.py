"""The ``runledger`` commands over HTTP (``RUNLEDGER_URL``/``RUNLEDGER_TOKEN``, no database in
their environment) as real processes against a real server: the principal is the token's
name, ``--json`` everywhere, tables on a terminal, refusals without a URL, exit codes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.builders import eventually
from tests.e2e import forked
from tests.e2e.client_helpers import cli_env, complete
from tests.e2e.conftest import RUNLEDGER, Server

#: Argument handling is the same whatever the database; one backend is enough for it.
SQLITE_ONLY = pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)

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


def rl(
    server: Server,
    *args: str,
    role: str = "operator",
    check: bool = True,
    cwd: Path | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """``runledger ARGS`` talking to ``server`` over HTTP as ``role`` (a process forked from one
    that imported the CLI already: the real script runs in the tests of its own behaviour)."""
    done = forked.call(list(args), env=cli_env(server, role, **env), cwd=cwd)
    if check and done.returncode != 0:
        raise AssertionError(f"runledger {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def registered(server: Server, tmp_path: Path) -> str:
    name, path = definition_file(tmp_path)
    rl(server, "workflows", "register", str(path))
    return name


def test_register_trigger_show_list_and_replay_record_the_tokens_name(
    shared_server: Server, tmp_path: Path
) -> None:
    name, path = definition_file(tmp_path)
    first = json.loads(rl(shared_server, "workflows", "register", str(path)).stdout)
    assert (first["name"], first["version"]) == (name, 1)
    run_id = rl(shared_server, "trigger", name, "-p", "query=hello", "-p", "limit=3").stdout.strip()
    shown = json.loads(rl(shared_server, "runs", "show", run_id, "--json").stdout)
    assert shown["parameters"] == {"query": "hello", "limit": 3}
    assert shown["triggered_by"] == "test-operator"  # the token's name, not the OS user
    replay_id = rl(shared_server, "replay", run_id, "-p", "query=again").stdout.strip()
    replayed = json.loads(rl(shared_server, "runs", "show", replay_id, "--json", role="auditor").stdout)
    assert (replayed["replay_of"], replayed["parameters"]) == (run_id, {"query": "again", "limit": 3})

    def listed() -> list[str]:
        lines = rl(shared_server, "runs", "list", "--workflow", name, "--json").stdout.splitlines()
        assert len(lines) == 2
        return [json.loads(line)["run_id"] for line in lines]

    assert eventually(listed) == [replay_id, run_id]
    piped = rl(shared_server, "runs", "list", "--workflow", name).stdout.splitlines()
    assert piped[0].split("\t")[:4] == ["RUN", "WORKFLOW", "VERSION", "STATUS"]
    assert [line.split("\t")[0] for line in piped[1:]] == [replay_id, run_id]
    workflows = json.loads(rl(shared_server, "workflows", "list", "--json").stdout)
    assert name in {w["name"] for w in workflows}
    version = json.loads(rl(shared_server, "workflows", "show", name, "--version", "1", "--json").stdout)
    assert (version["version"], version["definition"]["name"]) == (1, name)


def finished_over_http(server: Server, tmp_path: Path) -> tuple[str, str]:
    """A workflow registered and a run of it completed, through the API (no CLI process)."""
    name, path = definition_file(tmp_path)
    with server.client("operator") as client:
        answer = client.post(
            "/api/workflows", content=path.read_text(), headers={"Content-Type": "application/yaml"}
        )
        assert answer.status_code == 201, answer.text
        triggered = client.post(f"/api/workflows/{name}/trigger", json={"parameters": {"query": "alpha"}})
        assert triggered.status_code == 202, triggered.text
    run_id = str(triggered.json()["run_id"])
    complete(server, run_id)
    return name, run_id


def test_the_read_commands_of_a_run_answer_over_http(shared_server: Server, tmp_path: Path) -> None:
    name, run_id = finished_over_http(shared_server, tmp_path)
    tasks = json.loads(rl(shared_server, "runs", "tasks", run_id, "--json").stdout)
    assert [t["name"] for t in tasks] == ["fetch", "summarise"]
    assert rl(shared_server, "runs", "tasks", run_id).stdout.startswith("TASK\tSTATUS")
    assert rl(shared_server, "runs", "logs", run_id, "fetch").stdout == "fetched 3 urls\n"
    files = json.loads(rl(shared_server, "runs", "files", run_id, "--json").stdout)
    out = next(f for f in files if f["role"] == "output")
    rl(shared_server, "files", "download", out["sha256"], "--out", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_bytes() == b"a\nb\nc\n"
    lineage = json.loads(rl(shared_server, "runs", "lineage", run_id, "--depth", "2", "--json").stdout)
    assert lineage["edges"]
    audit = json.loads(rl(shared_server, "runs", "audit", run_id, "--json").stdout)
    assert audit[0]["actor"] == "test-operator"
    events = json.loads(rl(shared_server, "runs", "events", run_id, "--json").stdout)
    assert events[0]["type"] == "Run.Triggered" and events[-1]["type"] == "Run.Succeeded"
    followed = rl(shared_server, "runs", "events", run_id, "--follow", "--json")
    assert [json.loads(line)["sequence"] for line in followed.stdout.splitlines()] == [
        e["sequence"] for e in events
    ]
    resumed = rl(shared_server, "runs", "resume", run_id, "--from-task", "summarise").stdout.strip()
    replayed = json.loads(rl(shared_server, "runs", "replay", run_id, "-p", "query=beta", "--json").stdout)
    compared = json.loads(rl(shared_server, "runs", "compare", run_id, replayed["run_id"], "--json").stdout)
    assert compared["parameters"] == {"query": {"a": "alpha", "b": "beta"}}
    cancelled = json.loads(rl(shared_server, "runs", "cancel", resumed, "--json").stdout)
    assert cancelled["status"] == "killed"
    again = rl(shared_server, "runs", "cancel", resumed, check=False)
    assert again.returncode == 2 and "409" in again.stderr

    def counted() -> bool:  # stats come from a view that follows the ledger a moment behind
        return bool(
            json.loads(rl(shared_server, "stats", "--workflow", name, "--json").stdout)["total_runs"] == 3
        )

    assert eventually(counted, timeout=60)


def test_files_batches_hashes_and_exports_over_http(shared_server: Server, tmp_path: Path) -> None:
    name, _ = finished_over_http(shared_server, tmp_path)
    source = tmp_path / "seed.txt"
    source.write_bytes(b"seed\n")
    sha = rl(shared_server, "files", "upload", str(source)).stdout.strip()
    assert len(sha) == 64
    definition_hash = json.loads(rl(shared_server, "workflows", "show", name, "--json").stdout)[
        "definition_hash"
    ]
    pinned = rl(shared_server, "trigger", "--by-hash", definition_hash, "-p", "query=h", "--json").stdout
    assert json.loads(pinned)["trigger_kind"] == "hash"
    items = tmp_path / "items.json"
    items.write_text(json.dumps(["x", "y"]))
    batch = json.loads(
        rl(shared_server, "batch", name, "--items", str(items), "--input-param", "query", "--json").stdout
    )
    assert len(batch["run_ids"]) == 2
    rl(shared_server, "export", "--out", str(tmp_path / "bundle.tar"), role="auditor")
    assert (tmp_path / "bundle.tar").stat().st_size > 0
    checked = rl(shared_server, "verify-bundle", str(tmp_path / "bundle.tar"))
    assert "ok" in checked.stdout


def test_trigger_wait_shows_running_tasks_and_timeout_exits_3(shared_server: Server, tmp_path: Path) -> None:
    name = registered(shared_server, tmp_path)
    timed_out = rl(shared_server, "trigger", name, "-p", "query=t", "--wait", "--timeout", "1", check=False)
    assert timed_out.returncode == 3 and "still pending after 1.0 s" in timed_out.stderr
    waiting = subprocess.Popen(
        [RUNLEDGER, "trigger", name, "-p", "query=w", "--wait", "--timeout", "60"],
        env=cli_env(shared_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stdout is not None
        run_id = waiting.stdout.readline().strip()
        assert waiting.poll() is None  # still waiting for the run
        complete(shared_server, run_id, worker_id="cli-test")
        _, progress = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, progress
    assert f"run {run_id}: running fetch" in progress
    assert f"run {run_id}: running summarise" in progress
    assert "task fetch: success (exit 0, 0.5 s)" in progress
    assert f"run {run_id}: succeeded" in progress
    assert (
        "--timeout" in rl(shared_server, "trigger", "--help").stdout
        and "3" in rl(shared_server, "trigger", "--help").stdout
    )


@SQLITE_ONLY
def test_commands_refuse_without_a_url_and_write_nothing(shared_server: Server, tmp_path: Path) -> None:
    name = registered(shared_server, tmp_path)
    before = json.loads(rl(shared_server, "runs", "list", "--workflow", name, "--json").stdout or "null")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    _, path = definition_file(tmp_path)
    for args in (
        ["trigger", name, "-p", "query=x"],
        ["workflows", "register", str(path)],
        ["replay", "some-run"],
        ["runs", "cancel", "some-run"],
        ["runs", "list"],
        ["files", "upload", str(path)],
    ):
        done = subprocess.run(
            [RUNLEDGER, *args], env=env, capture_output=True, text=True, cwd=tmp_path, check=False
        )
        assert done.returncode == 2, (args, done.stderr)
        assert "RUNLEDGER_URL" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".runledger").exists()  # no database was made on the side
    assert (
        json.loads(rl(shared_server, "runs", "list", "--workflow", name, "--json").stdout or "null") == before
    )


@SQLITE_ONLY
def test_errors_of_the_api_exit_2_with_its_message(shared_server: Server, tmp_path: Path) -> None:
    name = registered(shared_server, tmp_path)
    completed = rl(shared_server, "runs", "list", "--status", "completed", check=False)
    assert completed.returncode == 2 and "422" in completed.stderr and "status" in completed.stderr
    unknown = rl(shared_server, "trigger", "no-such-workflow", check=False)
    assert unknown.returncode == 2 and "404" in unknown.stderr
    denied = rl(shared_server, "trigger", name, "-p", "query=x", role="auditor", check=False)
    assert denied.returncode == 2 and "403" in denied.stderr
    stranger = rl(shared_server, "runs", "list", check=False, RUNLEDGER_TOKEN="nope")
    assert stranger.returncode == 2 and "401" in stranger.stderr
    malformed = rl(shared_server, "trigger", name, "-p", "query", check=False)
    assert malformed.returncode == 2 and "KEY=VALUE" in malformed.stderr
    wrong_type = rl(shared_server, "trigger", name, "-p", "query=a", "-p", "limit=many", check=False)
    assert wrong_type.returncode == 2 and "limit" in wrong_type.stderr
    missing = rl(shared_server, "workflows", "register", str(tmp_path / "absent.yaml"), check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@SQLITE_ONLY
def test_a_closed_pipe_exits_0_and_a_terminal_gets_a_table_that_says_more_exist(
    shared_server: Server, tmp_path: Path
) -> None:
    name = registered(shared_server, tmp_path)
    with shared_server.client("operator") as client:
        for i in range(120):
            body = {"parameters": {"query": "q" * 400 + str(i)}}
            assert client.post(f"/api/workflows/{name}/trigger", json=body).status_code == 202
    piped = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {RUNLEDGER} runs list --workflow {name} --limit 1000 --json | head -1",
        ],
        env=cli_env(shared_server),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["workflow"] == name and "Traceback" not in piped.stderr

    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [RUNLEDGER, "runs", "list", "--workflow", name, "--limit", "5"],
        env=cli_env(shared_server) | {"COLUMNS": "200"},
        stdout=terminal,
        stderr=subprocess.PIPE,
        text=True,
    ) as shown:
        os.close(terminal)
        _, stderr = shown.communicate(timeout=60)
        screen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
    os.close(controller)
    text = screen.decode()
    assert shown.returncode == 0, stderr
    assert "RUN" in text and "WORKFLOW" in text and "CREATED" in text and "\t" not in text
    assert len([line for line in text.splitlines() if name in line]) == 5
    assert "115 more; use --limit or --cursor" in stderr
