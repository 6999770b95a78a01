"""Timeouts, retries with backoff, on_failure: continue, and cancellation."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ledger.hashing import parse_timestamp
from ledger.service import Ledger
from ledger.settings import Settings
from tests.integration.executor.conftest import (
    StartExecutor,
    events_of,
    finished,
    register_and_trigger,
    wait_until_done,
)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


def test_a_task_past_its_timeout_is_killed_and_fails_the_run(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    definition = {
        "name": "slow",
        "tasks": [{"name": "nap", "command": ["sleep", "30"], "timeout_seconds": 0.5}],
    }
    run_id = register_and_trigger(ledger, definition)
    began = time.monotonic()
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert time.monotonic() - began < 10
    assert run.status == "failed"
    attempt = finished(ledger, run_id)["nap"][0]
    assert attempt["status"] == "failed"
    assert "timed out" in attempt["error"]
    assert attempt["duration_seconds"] < 5


def test_a_run_past_its_timeout_is_stopped_and_failed(ledger: Ledger, start_executor: StartExecutor) -> None:
    definition = {
        "name": "slow-run",
        "timeout_seconds": 1,
        "tasks": [{"name": "nap", "command": ["sleep", "30"]}],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id, timeout=15)

    assert run.status == "failed"
    assert run.error is not None and "timed out" in run.error
    assert finished(ledger, run_id)["nap"][0]["error"] == "run timed out"


def test_a_failing_task_is_retried_with_growing_delays_and_each_attempt_is_recorded(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    # Fails twice, then succeeds: the attempt number comes from $RUNLEDGER_ATTEMPT.
    definition = {
        "name": "flaky",
        "max_retries": 3,
        "retry_delay_seconds": 0.3,
        "tasks": [{"name": "try", "command": ["sh", "-c", 'test "$RUNLEDGER_ATTEMPT" -ge 3']}],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "success"
    attempts = finished(ledger, run_id)["try"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["status"] for a in attempts] == ["failed", "failed", "success"]
    assert [a["exit_code"] for a in attempts] == [1, 1, 0]
    starts = [parse_timestamp(e.data["started_at"]) for e in events_of(ledger, run_id, "Run.TaskStarted")]
    ends = [parse_timestamp(a["ended_at"]) for a in attempts]
    first_gap = (starts[1] - ends[0]).total_seconds()
    second_gap = (starts[2] - ends[1]).total_seconds()
    assert first_gap >= 0.3
    assert second_gap >= 0.6


def test_a_task_that_keeps_failing_fails_the_run_after_its_last_retry(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    definition = {
        "name": "broken",
        "retry_delay_seconds": 0,
        "tasks": [
            {"name": "boom", "command": ["false"], "max_retries": 2},
            {"name": "after", "depends_on": ["boom"], "command": ["true"]},
        ],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "failed"
    assert "boom" in (run.error or "")
    tasks = finished(ledger, run_id)
    assert [a["attempt"] for a in tasks["boom"]] == [1, 2, 3]
    assert "after" not in tasks


def test_on_failure_continue_lets_the_rest_run_and_the_run_still_ends_failed(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    definition = {
        "name": "tolerant",
        "tasks": [
            {"name": "optional", "command": ["false"], "on_failure": "continue"},
            {"name": "after", "depends_on": ["optional"], "command": ["true"]},
            {"name": "beside", "command": ["true"]},
        ],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id)

    tasks = finished(ledger, run_id)
    assert tasks["optional"][0]["status"] == "failed"
    assert tasks["after"][0]["status"] == "success"
    assert tasks["beside"][0]["status"] == "success"
    assert run.status == "failed"
    assert "optional" in (run.error or "")


def test_cancelling_a_run_kills_its_sleeping_process_group_within_five_seconds(
    ledger: Ledger, settings: Settings, start_executor: StartExecutor
) -> None:
    definition = {
        "name": "sleepy",
        "tasks": [{"name": "nap", "command": ["sh", "-c", "sleep 60 & echo $! > child.pid; wait"]}],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()
    pid_file = settings.run_work_dir / run_id / "child.pid"
    deadline = time.monotonic() + 15
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert pid_alive(child)

    ledger.cancel(run_id, principal="operator-1")
    cancelled = time.monotonic()
    while pid_alive(child):
        assert time.monotonic() - cancelled < 5, "the process outlived the cancel by 5 s"
        time.sleep(0.05)

    time.sleep(1)
    run = ledger.get_run(run_id)
    assert run.status == "killed"
    killed = events_of(ledger, run_id, "Run.Killed")
    assert [e.data["by"] for e in killed] == ["operator-1"]
    events = ledger.stream_events(run_id)
    after = events[[e.type for e in events].index("Run.Killed") + 1 :]
    # Only the killed attempt's closing may follow the cancel.
    assert all(e.type == "Run.TaskFinished" and e.data["status"] == "killed" for e in after)


def test_a_task_that_exits_zero_without_its_declared_output_fails(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    definition = {
        "name": "forgetful",
        "tasks": [
            {"name": "make", "command": ["true"], "outputs": ["result.txt"]},
            {
                "name": "escape",
                "command": ["ln", "-s", "/etc/hostname", "link.txt"],
                "outputs": ["link.txt"],
                "on_failure": "continue",
            },
        ],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "failed"
    tasks = finished(ledger, run_id)
    assert tasks["make"][0]["exit_code"] == 0
    assert tasks["make"][0]["status"] == "failed"
    assert "result.txt" in tasks["make"][0]["error"]
    assert tasks["escape"][0]["status"] == "failed"
    assert "symbolic link" in tasks["escape"][0]["error"]
    assert tasks["escape"][0]["outputs"] == []


def test_a_container_task_without_a_container_runtime_fails_clearly_rather_than_running_locally(
    ledger: Ledger, settings: Settings, start_executor: StartExecutor
) -> None:
    settings.container_runtime = "runledger-no-such-runtime"  # the executor's settings
    definition = {
        "name": "boxed",
        "tasks": [{"name": "inside", "command": ["touch", "ran-locally"], "image": "alpine:3"}],
    }
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id)

    assert run.status == "failed"
    attempt = finished(ledger, run_id)["inside"][0]
    assert attempt["image"] == "alpine:3" and attempt["exit_code"] is None and attempt["image_hash"] is None
    assert attempt["error"] == (
        "container runtime 'runledger-no-such-runtime' (RUNLEDGER_CONTAINER_RUNTIME) is not installed"
    )
    assert not (settings.run_work_dir / run_id / "ran-locally").exists()
