"""The fast canonical-JSON path gives exactly the bytes of the ``rfc8785`` reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.hashing import canonical_json, format_timestamp

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)


@settings(max_examples=250, deadline=None)
@given(json_values)
def test_canonical_json_equals_the_rfc8785_reference_for_any_json_value(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet=st.characters(max_codepoint=127), max_size=8),
        st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
        max_size=8,
    )
)
def test_ascii_objects_with_integers_take_the_same_bytes_as_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_floats_control_characters_and_astral_keys_match_the_reference() -> None:
    values: tuple[Any, ...] = (
        {"d": 120.0, "e": 1e-7, "f": 1e21, "g": 0.1},
        {"a\u0001\n": '\x7f"\\/'},
        {"\U0001f600": 1, "\uff61": 2},
        [2**53 - 1, -(2**53) + 1, 10**15],
    )
    for value in values:
        assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30)),
    st.integers(-14 * 60, 14 * 60),
)
def test_timestamps_format_as_the_strftime_reference(at: datetime, offset: int) -> None:
    aware = at.replace(tzinfo=timezone(timedelta(minutes=offset)))
    expected = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert format_timestamp(aware) == expected


@settings(max_examples=250, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["duration_seconds", "x", "y"]),
        st.floats(allow_nan=False, allow_infinity=False)
        | st.floats(min_value=-1e17, max_value=1e17).map(round).map(float),
    )
)
def test_floats_as_task_evidence_carries_them_match_the_reference(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)
