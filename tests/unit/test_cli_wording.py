"""What ``runledger verify`` and ``verify-bundle`` print for a count of problems."""

from __future__ import annotations

from cli.integrity import plural


def test_one_problem_is_singular_and_others_plural() -> None:
    assert plural(1, "problem") == "1 problem"
    assert plural(2, "problem") == "2 problems"
    assert plural(0, "more problem") == "0 more problems"
