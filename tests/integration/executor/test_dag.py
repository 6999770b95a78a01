"""A multi-task DAG: parallel branches, evidence checked against our own hashes, templating."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ledger.hashing import parse_timestamp
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.filestore import FileStore
from tests.integration.executor.conftest import (
    StartExecutor,
    events_of,
    finished,
    register_and_trigger,
    wait_until_done,
)

PIPELINE = {
    "name": "pipeline",
    "params": {"word": {"type": "string", "required": True}},
    "tasks": [
        {
            "name": "make",
            "command": [
                "sh",
                "-c",
                "printf '%s\\n' \"$PARAM_WORD\" > seed.txt; "
                'echo count=3 >> "$RUNLEDGER_OUTPUTS"; '
                "echo made; echo oops >&2",
            ],
            "outputs": ["seed.txt"],
        },
        {
            "name": "left",
            "depends_on": ["make"],
            "inputs": ["seed.txt"],
            "command": ["sh", "-c", "sleep 1; cat seed.txt seed.txt > left.txt", "{{ params.word }}"],
            "outputs": ["left.txt"],
        },
        {
            "name": "right",
            "depends_on": ["make"],
            "inputs": ["seed.txt"],
            "command": [
                "sh",
                "-c",
                'sleep 1; echo "$1" > right.txt',
                "sh",
                "n={{ tasks.make.outputs.count }}",
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


def test_independent_branches_run_at_the_same_time_and_leave_evidence_we_can_recompute(
    ledger: Ledger, files: FileStore, settings: Settings, start_executor: StartExecutor
) -> None:
    run_id = register_and_trigger(ledger, PIPELINE, {"word": "hello"})
    start_executor(concurrency=2)

    run = wait_until_done(ledger, run_id)

    assert run.status == "success"
    tasks = finished(ledger, run_id)
    left, right = tasks["left"][0], tasks["right"][0]
    assert parse_timestamp(left["started_at"]) < parse_timestamp(right["ended_at"])
    assert parse_timestamp(right["started_at"]) < parse_timestamp(left["ended_at"])
    run_dir = settings.run_work_dir / run_id
    expected = {
        "seed.txt": b"hello\n",
        "left.txt": b"hello\nhello\n",
        "right.txt": b"n=3\n",
        "joined.txt": b"hello\nhello\nn=3\n",
    }
    for name, content in expected.items():
        assert (run_dir / name).read_bytes() == content
    make = tasks["make"][0]
    assert make["outputs"] == [{"path": "seed.txt", "sha256": sha(b"hello\n"), "size": 6}]
    assert make["output_vars"] == {"count": "3"}
    assert make["stdout"] == {"sha256": sha(b"made\n"), "size": 5}
    assert files.read(make["stderr"]["sha256"]) == b"oops\n"
    assert make["exit_code"] == 0 and make["attempt"] == 1
    assert make["executable"] is not None and Path(make["executable"]).name in {"sh", "dash", "bash"}
    assert make["executable_sha256"] == sha(Path(make["executable"]).read_bytes())
    assert make["image"] is None and make["image_hash"] is None and make["host"]
    assert make["duration_seconds"] >= 0
    join = tasks["join"][0]
    assert join["inputs"] == [
        {"path": "left.txt", "sha256": sha(expected["left.txt"]), "size": 12},
        {"path": "right.txt", "sha256": sha(expected["right.txt"]), "size": 4},
    ]
    assert files.read(join["outputs"][0]["sha256"]) == expected["joined.txt"]
    assert right["command"][-1] == "n=3"
    assert left["command"][-1] == "hello"
    assert len(events_of(ledger, run_id, "Run.Started")) == 1


def test_a_parameter_full_of_shell_syntax_reaches_argv_literally_and_runs_nothing(
    ledger: Ledger, settings: Settings, start_executor: StartExecutor
) -> None:
    hostile = "x; touch pwned1 && $(touch pwned2) `touch pwned3` | touch pwned4"
    definition = {
        "name": "echo-it",
        "params": {"text": {"type": "string"}},
        "tasks": [{"name": "echo", "command": ["printf", "%s", "{{ params.text }}"]}],
    }
    run_id = register_and_trigger(ledger, definition, {"text": hostile})
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "success"
    attempt = finished(ledger, run_id)["echo"][0]
    assert attempt["command"] == ["printf", "%s", hostile]
    run_dir = settings.run_work_dir / run_id
    assert not list(run_dir.glob("pwned*"))
    assert attempt["stdout"]["sha256"] == sha(hostile.encode())
