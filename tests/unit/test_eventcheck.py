"""The fast decode-and-hash path agrees with the reference (``decode_row`` + RFC 8785)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.store.decode import decode, decode_and_hash
from ledger.store.event_record import decode_row

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def stored_state(data: dict[str, Any], stamp: str) -> bytes:
    state = dict(data, timestamp={"_type_": "datetime_iso", "_data_": stamp}, hash="ab" * 32, prev_hash=None)
    return json.dumps(state, ensure_ascii=False).encode()


@settings(max_examples=300)
@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=5),
    st.sampled_from(["2026-11-22T03:11:43.123456+00:00", "2026-11-22T03:11:43+00:00"]),
    st.text(min_size=1, max_size=5),
)
def test_fast_hashes_equal_the_rfc8785_reference_for_any_content(
    data: dict[str, Any], stamp: str, stream: str
) -> None:
    state = stored_state(data, stamp)
    record, recomputed = decode_and_hash(7, stream, 2, "ledger.domain.run:Run.Started", state)
    reference = decode_row(8, stream, 2, "ledger.domain.run:Run.Started", state)
    assert record == reference
    assert recomputed == reference.recompute_hash()


def test_a_typical_ascii_event_takes_the_same_hash_as_the_reference() -> None:
    state = stored_state(
        {"worker_id": "w1", "n": 3, "ok": True, "xs": ["a\nb", None]}, "2026-01-02T03:04:05.000006+00:00"
    )
    record, recomputed = decode_and_hash(0, "run-1", 1, "ledger.domain.run:Run.Started", state)
    assert recomputed == decode_row(1, "run-1", 1, "ledger.domain.run:Run.Started", state).recompute_hash()
    assert record.timestamp == "2026-01-02T03:04:05.000006Z"


def test_floats_hash_like_rfc8785_on_either_side_of_the_fast_range() -> None:
    for value in (2.0, -0.0, 0.5, 1e-4, 9.5e-5, 1e15 + 0.5, 1e16, 1e21, 123.456, 2.0**53, 9.1e15):
        state = stored_state({"duration_seconds": value}, "2026-01-02T03:04:05.000006+00:00")
        state = state.replace(b"9100000000000000.0", b"9.1e15")
        _, recomputed = decode_and_hash(0, "run-1", 1, "ledger.domain.run:Run.Started", state)
        reference = decode_row(1, "run-1", 1, "ledger.domain.run:Run.Started", state).recompute_hash()
        assert recomputed == reference, value


def test_decoding_without_hashing_shows_the_event_like_the_reference() -> None:
    state = stored_state(
        {"worker_id": "w1", "ratio": 0.5, "note": "caf\u00e9"}, "2026-01-02T03:04:05.000006+00:00"
    )
    assert decode(3, "run-1", 2, "ledger.domain.run:Run.Started", state) == decode_row(
        4, "run-1", 2, "ledger.domain.run:Run.Started", state
    )


def test_escapes_and_punctuation_hash_like_rfc8785_on_the_fast_path() -> None:
    text = "a\n\t\r\b\f\x7f/\"\\ <>&'~"
    state = stored_state(
        {"s": text, text: [text, {"z": 1, "a": -2, "M": 0.125}]}, "2026-01-02T03:04:05.000006+00:00"
    )
    assert b"\\u" not in state  # stays on the fast path
    _, recomputed = decode_and_hash(0, "run-1", 1, "ledger.domain.run:Run.Started", state)
    assert recomputed == decode_row(1, "run-1", 1, "ledger.domain.run:Run.Started", state).recompute_hash()


def compact_state(data: dict[str, Any]) -> bytes:
    """Stored the way the library stores events: compact separators."""
    state = dict(
        data,
        timestamp={"_type_": "datetime_iso", "_data_": "2026-01-02T03:04:05.000006+00:00"},
        hash="ab" * 32,
        prev_hash=None,
    )
    return json.dumps(state, separators=(",", ":")).encode()


def test_numbers_in_any_place_hash_like_rfc8785_whichever_decoder_reads_them() -> None:
    for data in (
        {"xs": [1, 2.5, -0.125, 3]},
        {"a": 1, "b": 120.0},
        {"n": [[1e-7], 2]},
        {"big": 2**52 + 1},
        {"edge": 10**15 - 1},
        {"edge": 10**15},
        {"f": 9.5e15},
        {"exp": 1e16},
        {"neg": [-1.5e-5, -3]},
        {"s": "a,1.0 [2.5 :3.5", "k": 1},
        {"duration_seconds": 0.25, "exit_code": 0, "size": 12},
    ):
        state = compact_state(data)
        _, recomputed = decode_and_hash(0, "run-1", 1, "ledger.domain.run:Run.Started", state)
        reference = decode_row(1, "run-1", 1, "ledger.domain.run:Run.Started", state).recompute_hash()
        assert recomputed == reference, data


@settings(max_examples=300)
@given(st.dictionaries(st.text(alphabet="abc:,[ 1.5e", max_size=6), json_values, max_size=5))
def test_compact_rows_hash_like_rfc8785_for_any_numbers(data: dict[str, Any]) -> None:
    state = compact_state(data)
    _, recomputed = decode_and_hash(0, "run-1", 1, "ledger.domain.run:Run.Started", state)
    reference = decode_row(1, "run-1", 1, "ledger.domain.run:Run.Started", state).recompute_hash()
    assert recomputed == reference
