"""Timestamps in queries are RFC 3339 / ISO 8601 (the schema says ``format: date-time``): every
form RFC 3339 allows is read, and what cannot be a time in UTC is a ValueError (a 422 at the
door), never another exception (a 500)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.hashing import parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-03T12:00:00Z", datetime(2026, 12, 3, 12, tzinfo=UTC)),
        ("2026-12-03t12:00:00z", datetime(2026, 12, 3, 12, tzinfo=UTC)),  # RFC 3339 allows lower case
        ("2026-12-03T12:00:00.5+01:30", datetime(2026, 12, 3, 10, 30, 0, 500000, tzinfo=UTC)),
        ("2026-12-03T12:00:00", datetime(2026, 12, 3, 12, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_every_rfc_3339_form_is_read_in_utc(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-02-30T00:00:00Z", "0000"]
)
def test_what_is_no_time_in_utc_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)
