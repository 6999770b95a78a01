"""What a rebuild carries between batches stays bounded."""

from __future__ import annotations

from projections.view import Carry, Recent


def test_recent_remembers_the_latest_keys_and_forgets_old_ones() -> None:
    recent = Recent(3)
    assert [recent.first(k) for k in "abcab"] == [True, True, True, False, False]
    for key in "defghi":
        recent.first(key)
    assert recent.first("a")  # forgotten: the caller settles the repeat elsewhere
    assert not recent.first("i")
    assert len(recent.new) + len(recent.old) <= 2 * 3


def test_carry_keeps_the_most_recently_touched_runs_up_to_its_size() -> None:
    carry = Carry(3)
    carry.keep({"a": 1, "b": 2, "c": 3})
    carry.keep({"a": 10})  # touched again: now the newest
    carry.keep({"d": 4})
    assert carry == {"c": 3, "a": 10, "d": 4}
    assert list(carry) == ["c", "a", "d"]
