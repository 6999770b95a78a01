"""What a rebuild carries between batches stays bounded."""

from __future__ import annotations

from projections.view import Carry, Recent


def test_recent_drops_rows_whose_keys_it_saw_lately_and_forgets_old_ones() -> None:
    recent = Recent(3)
    assert recent.fresh(["a", "b"]) == ["a", "b"]
    assert recent.fresh(["b", "c"]) == ["c"]
    assert recent.fresh([("a", 1), ("d", 2)], key=lambda row: row[0]) == [("d", 2)]
    for key in "efghij":
        recent.fresh([key])
    assert recent.fresh(["a", "j"]) == ["a"]  # "a" forgotten: the caller settles the repeat
    assert len(recent.new) + len(recent.old) <= 2 * 3


def test_carry_keeps_the_most_recently_touched_runs_up_to_its_size() -> None:
    carry = Carry(3)
    carry.keep({"a": 1, "b": 2, "c": 3})
    carry.keep({"a": 10})  # touched again: now the newest
    carry.keep({"d": 4})
    assert carry == {"c": 3, "a": 10, "d": 4}
    assert list(carry) == ["c", "a", "d"]
