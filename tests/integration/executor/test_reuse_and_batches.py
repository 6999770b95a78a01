"""File parameters, replay, resume with reuse, and batches with bounded parallelism."""

from __future__ import annotations

import hashlib

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

TWO_STEPS = {
    "name": "two-steps",
    "params": {"source": {"type": "file", "required": True}, "suffix": {"type": "string", "default": "!"}},
    "tasks": [
        {
            "name": "prepare",
            "command": [
                "sh",
                "-c",
                'tr a-z A-Z < "$1" > upper.txt; echo stamp=$$ >> "$RUNLEDGER_OUTPUTS"',
                "sh",
                "{{ params.source }}",
            ],
            "outputs": ["upper.txt"],
        },
        {
            "name": "finish",
            "depends_on": ["prepare"],
            "inputs": ["upper.txt"],
            "command": [
                "sh",
                "-c",
                'cat upper.txt > final.txt; echo "$1" >> final.txt',
                "sh",
                "{{ tasks.prepare.outputs.stamp }}{{ params.suffix }}",
            ],
            "outputs": ["final.txt"],
        },
    ],
}


def test_a_file_parameter_is_placed_in_the_run_directory_and_counted_as_an_input(
    ledger: Ledger, files: FileStore, settings: Settings, start_executor: StartExecutor
) -> None:
    sha, size = files.put_bytes(b"abc\n")
    run_id = register_and_trigger(ledger, TWO_STEPS, {"source": sha})
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "success"
    prepare = finished(ledger, run_id)["prepare"][0]
    assert prepare["command"][-1] == "params/source"
    assert {"path": "params/source", "sha256": sha, "size": size} in prepare["inputs"]
    assert (settings.run_work_dir / run_id / "upper.txt").read_bytes() == b"ABC\n"


def test_a_file_parameter_whose_stored_bytes_changed_fails_the_run_before_any_task(
    ledger: Ledger, files: FileStore, start_executor: StartExecutor
) -> None:
    sha, _ = files.put_bytes(b"original\n")
    path = files.path_for(sha)
    path.chmod(0o644)
    path.write_bytes(b"tampered\n")
    run_id = register_and_trigger(ledger, TWO_STEPS, {"source": sha})
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "failed"
    assert "corrupt" in (run.error or "")
    assert not events_of(ledger, run_id, "Run.TaskStarted")


def test_replay_runs_the_same_definition_again_with_overrides(
    ledger: Ledger, files: FileStore, settings: Settings, start_executor: StartExecutor
) -> None:
    sha, _ = files.put_bytes(b"xy\n")
    first = register_and_trigger(ledger, TWO_STEPS, {"source": sha})
    start_executor()
    wait_until_done(ledger, first)

    again = ledger.replay(first, overrides={"suffix": "?"}, principal="tester").run_id
    run = wait_until_done(ledger, again)

    assert run.status == "success"
    assert run.replay_of == first
    assert len(events_of(ledger, again, "Run.TaskStarted")) == 2
    assert (settings.run_work_dir / again / "final.txt").read_text().endswith("?\n")


def test_resume_restores_upstream_outputs_by_hash_and_reruns_only_the_rest(
    ledger: Ledger, files: FileStore, settings: Settings, start_executor: StartExecutor
) -> None:
    sha, _ = files.put_bytes(b"resume me\n")
    first = register_and_trigger(ledger, TWO_STEPS, {"source": sha})
    start_executor()
    wait_until_done(ledger, first)
    original = finished(ledger, first)["prepare"][0]

    resumed = ledger.resume(first, from_task="finish", principal="tester").run_id
    run = wait_until_done(ledger, resumed)

    assert run.status == "success"
    reused = events_of(ledger, resumed, "Run.TaskReused")
    assert [e.data["task"] for e in reused] == ["prepare"]
    assert reused[0].data["source_run_id"] == first
    assert reused[0].data["outputs"] == original["outputs"]
    assert reused[0].data["output_vars"] == original["output_vars"]
    [claimed] = events_of(ledger, resumed, "Run.Started")
    assert reused[0].data["by"] == claimed.data["worker_id"]  # the run's holder recorded it
    started = [e.data["task"] for e in events_of(ledger, resumed, "Run.TaskStarted")]
    assert started == ["finish"]
    restored = (settings.run_work_dir / resumed / "upper.txt").read_bytes()
    assert hashlib.sha256(restored).hexdigest() == original["outputs"][0]["sha256"]
    stamp = original["output_vars"]["stamp"]
    assert (settings.run_work_dir / resumed / "final.txt").read_text() == f"RESUME ME\n{stamp}!\n"


def test_resume_refuses_to_restore_an_output_whose_stored_bytes_changed(
    ledger: Ledger, files: FileStore, start_executor: StartExecutor
) -> None:
    sha, _ = files.put_bytes(b"abc\n")
    first = register_and_trigger(ledger, TWO_STEPS, {"source": sha})
    executor = start_executor()
    wait_until_done(ledger, first)
    executor.stop(drain_seconds=0)
    output = finished(ledger, first)["prepare"][0]["outputs"][0]["sha256"]
    stored = files.path_for(output)
    stored.chmod(0o644)
    stored.write_bytes(b"EVIL\n")

    resumed = ledger.resume(first, from_task="finish", principal="tester").run_id
    start_executor()
    run = wait_until_done(ledger, resumed)

    assert run.status == "failed"
    assert "corrupt" in (run.error or "")
    assert not events_of(ledger, resumed, "Run.TaskReused")


def test_a_batch_runs_one_run_per_item_never_more_than_its_parallelism_at_once(
    ledger: Ledger, settings: Settings, start_executor: StartExecutor
) -> None:
    definition = {
        "name": "per-item",
        "params": {"item": {"type": "string"}},
        "tasks": [{"name": "work", "command": ["sh", "-c", 'sleep 0.4; test "$PARAM_ITEM" != bad']}],
    }
    ledger.register_workflow(definition, principal="tester")
    batch = ledger.trigger_batch(
        workflow="per-item",
        items=["a", "b", "bad", "c", "d"],
        input_param="item",
        parallelism=2,
        principal="tester",
    )
    start_executor(concurrency=4)

    runs = [wait_until_done(ledger, run_id) for run_id in batch.run_ids]

    assert [r.parameters["item"] for r in runs] == ["a", "b", "bad", "c", "d"]
    assert [r.status for r in runs] == ["success", "success", "failed", "success", "success"]
    spans = []
    for run_id in batch.run_ids:
        events = ledger.stream_events(run_id)
        spans.append((parse_timestamp(events[1].timestamp), parse_timestamp(events[-1].timestamp)))
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2
    assert most == 2  # the batch did use its parallelism
