"""``runledger serve`` with its executor, as a task sees it: a cancel closes the running
attempt as ``killed``; a task run as another user cannot read the admin token, the database
or the database URL; no task process outlives a SIGKILLed server (read from /proc)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import eventually
from tests.conftest import fresh_database_url
from tests.e2e.conftest import Server, start_server
from tests.e2e.test_executor_api import register_and_trigger, wait_done


@pytest.fixture
def open_workdir() -> Iterator[Path]:
    """A directory another user can cross (pytest's own are 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="runledger-e2e-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def task_processes(run_id: str) -> dict[int, str]:
    """Live (not zombie) processes whose environment names ``run_id``: pid -> command line."""
    marker = f"RUNLEDGER_RUN_ID={run_id}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and marker in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def tasks(client: httpx.Client, run_id: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in client.get(f"/api/runs/{run_id}/tasks").json()["tasks"]}


def test_cancelling_a_running_sleep_closes_its_attempt_killed_and_skips_the_rest(
    backend: str, open_workdir: Path
) -> None:
    with fresh_database_url(backend, open_workdir) as url:
        server = start_server(url, open_workdir / "srv", executor=True)
        try:
            client = server.client("operator")
            definition = {
                "name": "cancel-me",
                "tasks": [
                    {"name": "nap", "command": ["sh", "-c", "echo dozing; exec sleep 60"]},
                    {"name": "later", "depends_on": ["nap"], "command": ["true"]},
                ],
            }
            run_id = register_and_trigger(client, definition)
            eventually(lambda: tasks(client, run_id)["nap"]["status"] == "running" or None, timeout=20)
            time.sleep(0.3)

            assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
            assert wait_done(client, run_id)["status"] == "killed"
            nap = eventually(lambda: (t := tasks(client, run_id))["nap"]["attempts"][0].get("ended_at") and t)

            attempt = nap["nap"]["attempts"][0]
            assert nap["nap"]["status"] == attempt["status"] == "killed"
            assert attempt["exit_code"] == -15 and attempt["signal"] == "SIGTERM"
            assert attempt["ended_at"] >= attempt["started_at"] and attempt["duration_seconds"] > 0
            logs = client.get(f"/api/runs/{run_id}/tasks/nap/logs", params={"stream": "stdout"})
            assert logs.text == "dozing\n"
            assert nap["later"]["status"] == "skipped"
            assert {t["status"] for t in nap.values()} <= {"killed", "skipped"}
        finally:
            server.stop()
            server.close_clients()


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping tasks to another user needs root")
def test_a_task_run_as_the_task_user_cannot_read_the_admin_token_the_database_or_its_url(
    backend: str, open_workdir: Path
) -> None:
    with fresh_database_url(backend, open_workdir) as url:
        server = start_server(url, open_workdir / "srv", executor=True, env={"RUNLEDGER_TASK_USER": "nobody"})
        try:
            client = server.client("operator")
            state = server.state_dir
            database = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else "/nonexistent"
            script = (
                f"id -u; cat ../../admin-token; head -c 64 {database}; "
                f"cat {state}/signing-key* {state}/admin-token; ls {state}; env; "
                'echo seen=yes >> "$RUNLEDGER_OUTPUTS"; echo made > out.txt'
            )
            definition = {
                "name": "nosy",
                "tasks": [{"name": "peek", "command": ["sh", "-c", script], "outputs": ["out.txt"]}],
            }
            run_id = register_and_trigger(client, definition)
            assert wait_done(client, run_id)["status"] == "success"

            printed = client.get(f"/api/runs/{run_id}/tasks/peek/logs", params={"stream": "stdout"}).text
            errors = client.get(f"/api/runs/{run_id}/tasks/peek/logs", params={"stream": "stderr"}).text
            assert printed.splitlines()[0] == str(65534)
            assert server.admin_token and server.admin_token not in printed + errors
            assert "SQLite format" not in printed
            assert url not in printed and "RUNLEDGER_DATABASE_URL" not in printed
            assert "Permission denied" in errors
            assert tasks(client, run_id)["peek"]["attempts"][0]["output_vars"] == {"seen": "yes"}
        finally:
            server.stop()
            server.close_clients()


def test_no_task_process_outlives_a_sigkilled_server_once_an_executor_restarts(
    backend: str, open_workdir: Path
) -> None:
    with fresh_database_url(backend, open_workdir) as url:
        server = start_server(url, open_workdir / "srv", executor=True)
        restarted: Server | None = None
        try:
            client = server.client("operator")
            definition = {
                "name": "orphans",
                "tasks": [
                    {"name": "direct", "command": ["sleep", "60"]},
                    {"name": "spawner", "command": ["sh", "-c", "sleep 61 & sleep 62 & wait"]},
                ],
            }
            run_id = register_and_trigger(client, definition)
            eventually(lambda: len(task_processes(run_id)) >= 4 or None, timeout=20)

            server.stop(signal.SIGKILL)
            # The tasks' own processes die with their executor (a parent-death signal).
            eventually(
                lambda: (
                    not any(" 60" in c or c.startswith("sh ") for c in task_processes(run_id).values())
                    or None
                ),
                timeout=5,
            )
            restarted = start_server(url, open_workdir / "srv", executor=True)
            # What they spawned is ended by the next executor on these run directories.
            eventually(lambda: not task_processes(run_id) or None, timeout=5)
        finally:
            for pid in task_processes(run_id) if "run_id" in locals() else {}:
                os.kill(pid, signal.SIGKILL)
            if restarted is not None:
                restarted.stop()
                restarted.close_clients()
            server.stop()
            server.close_clients()
