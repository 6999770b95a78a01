"""A cancel or a run timeout closes the running attempts as ``killed``, with the evidence
gathered up to the kill, and tasks that never started read ``skipped`` (SPEC section 5)."""

from __future__ import annotations

import time

from ledger.service import Ledger
from projections.views.rundetail import run_events, tasks_of
from tests.builders import eventually
from tests.integration.executor.conftest import (
    StartExecutor,
    events_of,
    finished,
    register_and_trigger,
    wait_until_done,
)

CHAIN = {
    "name": "chain",
    "tasks": [
        {"name": "talk", "command": ["sh", "-c", "echo before; echo oops >&2; exec sleep 60"]},
        {"name": "after", "depends_on": ["talk"], "command": ["true"]},
    ],
}


def test_a_cancelled_running_task_is_closed_killed_with_its_evidence_and_the_rest_skipped(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    run_id = register_and_trigger(ledger, CHAIN)
    start_executor()
    eventually(lambda: events_of(ledger, run_id, "Run.TaskStarted"), timeout=15)
    time.sleep(0.3)  # let the task print before it is killed

    ledger.cancel(run_id, principal="operator-1")
    attempt = eventually(lambda: finished(ledger, run_id).get("talk"), timeout=15)[0]

    assert ledger.get_run(run_id).status == "killed"
    assert attempt["status"] == "killed"
    assert attempt["exit_code"] == -15  # SIGTERM, as Popen reports a signal
    assert attempt["error"] == "run cancelled"
    assert attempt["ended_at"] >= attempt["started_at"]
    assert 0.3 <= attempt["duration_seconds"] < 10
    tasks = {t["name"]: t for t in tasks_of(run_events(ledger, run_id))}
    assert tasks["talk"]["status"] == "killed"
    assert tasks["talk"]["attempts"][0]["signal"] == "SIGTERM"
    assert tasks["talk"]["attempts"][0]["stdout"]["size"] == len(b"before\n")
    assert tasks["talk"]["attempts"][0]["stderr"]["size"] == len(b"oops\n")
    assert tasks["after"]["status"] == "skipped" and tasks["after"]["attempts"] == []
    types = [e.type for e in ledger.stream_events(run_id)]
    assert types[-2:] == ["Run.Killed", "Run.TaskFinished"]


def test_a_run_timeout_closes_its_running_task_as_killed_before_failing_the_run(
    ledger: Ledger, start_executor: StartExecutor
) -> None:
    definition = {**CHAIN, "name": "chain-timeout", "timeout_seconds": 1}
    run_id = register_and_trigger(ledger, definition)
    start_executor()

    run = wait_until_done(ledger, run_id, timeout=20)

    assert run.status == "failed"
    attempt = finished(ledger, run_id)["talk"][0]
    assert attempt["status"] == "killed" and attempt["error"] == "run timed out"
    tasks = {t["name"]: t for t in tasks_of(run_events(ledger, run_id))}
    assert tasks["talk"]["status"] == "killed"
    assert tasks["after"]["status"] == "skipped"
