"""Which runs retention picks (SPEC section 11), against a simple model over random histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.hashing import format_timestamp
from ledger.retention.policy import RunFacts, pick_expired

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def model(runs: list[RunFacts], default_days: float | None) -> set[str]:
    """The rules read plainly, one run at a time: count the newer ended runs of its workflow."""
    picked = set()
    for run in runs:
        if run.status not in ("success", "failed", "killed") or run.held or run.expunged:
            continue
        rules = run.retention
        if rules is None:
            days, keep_last = default_days, None
        else:
            days, keep_last = rules.get("days"), rules.get("keep_last")
            if run.status != "success" and rules.get("keep_failed_days") is not None:
                days = rules["keep_failed_days"]
        newer = [
            other
            for other in runs
            if other.workflow == run.workflow
            and other.status in ("success", "failed", "killed")
            and not other.expunged
            and (other.created_at, other.run_id) > (run.created_at, run.run_id)
        ]
        if keep_last is not None and len(newer) < keep_last:
            continue
        if days is None and keep_last is None:
            continue
        assert run.ended_at is not None
        if days is not None and datetime.fromisoformat(run.ended_at.replace("Z", "+00:00")) > NOW - timedelta(
            days=days
        ):
            continue
        picked.add(run.run_id)
    return picked


rules = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "days": st.integers(1, 60),
        "keep_failed_days": st.integers(1, 90),
        "keep_last": st.integers(0, 6),
    },
)


@st.composite
def histories(draw: Any) -> list[RunFacts]:
    policies = {name: draw(rules) for name in ("a", "b")}
    runs = []
    for index in range(draw(st.integers(0, 25))):
        workflow = draw(st.sampled_from(["a", "b"]))
        age = draw(st.integers(0, 120))
        created = NOW - timedelta(days=age, seconds=draw(st.integers(0, 3)))
        status = draw(st.sampled_from(["pending", "running", "success", "failed", "killed"]))
        ended = (
            created + timedelta(days=draw(st.integers(0, 3)))
            if status not in ("pending", "running")
            else None
        )
        runs.append(
            RunFacts(
                run_id=f"run-{index:03d}",
                workflow=workflow,
                created_at=format_timestamp(created),
                status=status,
                ended_at=format_timestamp(min(ended, NOW)) if ended else None,
                held=draw(st.booleans()),
                expunged=draw(st.integers(0, 5)) == 0,
                retention=policies[workflow],
            )
        )
    return runs


@settings(max_examples=150, deadline=None)
@given(histories(), st.none() | st.integers(1, 60))
def test_retention_picks_exactly_what_the_model_picks(runs: list[RunFacts], default_days: int | None) -> None:
    picked = pick_expired(runs, now=NOW, default_days=default_days)
    assert set(picked) == model(runs, default_days)
    assert len(picked) == len(set(picked))


def test_keep_last_alone_keeps_the_newest_and_a_held_run_is_never_picked() -> None:
    runs = [
        RunFacts(
            f"r{i}",
            "w",
            format_timestamp(NOW - timedelta(days=i)),
            "success",
            format_timestamp(NOW),
            retention={"keep_last": 2},
        )
        for i in range(5)
    ]
    runs[4].held = True
    assert pick_expired(runs, now=NOW, default_days=None) == ["r3", "r2"]
