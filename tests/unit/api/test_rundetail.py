"""The per-run fold behind /tasks, /files and /compare, over hand-made event records."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.store.event_record import EventRecord
from projections.views.compare import compare
from projections.views.rundetail import batch_progress, files_of, find_task, log_ref, tasks_of

SHA_A, SHA_B, SHA_LOG, SHA_PARAM = "a" * 64, "b" * 64, "c" * 64, "d" * 64
THREE_TASK_DEFINITION = {
    "name": "wf",
    "params": {"seed": {"type": "file"}, "n": {"type": "integer"}},
    "tasks": [
        {"name": "make", "command": ["x"]},
        {"name": "use", "command": ["y"]},
        {"name": "later", "command": ["z"]},
    ],
}


def record(stream: str, sequence: int, type_: str, **data: Any) -> EventRecord:
    return EventRecord(
        stream=stream,
        sequence=sequence,
        position=sequence,
        type=type_,
        timestamp=f"2026-01-01T00:00:{sequence:02d}.000000Z",
        data=data,
        hash="0" * 64,
        prev_hash=None,
    )


def finished(
    stream: str, sequence: int, task: str, attempt: int, status: str, **evidence: Any
) -> EventRecord:
    base = {
        "task": task,
        "attempt": attempt,
        "status": status,
        "exit_code": 0 if status == "success" else 1,
        "command": ["x"],
        "inputs": [],
        "outputs": [],
        "output_vars": {},
        "stdout": None,
        "stderr": None,
        "duration_seconds": 1.0,
    }
    return record(stream, sequence, "Run.TaskFinished", **(base | evidence))


def run(stream: str, n: int, out_sha: str) -> list[EventRecord]:
    return [
        record(
            stream,
            1,
            "Run.Triggered",
            definition=THREE_TASK_DEFINITION,
            definition_hash="h",
            parameters={"seed": SHA_PARAM, "n": n},
        ),
        record(stream, 2, "Run.Started", worker_id="w", lease_expires_at="x"),
        record(stream, 3, "Run.TaskStarted", task="make", attempt=1, command=["x"], host="h"),
        finished(stream, 4, "make", 1, "failed", stderr={"sha256": SHA_LOG, "size": 3}),
        record(stream, 5, "Run.TaskStarted", task="make", attempt=2, command=["x"], host="h"),
        finished(
            stream,
            6,
            "make",
            2,
            "success",
            outputs=[{"path": "o.txt", "sha256": out_sha, "size": 1}],
            output_vars={"k": n},
        ),
        record(
            stream,
            7,
            "Run.TaskReused",
            task="use",
            source_run_id="orig",
            outputs=[{"path": "u.txt", "sha256": SHA_B, "size": 2}],
            output_vars={},
        ),
    ]


def test_every_attempt_is_kept_oldest_first_and_reused_tasks_name_their_source() -> None:
    tasks = {t["name"]: t for t in tasks_of(run("r1", 1, SHA_A))}
    make = tasks["make"]
    assert make["status"] == "success"
    assert [(a["attempt"], a["status"], a["exit_code"]) for a in make["attempts"]] == [
        (1, "failed", 1),
        (2, "success", 0),
    ]
    assert tasks["use"]["status"] == "reused"
    assert tasks["use"]["source_run_id"] == "orig"
    assert tasks["later"] == {"name": "later", "status": "pending", "attempts": []}
    assert log_ref(make, "stderr", 1) == {"sha256": SHA_LOG, "size": 3}
    assert find_task(run("r1", 1, SHA_A), "use")["attempts"][0]["reused_from"] == "orig"


def test_files_list_file_parameters_and_task_outputs_once_each() -> None:
    files = files_of(run("r1", 1, SHA_A))
    assert files == [
        {"path": "params/seed", "sha256": SHA_PARAM, "size": None, "role": "input", "task": None},
        {"path": "o.txt", "sha256": SHA_A, "size": 1, "role": "output", "task": "make"},
        {"path": "u.txt", "sha256": SHA_B, "size": 2, "role": "output", "task": "use"},
    ]


def test_compare_reports_parameter_and_per_task_differences() -> None:
    result = compare(run("r1", 1, SHA_A), run("r2", 2, SHA_B))
    assert result["definition_hash_equal"] is True
    assert result["parameters"] == {"n": {"a": 1, "b": 2}}
    by_task = {t["task"]: t for t in result["tasks"]}
    assert by_task["make"]["differences"] == ["outputs", "output_vars"]
    assert by_task["use"]["same"] is True


SEED_DEFINITION = {
    "name": "wf",
    "params": {"seed": {"type": "file"}, "extra": {"type": "file"}},
    "tasks": [
        {"name": "first", "command": ["true"]},
        {"name": "reads", "depends_on": ["first"], "command": ["wc", "-c"], "inputs": ["params/seed"]},
        {"name": "names", "depends_on": ["first"], "command": ["cat", "{{ params.seed }}"]},
    ],
}
SEED_REF = {"path": "params/seed", "sha256": SHA_PARAM, "size": 9}


def seeded_run(*finished_tasks: EventRecord) -> list[EventRecord]:
    trigger = record(
        "r1", 1, "Run.Triggered", definition=SEED_DEFINITION, parameters={"seed": SHA_PARAM, "extra": SHA_A}
    )
    return [trigger, *finished_tasks]


def test_a_file_parameter_is_listed_once_per_task_that_read_it_with_its_size() -> None:
    events = seeded_run(
        # Before 0.x the executor also recorded the file as an input of the first task.
        finished("r1", 2, "first", 1, "success", inputs=[SEED_REF]),
        finished("r1", 3, "reads", 1, "success", inputs=[SEED_REF]),
        finished("r1", 4, "names", 1, "success", inputs=[SEED_REF]),
    )
    files = files_of(events, size_of={SHA_A: 4}.get)
    assert files == [
        {"path": "params/extra", "sha256": SHA_A, "size": 4, "role": "input", "task": None},
        {"path": "params/seed", "sha256": SHA_PARAM, "size": 9, "role": "input", "task": "reads"},
        {"path": "params/seed", "sha256": SHA_PARAM, "size": 9, "role": "input", "task": "names"},
    ]


def test_a_file_parameter_no_task_has_read_yet_is_listed_once_without_a_task() -> None:
    files = files_of(seeded_run(finished("r1", 2, "first", 1, "success")), size_of={SHA_PARAM: 9}.get)
    assert [(f["path"], f["size"], f["task"]) for f in files] == [
        ("params/seed", 9, None),
        ("params/extra", None, None),
    ]


def vars_run(stream: str, value: str) -> list[EventRecord]:
    return [
        record(stream, 1, "Run.Triggered", definition=THREE_TASK_DEFINITION, parameters={}),
        finished(stream, 2, "make", 1, "success", output_vars={"n": value, "label": "x"}),
    ]


def test_compare_reads_output_variables_that_are_numbers_as_numbers() -> None:
    same = compare(vars_run("r1", "7"), vars_run("r2", "7.0"))
    make = next(t for t in same["tasks"] if t["task"] == "make")
    assert make["same"] is True
    assert make["output_vars"]["n"] == {"a": "7", "b": "7.0", "numeric": True, "equal": True, "delta": 0}
    assert make["output_vars"]["label"]["numeric"] is False
    moved = compare(vars_run("r1", "7"), vars_run("r2", "9.5"))
    make = next(t for t in moved["tasks"] if t["task"] == "make")
    assert make["differences"] == ["output_vars"]
    assert make["output_vars"]["n"]["delta"] == 2.5
    text = compare(vars_run("r1", "7"), vars_run("r2", "seven"))
    make = next(t for t in text["tasks"] if t["task"] == "make")
    assert make["output_vars"]["n"] == {
        "a": "7",
        "b": "seven",
        "numeric": False,
        "equal": False,
        "delta": None,
    }


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["success", "killed", "success"], "killed"),
        (["failed", "killed", "success"], "failed"),
        (["success", "success"], "success"),
        (["success", "running"], "running"),
        (["pending", "pending"], "pending"),
    ],
)
def test_a_batch_is_killed_when_an_item_was_killed_and_none_failed(
    statuses: list[str], expected: str
) -> None:
    run_ids = [f"r{i}" for i in range(len(statuses))]
    progress = batch_progress("b", run_ids, statuses, [f"item-{i}" for i in range(len(statuses))])
    assert progress["status"] == expected
    assert progress["items"] == [
        {"item": f"item-{i}", "run_id": run_ids[i], "status": status} for i, status in enumerate(statuses)
    ]
