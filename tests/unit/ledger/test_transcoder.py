"""The orjson transcoder writes what the library's JSON transcoder reads, and reads what it
wrote: rows from before the switch and after it decode to the same state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given
from hypothesis import strategies as st

from ledger.store.recorders import LedgerMapper, OrjsonTranscoder


def transcoders() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    library, ours = JSONTranscoder(), OrjsonTranscoder()
    for transcoder in (library, ours):
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return library, ours


STATE: dict[str, Any] = {
    "timestamp": datetime(2026, 12, 1, 1, 2, 3, 456789, tzinfo=UTC),
    "hash": "ab" * 32,
    "prev_hash": None,
    "task": "t0",
    "inputs": [{"sha256": "cd" * 32, "path": "data/ünïcode ✓.csv", "size": 12}],
    "duration_seconds": 1.25,
    "nested": {"deep": [[1, 2.5, {"at": datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=2)))}]]},
    "amount": Decimal("10.10"),
    "big": 2**70,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def test_each_reads_what_the_other_wrote() -> None:
    library, ours = transcoders()
    assert ours.decode(library.encode(STATE)) == STATE
    assert library.decode(ours.encode(STATE)) == STATE
    assert ours.decode(ours.encode(STATE)) == STATE


def test_a_row_with_a_token_orjson_refuses_still_decodes() -> None:
    _, ours = transcoders()
    assert ours.decode(b'{"x":NaN,"y":[1]}')["y"] == [1]


@given(json_values)
def test_any_json_value_round_trips_between_the_two(value: Any) -> None:
    library, ours = transcoders()
    assert library.decode(ours.encode({"v": value})) == library.decode(library.encode({"v": value}))
    assert ours.decode(library.encode({"v": value})) == library.decode(library.encode({"v": value}))


def test_an_unregistered_type_is_refused_as_by_the_library() -> None:
    library, ours = transcoders()
    for transcoder in (library, ours):
        with pytest.raises(TranscodingNotRegisteredError):
            transcoder.encode({"x": object()})


AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_the_mapper_stores_chain_events_byte_for_byte_as_the_library_s_mapper() -> None:
    from ledger.domain.run import Run

    _, ours = transcoders()
    run = Run.trigger(
        run_id="r-1",
        at=AT,
        workflow="wf",
        version=1,
        definition_hash="ab" * 32,
        definition={"name": "wf", "tasks": [{"name": "a", "command": ["true"], "timeout": 1.5}]},
        engine_version="0",
        triggered_by="alice",
        trigger_kind="name",
        parameters={"ratio": 0.25, "n": None},
        replay_of=None,
        resume_of=None,
        resume_from_task=None,
        batch_id=None,
        idempotency_key=None,
    )
    event = run.collect_events()[0]
    assert LedgerMapper(ours).to_stored_event(event) == Mapper[str](ours).to_stored_event(event)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_chain_event_cannot_carry_nan_or_infinity_so_it_needs_no_check(value: float) -> None:
    """The mapper's shortcut rests on this: hashing refuses the value before the event
    exists."""
    from ledger.domain.run import Run

    with pytest.raises(ValueError, match="not representable"):
        Run.trigger(
            run_id="r-1",
            at=AT,
            workflow="wf",
            version=1,
            definition_hash="ab" * 32,
            definition={"name": "wf"},
            engine_version="0",
            triggered_by="alice",
            trigger_kind="name",
            parameters={"x": value},
            replay_of=None,
            resume_of=None,
            resume_from_task=None,
            batch_id=None,
            idempotency_key=None,
        )


def test_any_other_event_still_gets_the_check() -> None:
    class Thing(Aggregate):
        def __init__(self, x: float) -> None:
            self.x = x

    library, ours = transcoders()
    event = Thing(x=float("nan")).collect_events()[0]
    stored = LedgerMapper(ours).to_stored_event(event)
    assert stored.state == Mapper[Any](library).to_stored_event(event).state
    assert b"NaN" in stored.state
