"""The hash rules of SPEC section 1, pinned to digests computed by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.hashing import canonical_json, definition_hash, event_hash, format_timestamp

# sha256 of the compact, key-sorted JSON below, computed independently of rfc8785.
TRIGGER = {
    "stream": "run-1",
    "sequence": 1,
    "type": "Run.Triggered",
    "timestamp": "2026-11-22T03:04:05.123456Z",
    "data": {"workflow": "wf", "parameters": {"b": 2, "a": "x"}},
    "prev_hash": None,
}
TRIGGER_HASH = "89bec955eef707099b2001e69b68c777303c73205d41168faa4ba1abc4958e31"
STARTED_HASH = "5c980550d8fe2bc4172fbdc67d01f056c6de3b1332d1121c2b294aeab42e3ddd"


def test_event_hash_matches_a_hand_computed_vector() -> None:
    assert event_hash(**TRIGGER) == TRIGGER_HASH  # type: ignore[arg-type]


def test_second_event_chains_to_the_first_by_prev_hash() -> None:
    digest = event_hash(
        stream="run-1",
        sequence=2,
        type="Run.Started",
        timestamp="2026-11-22T03:04:05.123456Z",
        data={"worker_id": "w"},
        prev_hash=TRIGGER_HASH,
    )
    assert digest == STARTED_HASH


def test_canonical_json_sorts_keys_and_keeps_utf8() -> None:
    assert canonical_json({"b": [True, None, "é"], "a": 1}) == '{"a":1,"b":[true,null,"é"]}'.encode()


def test_definition_hash_ignores_key_order_and_whitespace() -> None:
    assert definition_hash({"name": "x", "tasks": []}) == definition_hash({"tasks": [], "name": "x"})
    assert definition_hash({"a": 1, "b": [True, None, "é"]}) == (
        "9488dd13ca33d3291f5a91a1833dfa164811755ffba538c2b340780f8c31a0cb"
    )


def test_numbers_hash_by_value_as_rfc8785_says() -> None:
    assert canonical_json({"n": 1.0}) == b'{"n":1}'
    assert canonical_json({"n": 1e21}) == b'{"n":1e+21}'


def test_timestamps_are_utc_with_microseconds_and_z() -> None:
    at = datetime(2026, 1, 2, 4, 5, 6, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(at) == "2026-01-02T03:05:06.000000Z"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 2))  # naive


@given(
    st.dictionaries(st.text(max_size=5), st.integers(-(2**53) + 1, 2**53 - 1), max_size=5),
    st.text(min_size=1, max_size=5),
)
def test_any_change_to_data_changes_the_hash(data: dict[str, int], key: str) -> None:
    def digest(payload: dict[str, int]) -> str:
        return event_hash(
            stream="s",
            sequence=1,
            type="T",
            timestamp="2026-01-01T00:00:00.000000Z",
            data=payload,
            prev_hash=None,
        )

    changed = dict(data)
    changed[key] = data.get(key, 0) + 1
    assert digest(data) != digest(changed)
    assert digest(data) == digest(dict(reversed(list(data.items()))))
