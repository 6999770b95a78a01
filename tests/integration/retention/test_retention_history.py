"""Retention over real ledgers (both backends): runs triggered and ended at random times
through the service, read back by the events scan, picked as the model in
``tests/unit/test_retention_policy.py`` says; then applied, and applied again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.retention.facts import scan_runs
from ledger.retention.policy import RunFacts
from ledger.service import Ledger
from ledger.settings import Settings
from tests.builders import reports
from tests.unit.test_retention_policy import NOW, model


def facts_of(settings: Settings) -> dict[str, RunFacts]:
    scan = scan_runs(settings)
    try:
        return {run.run_id: run for run in scan.each()}
    finally:
        scan.close()


ONE_TASK: dict[str, Any] = {"tasks": [{"name": "t", "command": ["true"]}]}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


runs = st.lists(
    st.tuples(st.integers(0, 90), st.sampled_from(["success", "failed", "killed", "pending"]), st.booleans()),
    max_size=8,
)
policies = st.fixed_dictionaries(
    {},
    optional={
        "days": st.integers(1, 60),
        "keep_failed_days": st.integers(1, 90),
        "keep_last": st.integers(0, 3),
    },
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=runs, retention=policies)
def test_retention_over_a_stored_history_picks_what_the_model_picks(
    settings: Settings, history: list[tuple[int, str, bool]], retention: dict[str, int]
) -> None:
    clock = Clock()
    ledger = Ledger(settings, clock=clock)
    try:
        name = f"w{uuid.uuid4().hex[:8]}"
        ledger.register_workflow({"name": name, "retention": retention, **ONE_TASK}, principal="alice")
        mine: dict[str, tuple[str, bool]] = {}
        for age, outcome, held in history:
            clock.now = NOW - timedelta(days=age)
            run_id = ledger.trigger(workflow=name, parameters={}, principal="carol").run_id
            mine[run_id] = (outcome, held)
            if outcome == "killed":
                ledger.cancel(run_id, principal="op")
            elif outcome != "pending":
                ledger.claim(run_id, worker_id="w1")
                ended = (
                    {"type": "run_succeeded"}
                    if outcome == "success"
                    else {"type": "run_failed", "error": "x"}
                )
                ledger.report(run_id, worker_id="w1", reports=reports(ended))
            if held:
                ledger.place_hold(run_id, principal="legal", reason=None)
        facts = [f for f in facts_of(settings).values() if f.run_id in mine]
        assert {f.run_id: (f.status, f.held) for f in facts} == mine  # the scan reads the history right
        expected = model(facts, None)
        preview = ledger.apply_retention(now=NOW, dry_run=True)
        assert {p.run_id for p in preview.picked} & set(mine) == expected
        applied = ledger.apply_retention(now=NOW, dry_run=False)
        assert {p.run_id for p in applied.picked} & set(mine) == expected
        assert all(ledger.get_run(r).expunged == (r in expected) for r in mine)
        assert {p.run_id for p in ledger.apply_retention(now=NOW, dry_run=True).picked} & set(mine) == set()
    finally:
        ledger.close()


def test_the_clock_of_the_history_is_the_ledger_s(settings: Settings) -> None:
    ledger = Ledger(settings, clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    try:
        ledger.register_workflow({"name": "old", "retention": {"days": 1}, **ONE_TASK}, principal="a")
        run_id = ledger.trigger(workflow="old", parameters={}, principal="c").run_id
        ledger.cancel(run_id, principal="op")
        assert facts_of(settings)[run_id].ended_at == "2020-01-01T00:00:00.000000Z"
        assert [p.run_id for p in ledger.apply_retention(now=NOW, dry_run=True).picked] == [run_id]
    finally:
        ledger.close()
