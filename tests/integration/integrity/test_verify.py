"""``verify_ledger`` on real SQLite and PostgreSQL stores, untouched and tampered with."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial

import pytest

from ledger.integrity.merkle_store import MerkleStore
from ledger.integrity.verify import RANGE_LEAVES, VerifyReport, verify_ledger
from ledger.service import Ledger
from ledger.settings import Settings
from tests.integration.integrity.conftest import Attacker, finish_run, forged_trigger

Verify = Callable[..., VerifyReport]


@pytest.fixture(params=[RANGE_LEAVES, 4], ids=["one-range", "ranges-of-4"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """``verify_ledger`` over the ledger as one range, and cut into ranges of 4 leaves that
    are joined afterwards: both must find the same problems in the same places."""
    return partial(verify_ledger, range_leaves=request.param)


def kinds(verify: Verify, settings: Settings) -> set[str]:
    return {p.kind for p in verify(settings).problems}


def test_an_untouched_ledger_verifies_with_every_event_checked(
    verify: Verify, populated: Ledger, settings: Settings
) -> None:
    report = verify(settings)
    assert report.ok, [str(p) for p in report.problems]
    assert report.events_checked == populated.reader.max_position() + 1
    assert report.tree_size == report.events_checked


def test_a_modified_row_is_named_by_stream_sequence_and_position(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    verify(settings)
    attacker.disable_guard()
    position, stream, sequence, _, state = attacker.row_of("Run.Triggered", 1)
    attacker.set_state(position, state.replace(b'"carol"', b'"mallory"'))
    report = verify(settings)
    assert not report.ok
    problem = next(p for p in report.problems if p.kind == "hash_mismatch")
    assert (problem.stream, problem.sequence, problem.position) == (stream, sequence, position)
    assert f"stream {stream}" in str(problem) and "modified" in str(problem)


def test_a_modified_row_with_its_hash_recomputed_still_breaks_chain_and_tree(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    verify(settings)
    attacker.disable_guard()
    position, _, _, _, state = attacker.row_of("Run.Triggered", 0)
    payload = json.loads(state)
    payload["hash"] = "0" * 64  # an attacker rewriting the hash too
    attacker.set_state(position, json.dumps(payload).encode())
    found = kinds(verify, settings)
    assert {"leaf_mismatch", "chain_broken", "merkle_root"} <= found


def test_a_deleted_row_is_reported_as_a_missing_sequence_and_a_missing_leaf(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    verify(settings)
    attacker.disable_guard()
    position, stream, sequence, _, _ = attacker.row_of("Run.TaskStarted", 1)
    attacker.delete(position)
    report = verify(settings)
    deleted = next(p for p in report.problems if p.kind == "event_deleted")
    assert deleted.position == position
    gap = next(p for p in report.problems if p.kind == "sequence_gap")
    assert gap.stream == stream and str(sequence) in gap.detail


def test_two_swapped_rows_are_both_reported(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    verify(settings)
    attacker.disable_guard()
    a = attacker.row_of("Run.Started", 0)[0]
    b = attacker.row_of("Run.Started", 1)[0]
    attacker.swap(a, b)
    report = verify(settings)
    mismatched = {p.position for p in report.problems if p.kind == "leaf_mismatch"}
    assert mismatched == {a, b}


def test_a_forged_row_is_reported(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    verify(settings)
    attacker.disable_guard()
    last = attacker.rows()[-1][0]
    stream, sequence, topic, state = forged_trigger(attacker)
    if attacker.sqlite:  # rowids are dense: a forged row can only leave a hole behind it
        attacker.insert(last + 3, stream, sequence, topic, state)
        expected = "position_gap"
    else:  # slip it into a gap that rolled-back inserts left
        attacker.skip_positions(2)
        finish_run(populated, "d")
        verify(settings)
        attacker.insert(last + 1, stream, sequence, topic, state)
        expected = "event_inserted"
    report = verify(settings)
    assert expected in {p.kind for p in report.problems}, [str(p) for p in report.problems]


def test_gaps_left_by_rolled_back_inserts_are_not_problems_on_postgres(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    if attacker.sqlite:
        return
    attacker.skip_positions(3)
    finish_run(populated, "d")
    report = verify(settings)
    assert report.ok, [str(p) for p in report.problems]
    positions = [r[0] for r in attacker.rows()]
    assert positions[-1] - positions[0] + 1 > report.tree_size  # there really is a gap


def test_a_truncated_tail_is_reported(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    verify(settings)
    attacker.disable_guard()
    tail = [r[0] for r in attacker.rows()[-3:]]
    for position in tail:
        attacker.delete(position)
    report = verify(settings)
    assert {p.position for p in report.problems if p.kind == "event_deleted"} == set(tail)
    assert "merkle_root" in {p.kind for p in report.problems}


def test_a_saved_digest_verifies_after_appends_and_a_forged_one_is_rejected(
    verify: Verify, populated: Ledger, settings: Settings
) -> None:
    digest = MerkleStore(settings).digest()
    finish_run(populated, "later")
    assert verify(settings, digest=digest).ok
    forged = dict(digest, root_hash="ab" * 32)
    report = verify(settings, digest=forged)
    assert [p.kind for p in report.problems] == ["digest"]
    bigger = dict(digest, tree_size=digest["tree_size"] + 10_000)
    assert "truncated" in verify(settings, digest=bigger).problems[0].detail


def test_verification_in_worker_processes_finds_the_same_problems(
    populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    assert verify_ledger(settings, workers=2, batch=7, range_leaves=8).ok
    attacker.disable_guard()
    position, _, _, _, state = attacker.row_of("Run.TaskFinished", 2)
    attacker.set_state(position, state.replace(b'"extract"', b'"exfiltrate"'))
    alone = verify_ledger(settings, workers=1, batch=7)
    pooled = verify_ledger(settings, workers=2, batch=7, range_leaves=8)
    assert [p.to_json() for p in pooled.problems] == [p.to_json() for p in alone.problems]
    assert [p.kind for p in pooled.problems] == ["hash_mismatch"]
    assert pooled.events_checked == alone.events_checked


def test_a_row_overwritten_with_garbage_is_reported_not_a_crash(
    verify: Verify, populated: Ledger, settings: Settings, attacker: Attacker
) -> None:
    attacker.disable_guard()
    position, stream, _, _, _ = attacker.row_of("Run.Succeeded", 0)
    attacker.set_state(position, b"\x00not json")
    report = verify(settings)  # the tree catches up over the garbage row too
    problem = next(p for p in report.problems if p.kind == "hash_mismatch")
    assert (problem.stream, problem.position) == (stream, position)
    assert "unreadable row" in problem.detail
