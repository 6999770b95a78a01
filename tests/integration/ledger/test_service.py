"""The application service on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ledger.domain.status import RunStatus
from ledger.errors import Conflict, IllegalTransition, InvalidParameters, InvalidRequest, NotFound
from ledger.hashing import definition_hash
from ledger.service import Ledger
from ledger.settings import Settings
from tests.builders import DEFINITION, reports


def test_registering_a_definition_records_version_1_and_its_hash(ledger: Ledger) -> None:
    registration = ledger.register_workflow(DEFINITION, principal="alice")
    assert (registration.name, registration.version, registration.created) == ("etl", 1, True)
    assert registration.definition_hash == definition_hash(DEFINITION)
    [event] = ledger.stream_events("workflow:etl")
    assert event.type == "Workflow.Registered"
    assert event.data["registered_by"] == "alice"
    assert event.data["definition"] == DEFINITION


def test_an_identical_definition_is_a_no_op_and_a_changed_one_a_new_version(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    before = ledger.reader.max_position()
    again = ledger.register_workflow(DEFINITION, principal="bob")
    assert (again.version, again.created) == (1, False)
    assert ledger.reader.max_position() == before
    changed = dict(DEFINITION, description="v2")
    second = ledger.register_workflow(changed, principal="bob")
    assert (second.version, second.created) == (2, True)
    assert ledger.get_workflow("etl").active.definition_hash == definition_hash(changed)


def test_a_trigger_records_everything_a_run_must_record(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    triggered = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="carol")
    [event] = ledger.stream_events(triggered.run_id)
    assert event.type == "Run.Triggered"
    assert event.sequence == 1 and event.prev_hash is None
    assert event.timestamp.endswith("Z") and len(event.timestamp.split(".")[1]) == 7
    data = event.data
    assert data["triggered_by"] == "carol"
    assert data["parameters"] == {"query": "q", "limit": 5}
    assert data["trigger_kind"] == "name"
    assert data["definition_hash"] == definition_hash(DEFINITION)
    assert data["engine_version"]
    assert event.recompute_hash() == event.hash


def test_parameters_that_do_not_match_write_nothing(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    before = ledger.reader.max_position()
    with pytest.raises(InvalidParameters):
        ledger.trigger(workflow="etl", parameters={"query": 3}, principal="carol")
    with pytest.raises(NotFound):
        ledger.trigger(workflow="nope", parameters={}, principal="carol")
    assert ledger.reader.max_position() == before


def test_the_same_idempotency_key_returns_the_first_run(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    first = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c", idempotency_key="k")
    second = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c", idempotency_key="k")
    assert first.created and not second.created
    assert first.run_id == second.run_id


def test_trigger_by_hash_stays_pinned_after_a_newer_version(ledger: Ledger) -> None:
    v1 = ledger.register_workflow(DEFINITION, principal="alice")
    ledger.register_workflow(dict(DEFINITION, description="v2"), principal="alice")
    triggered = ledger.trigger(definition_hash=v1.definition_hash, parameters={"query": "q"}, principal="c")
    run = ledger.get_run(triggered.run_id)
    assert (run.workflow_version, run.definition_hash, run.trigger_kind) == (1, v1.definition_hash, "hash")


def test_replay_re_reads_the_trigger_event_and_applies_overrides(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    original = ledger.trigger(workflow="etl", parameters={"query": "q", "limit": 9}, principal="c")
    ledger.register_workflow(dict(DEFINITION, description="v2"), principal="alice")
    replay = ledger.replay(original.run_id, overrides={"query": "other"}, principal="dave")
    data = ledger.stream_events(replay.run_id)[0].data
    assert data["definition_hash"] == definition_hash(DEFINITION)
    assert data["parameters"] == {"query": "other", "limit": 9}
    assert data["trigger_kind"] == "replay"
    assert (data["replay_of"], data["triggered_by"]) == (original.run_id, "dave")
    assert len(ledger.stream_events(original.run_id)) == 1  # the original is untouched


def test_illegal_transitions_raise_and_write_nothing(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    run_id = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
    ledger.cancel(run_id, principal="ops")
    before = ledger.reader.max_position()
    with pytest.raises(IllegalTransition):
        ledger.cancel(run_id, principal="ops")
    assert ledger.claim(run_id, worker_id="w") is None
    with pytest.raises(IllegalTransition):
        ledger.fail_run(run_id, error="x", by="ops")
    assert ledger.reader.max_position() == before
    assert ledger.get_run(run_id).status == RunStatus.KILLED


def test_a_worker_report_is_one_atomic_write(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    run_id = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
    assert ledger.claim(run_id, worker_id="w1") is not None
    before = ledger.reader.max_position()
    bad = reports(
        {"type": "task_started", "task": "extract"},
        {"type": "task_finished", "task": "extract", "exit_code": 0},
        {"type": "task_finished", "task": "load", "exit_code": 0},  # never started
    )
    with pytest.raises(IllegalTransition):
        ledger.report(run_id, worker_id="w1", reports=bad)
    assert ledger.reader.max_position() == before
    with pytest.raises(Conflict):
        ledger.report(run_id, worker_id="intruder", reports=bad[:1])
    good = reports(
        {"type": "task_started", "task": "extract"},
        {"type": "task_finished", "task": "extract", "exit_code": 0, "output_vars": {"n": 3}},
        {"type": "task_started", "task": "load"},
        {"type": "task_finished", "task": "load", "exit_code": 0},
        {"type": "run_succeeded"},
    )
    ledger.report(run_id, worker_id="w1", reports=good)
    events = ledger.stream_events(run_id)
    assert [e.type for e in events][-1] == "Run.Succeeded"
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.hash
        assert event.recompute_hash() == event.hash


def test_two_writers_racing_on_one_run_cannot_both_succeed(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    run_id = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
    first, second = ledger.get_run(run_id), ledger.get_run(run_id)
    now = datetime.now(UTC)
    first.claim(worker_id="a", lease_expires_at="x", at=now)
    second.claim(worker_id="b", lease_expires_at="x", at=now)
    ledger.save(first)
    with pytest.raises(Conflict):
        ledger._save(second)
    assert ledger.get_run(run_id).worker_id == "a"


def test_many_concurrent_claims_start_a_run_exactly_once(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    run_id = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
    winners: list[str] = []
    barrier = threading.Barrier(6)

    def claim(worker: str) -> None:
        barrier.wait()
        if ledger.claim(run_id, worker_id=worker) is not None:
            winners.append(worker)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    started = [e for e in ledger.stream_events(run_id) if e.type == "Run.Started"]
    assert [e.data["worker_id"] for e in started] == winners


def test_a_lapsed_lease_fails_the_run_with_worker_lost(settings: Settings) -> None:
    clock = [datetime.now(UTC)]
    app = Ledger(settings, clock=lambda: clock[0])
    try:
        app.register_workflow(DEFINITION, principal="alice")
        run_id = app.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
        app.claim(run_id, worker_id="w")
        assert app.expire_lease(run_id) is False
        clock[0] += timedelta(seconds=settings.lease_seconds + 1)
        assert app.expire_lease(run_id) is True
        last = app.stream_events(run_id)[-1]
        assert (last.type, last.data["error"]) == ("Run.Failed", "worker_lost")
    finally:
        app.close()


def test_positions_count_from_zero_across_the_whole_ledger(ledger: Ledger) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c")
    positions = [e.position for e in ledger.reader.iterate()]
    assert positions == list(range(len(positions)))
    assert positions[0] == 0


def test_resume_re_reads_the_trigger_and_requires_upstream_tasks_to_have_succeeded(
    ledger: Ledger,
) -> None:
    ledger.register_workflow(DEFINITION, principal="alice")
    original = ledger.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
    before = ledger.reader.max_position()
    with pytest.raises(InvalidRequest, match="did not succeed"):
        ledger.resume(original, from_task="load", principal="dave")
    with pytest.raises(InvalidRequest, match="no task"):
        ledger.resume(original, from_task="ghost", principal="dave")
    assert ledger.reader.max_position() == before
    ledger.claim(original, worker_id="w")
    ledger.report(
        original,
        worker_id="w",
        reports=reports(
            {"type": "task_started", "task": "extract"},
            {"type": "task_finished", "task": "extract", "exit_code": 0},
            {"type": "task_started", "task": "load"},
            {"type": "task_finished", "task": "load", "exit_code": 1},
            {"type": "run_failed", "error": "load failed"},
        ),
    )
    resumed = ledger.resume(original, from_task="load", overrides={"limit": 7}, principal="dave")
    data = ledger.stream_events(resumed.run_id)[0].data
    assert (data["trigger_kind"], data["resume_of"], data["resume_from_task"]) == ("resume", original, "load")
    assert data["parameters"] == {"query": "q", "limit": 7}
    assert data["definition_hash"] == definition_hash(DEFINITION)


def test_aggregates_cached_by_one_service_see_what_another_service_wrote(settings: Settings) -> None:
    """Two services on one database (two server processes): each keeps aggregates in memory,
    and each read brings a cached one up to date from the store first."""
    one, other = Ledger(settings), Ledger(settings)
    try:
        one.register_workflow(DEFINITION, principal="alice")
        first = one.trigger(workflow="etl", parameters={"query": "q"}, principal="c")
        assert one.get_workflow("etl").active.version == 1  # cached in `one` now
        changed = DEFINITION | {"description": "v2"}
        assert other.register_workflow(changed, principal="bob").version == 2
        second = one.trigger(workflow="etl", parameters={"query": "q"}, principal="c")
        assert second.definition_hash == definition_hash(changed) != first.definition_hash
        assert one.claim(second.run_id, worker_id="w1") is not None  # `one` caches the run
        other.report(
            second.run_id, worker_id="w1", reports=reports({"type": "task_started", "task": "extract"})
        )
        one.report(
            second.run_id,
            worker_id="w1",
            reports=reports({"type": "task_finished", "task": "extract", "exit_code": 0}),
        )
        assert [e.type for e in one.stream_events(second.run_id)][-2:] == [
            "Run.TaskStarted",
            "Run.TaskFinished",
        ]
    finally:
        one.close()
        other.close()


def test_a_command_on_a_stale_copy_of_a_run_is_decided_on_the_stored_run(settings: Settings) -> None:
    """Commands start from the copy of the run this service saved last, without a query for
    newer events. When another service wrote the run since, the save collides with the
    store's key and the command is decided again on the stored run: accepted on top of the
    other write (the hash chain unbroken), or refused for what the other write did."""
    one, other = Ledger(settings), Ledger(settings)
    try:
        one.register_workflow(DEFINITION, principal="alice")
        run_id = one.trigger(workflow="etl", parameters={"query": "q"}, principal="c").run_id
        assert one.claim(run_id, worker_id="w1") is not None  # `one` keeps its copy
        stale_version = one.run_cache.copy_of(run_id).version  # type: ignore[union-attr]
        other.report(run_id, worker_id="w1", reports=reports({"type": "task_started", "task": "extract"}))
        run = one.report(
            run_id, worker_id="w1", reports=reports({"type": "task_started", "task": "load"})
        )  # fine on the stale copy too
        assert run.version == stale_version + 2
        assert set(run.tasks) == {"extract", "load"}
        events = one.stream_events(run_id)
        assert [e.type for e in events][-2:] == ["Run.TaskStarted", "Run.TaskStarted"]
        for previous, event in itertools.pairwise(events):
            assert event.prev_hash == previous.hash
            assert event.recompute_hash() == event.hash

        other.fail_run(run_id, error="stopped elsewhere", by="ops")
        before = one.reader.max_position()
        with pytest.raises(Conflict, match="is failed, not running"):
            one.report(
                run_id,
                worker_id="w1",
                reports=reports({"type": "task_finished", "task": "load", "exit_code": 0}),
            )
        assert one.reader.max_position() == before
        assert one.get_run(run_id).status == RunStatus.FAILED
    finally:
        one.close()
        other.close()


def test_a_claim_right_after_a_trigger_gets_the_run_before_the_read_model_lists_it(
    ledger: Ledger,
) -> None:
    """Claim candidates come from the runs read model, a little behind the ledger; the runs
    this service triggered are offered after them, so a worker asking at once is not sent
    away. Batch runs are left to the read model (it applies their parallelism)."""
    ledger.register_workflow(DEFINITION, principal="alice")
    first = ledger.trigger(workflow="etl", parameters={"query": "a"}, principal="c").run_id
    second = ledger.trigger(workflow="etl", parameters={"query": "b"}, principal="c").run_id
    batch = ledger.trigger_batch(
        workflow="etl", items=["x", "y"], input_param="query", parallelism=1, principal="c"
    )
    no_read_model_yet: list[str] = []
    claimed = ledger.claim_first(no_read_model_yet, worker_id="w1")
    assert claimed is not None and claimed.id == first  # oldest first
    claimed = ledger.claim_first(no_read_model_yet, worker_id="w2")
    assert claimed is not None and claimed.id == second
    assert ledger.claim_first(no_read_model_yet, worker_id="w3") is None
    assert ledger.claim_first(batch.run_ids, worker_id="w3") is not None  # when listed
