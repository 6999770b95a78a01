"""What a task can make the executor read: never a host file through a link (a symlinked or
hard-linked output, a symlink in place of its stdout capture or of ``$RUNLEDGER_OUTPUTS``),
and never the server's environment. Real subprocesses through the real executor."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ledger.service import Ledger
from ledger.store.filestore import FileStore
from tests.integration.executor.conftest import (
    StartExecutor,
    finished,
    register_and_trigger,
    wait_until_done,
)

SECRET = b"token=host-secret-do-not-leak\n"


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    """A file outside every run directory, as /etc/hostname is."""
    path = tmp_path / "host-secret.txt"
    path.write_bytes(SECRET)
    return path


def run_one(ledger: Ledger, start: StartExecutor, name: str, script: str, **task: Any) -> dict[str, Any]:
    definition = {"name": name, "tasks": [{"name": "t", "command": ["sh", "-c", script], **task}]}
    run_id = register_and_trigger(ledger, definition)
    start()
    wait_until_done(ledger, run_id)
    attempt: dict[str, Any] = finished(ledger, run_id)["t"][0]
    return attempt


def stored(files: FileStore, ref: dict[str, Any] | None) -> bytes:
    assert ref is not None
    return files.read(ref["sha256"])


def test_an_output_hard_linked_to_a_host_file_is_refused_and_not_stored(
    ledger: Ledger, start_executor: StartExecutor, files: FileStore, host_file: Path
) -> None:
    attempt = run_one(ledger, start_executor, "hardlink", f"ln {host_file} out.txt", outputs=["out.txt"])

    assert attempt["status"] == "failed"
    assert "hard links" in attempt["error"]
    assert attempt["outputs"] == []
    assert not files.exists(hashlib.sha256(SECRET).hexdigest())


def test_a_symlinked_output_or_output_directory_is_refused_and_not_stored(
    ledger: Ledger, start_executor: StartExecutor, files: FileStore, host_file: Path
) -> None:
    script = f"ln -s {host_file} out.txt; ln -s {host_file.parent} dir"
    attempt = run_one(ledger, start_executor, "symlink", script, outputs=["out.txt"])
    nested = run_one(ledger, start_executor, "symdir", script, outputs=[f"dir/{host_file.name}"])

    assert attempt["status"] == nested["status"] == "failed"
    assert "symbolic link" in attempt["error"] and "symbolic link" in nested["error"]
    assert not files.exists(hashlib.sha256(SECRET).hexdigest())


def test_a_task_replacing_its_stdout_capture_with_a_symlink_records_only_what_it_printed(
    ledger: Ledger, start_executor: StartExecutor, files: FileStore, host_file: Path
) -> None:
    script = (
        'logs=$(dirname "$RUNLEDGER_OUTPUTS"); '
        f'rm -f "$logs/t.1.stdout" "$logs/t.1.stderr"; ln -s {host_file} "$logs/t.1.stdout"; '
        f'ln -s {host_file} "$logs/t.1.stderr"; echo printed'
    )
    attempt = run_one(ledger, start_executor, "capture", script)

    assert attempt["status"] == "success"
    assert stored(files, attempt["stdout"]) == b"printed\n"
    assert stored(files, attempt["stderr"]) == b""


def test_a_symlink_put_at_runledger_outputs_is_not_read(
    ledger: Ledger, start_executor: StartExecutor, host_file: Path
) -> None:
    script = f'rm -f "$RUNLEDGER_OUTPUTS"; ln -s {host_file} "$RUNLEDGER_OUTPUTS"'
    attempt = run_one(ledger, start_executor, "outputs", script)

    assert attempt["status"] == "success"
    assert attempt["output_vars"] == {}


def test_output_variables_written_the_ordinary_way_still_arrive(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    attempt = run_one(ledger, start_executor, "vars", 'echo n=7 >> "$RUNLEDGER_OUTPUTS"')

    assert attempt["output_vars"] == {"n": "7"}


def test_a_task_sees_a_declared_environment_and_none_of_the_servers_variables(
    ledger: Ledger, start_executor: StartExecutor, files: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ledger.settings.database_url
    monkeypatch.setenv("RUNLEDGER_DATABASE_URL", url)
    monkeypatch.setenv("RUNLEDGER_ADMIN_TOKEN", "rl_admin_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    definition = {
        "name": "envy",
        "params": {"q": {"type": "string", "default": "x"}},
        "tasks": [{"name": "t", "command": ["env"]}],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()
    wait_until_done(ledger, run_id)

    printed = stored(files, finished(ledger, run_id)["t"][0]["stdout"]).decode()
    env = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    assert url not in printed and "rl_admin_secret" not in printed and "aws-secret" not in printed
    assert {n for n in env if n.startswith("RUNLEDGER_")} == {
        "RUNLEDGER_RUN_ID",
        "RUNLEDGER_OUTPUTS",
        "RUNLEDGER_TASK",
        "RUNLEDGER_ATTEMPT",
        "RUNLEDGER_EXECUTOR",
    }
    assert env["RUNLEDGER_RUN_ID"] == run_id and env["RUNLEDGER_TASK"] == "t"
    assert env["PARAM_Q"] == "x"
    assert env["HOME"] == str(ledger.settings.run_work_dir / run_id)
    others = {n for n in env if not n.startswith("RUNLEDGER_")}
    assert others <= {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "PARAM_Q"}
