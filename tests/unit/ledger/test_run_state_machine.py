"""The Run aggregate's state machine (SPEC section 1), with no store involved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import cast

import pytest

from ledger.domain.aggregate import StreamEvent
from ledger.domain.reports import TaskFinishedReport
from ledger.domain.run import Run
from ledger.domain.status import LEGAL_TRANSITIONS, RunStatus
from ledger.errors import Conflict, IllegalTransition

AT = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def chain_of(run: Run) -> list[StreamEvent]:
    """The run's pending events, typed as the hash chain's events they are."""
    return cast(list[StreamEvent], run.collect_events())


def pending_run() -> Run:
    return Run.trigger(
        run_id="run-1",
        at=AT,
        workflow="wf",
        version=1,
        definition_hash="0" * 64,
        definition={
            "name": "wf",
            "tasks": [{"name": "a", "command": ["true"]}, {"name": "g", "approval": {}, "depends_on": ["a"]}],
        },
        engine_version="test",
        triggered_by="alice",
        trigger_kind="name",
        parameters={},
        replay_of=None,
        resume_of=None,
        resume_from_task=None,
        batch_id=None,
        idempotency_key=None,
    )


def to(status: RunStatus) -> Run:
    run = pending_run()
    if status != RunStatus.PENDING:
        run.claim(worker_id="w", lease_expires_at="2026-11-22T03:01:00.000000Z", at=AT)
    if status == RunStatus.SUCCESS:
        run.succeed(worker_id="w", at=AT)
    elif status == RunStatus.FAILED:
        run.fail(error="boom", by="w", at=AT)
    elif status == RunStatus.KILLED:
        run.cancel(by="ops", reason=None, at=AT)
    elif status == RunStatus.WAITING:
        run.reach_gate(worker_id="w", task="g", approval=GATE, at=AT)
    run.collect_events()
    return run


GATE = {"meaning": "approved", "role": "operator", "signatures": 1}
COMMANDS: dict[RunStatus, Callable[[Run], None]] = {
    RunStatus.WAITING: lambda r: r.reach_gate(worker_id="w", task="g", approval=GATE, at=AT),
    RunStatus.RUNNING: lambda r: r.claim(worker_id="w2", lease_expires_at="x", at=AT),
    RunStatus.SUCCESS: lambda r: r.succeed(worker_id="w", at=AT),
    RunStatus.FAILED: lambda r: r.fail(error="e", by="ops", at=AT),
    RunStatus.KILLED: lambda r: r.cancel(by="ops", reason=None, at=AT),
}


@pytest.mark.parametrize("start", list(RunStatus))
@pytest.mark.parametrize("target", [s for s in RunStatus if s != RunStatus.PENDING])
def test_only_the_legal_transitions_are_recorded(start: RunStatus, target: RunStatus) -> None:
    run = to(start)
    version = run.version
    if (start, target) in LEGAL_TRANSITIONS:
        COMMANDS[target](run)
        assert run.status == target
        assert len(run.collect_events()) == 1
    else:
        with pytest.raises((IllegalTransition, Conflict)):
            COMMANDS[target](run)
        assert run.status == start
        assert run.version == version and run.collect_events() == []


def test_a_new_run_is_pending_and_its_first_event_opens_the_chain() -> None:
    run = pending_run()
    [event] = chain_of(run)
    assert run.status == RunStatus.PENDING
    assert event.prev_hash is None and run.last_hash == event.hash


def test_every_recorded_event_chains_to_the_one_before() -> None:
    run = pending_run()
    run.claim(worker_id="w", lease_expires_at="x", at=AT)
    run.start_task(
        worker_id="w",
        task="a",
        attempt=1,
        command=["true"],
        host="h",
        started_at="2026-11-22T03:00:00.000000Z",
        at=AT,
    )
    events = chain_of(run)
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


def test_a_task_attempt_must_follow_the_previous_one() -> None:
    run = to(RunStatus.RUNNING)
    with pytest.raises(IllegalTransition):
        run.start_task(
            worker_id="w",
            task="a",
            attempt=2,
            command=None,
            host=None,
            started_at="2026-11-22T03:00:00.000000Z",
            at=AT,
        )
    with pytest.raises(Conflict):
        run.start_task(
            worker_id="other",
            task="a",
            attempt=1,
            command=None,
            host=None,
            started_at="2026-11-22T03:00:00.000000Z",
            at=AT,
        )
    assert run.collect_events() == []


def test_a_copy_shares_the_definition_and_changes_apart_from_the_original() -> None:
    """The repository's cache hands each command a deep copy: what the command records
    must not reach the cached run, while the never-changing definition is shared."""
    import copy

    original = to(RunStatus.RUNNING)
    clone = copy.deepcopy(original)
    assert clone.definition is original.definition
    assert clone.parameters is original.parameters
    clone.start_task(
        worker_id="w",
        task="a",
        attempt=1,
        command=None,
        host="h",
        started_at="2026-11-22T03:00:01.000000Z",
        at=AT,
    )
    assert clone.tasks["a"].status == "running" and "a" not in original.tasks
    assert clone.version == original.version + 1
    assert len(clone.collect_events()) == 1 and original.collect_events() == []
    assert clone.last_hash != original.last_hash
    finished = TaskFinishedReport.model_validate(
        {"type": "task_finished", "task": "a", "attempt": 1, "exit_code": 0, "output_vars": {"n": 1}}
    )
    clone.finish_task(worker_id="w", at=AT, **finished.evidence(AT))
    again = copy.deepcopy(clone)
    again.tasks["a"].status = "changed"
    assert clone.tasks["a"].status == "success"
    assert again.tasks["a"].output_vars is clone.tasks["a"].output_vars == {"n": 1}


def test_a_run_kept_as_saved_refuses_commands_and_its_copies_take_them() -> None:
    """The run cache and the command's caller share the run they saved, so it is frozen:
    a command on it would change the kept state under every reader."""
    import copy

    from ledger.domain.aggregate import FrozenAggregate
    from ledger.service.runcache import RunCache

    cache = RunCache(size=4)
    run = to(RunStatus.RUNNING)
    run.collect_events()
    cache.saved(run)
    with pytest.raises(FrozenAggregate):
        run.start_task(
            worker_id="w",
            task="a",
            attempt=1,
            command=None,
            host="h",
            started_at="2026-11-22T03:00:01.000000Z",
            at=AT,
        )
    assert run.pending_events == [] and "a" not in run.tasks
    for clone in (cache.copy_of(run.id), copy.deepcopy(run)):
        assert clone is not None and clone is not run
        clone.start_task(
            worker_id="w",
            task="a",
            attempt=1,
            command=None,
            host="h",
            started_at="2026-11-22T03:00:01.000000Z",
            at=AT,
        )
        assert clone.tasks["a"].status == "running" and "a" not in run.tasks


def _cancelled_with_task_running() -> Run:
    run = to(RunStatus.RUNNING)
    run.start_task(
        worker_id="w",
        task="a",
        attempt=1,
        command=None,
        host=None,
        started_at="2026-11-22T03:00:00.000000Z",
        at=AT,
    )
    run.cancel(by="ops", reason=None, at=AT)
    run.collect_events()
    return run


def _closing(status: str) -> dict[str, object]:
    report = TaskFinishedReport(type="task_finished", task="a", attempt=1, status=status, exit_code=-15)
    return report.evidence(AT)


def test_after_a_cancel_only_the_holding_worker_may_close_a_running_attempt_and_only_as_killed() -> None:
    run = _cancelled_with_task_running()
    with pytest.raises(Conflict):
        run.finish_task(worker_id="other", at=AT, **_closing("killed"))
    for status in ("success", "failed"):
        with pytest.raises(Conflict):
            run.finish_task(worker_id="w", at=AT, **_closing(status))
    assert run.collect_events() == []

    run.finish_task(worker_id="w", at=AT, **_closing("killed"))

    assert run.status == RunStatus.KILLED
    assert run.tasks["a"].status == "killed"
    with pytest.raises(IllegalTransition):  # closed once: a second close is refused
        run.finish_task(worker_id="w", at=AT, **_closing("killed"))
