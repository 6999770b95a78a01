"""Property: random ``q`` expressions over a random set of real runs select exactly the runs the
in-memory evaluator selects, in the same (newest first) order, on both backends."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.search import parse
from tests.integration.search.conftest import LABELS, QUERIES, Dataset
from tests.integration.search.oracle import holds

TEXT_FIELDS = {
    "status": ["pending", "running", "success", "failed", "killed", "s"],
    "workflow": ["etl", "train", "e"],
    "triggered_by": ["carol", "dave", "Carol"],
    "trigger_kind": ["name", "replay", "batch"],
    "error": ["extract failed", "boom%", "Timeout", "t"],
    "definition_hash": ["0", "8", "f"],
    "batch_id": ["0", "x"],
}
NUMBER_FIELDS: dict[str, list[float]] = {
    "version": [1, 2],
    "duration_seconds": [0, 30, 90.5, 600],
    "tasks_failed": [0, 1],
    "retry_count": [0, 1, 2],
}
TIME_FIELDS = ["created_at", "started_at", "completed_at"]
TIMES = [
    "2026-03-01T09:00:00Z",
    "2026-03-01T09:40:00Z",
    "2026-03-01T10:20:00+01:00",
    "2026-03-01T11:30:00Z",
    "2026-03-02",
]
ATTRS: dict[str, list[str | float]] = {
    "param.query": [*QUERIES, 10, 0],
    "param.limit": [-5, 0, 2.5, 3, 10, 50, "3", "2.5"],
    "param.flag": ["true", "false", 1],
    "param.max_urls": [1, 9, 10, 11, 100, "9", "10"],
    "output.extract.rows": [0, 3, 12, 2.5, "3"],
    "output.fit.name": ["a", "b%", "Z"],
    "output.load.name": ["a", "b%"],
    **{f"label.{k}": [*v, 1, 10] for k, v in LABELS.items()},
    "label.nope": ["x"],
}
PATTERNS = ["%", "a%", "%a", "_", "__", "%l", "b_", "%1%", "M%", "a%b", "%\\u0025", "x'%", "s%ss", ""]


def literal(value: str | float) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def predicate() -> st.SearchStrategy[str]:
    ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "<>"])
    text = st.sampled_from(sorted(TEXT_FIELDS)).flatmap(
        lambda f: st.one_of(
            st.tuples(ops, st.sampled_from(TEXT_FIELDS[f])).map(lambda o: f"{f} {o[0]} {literal(o[1])}"),
            st.lists(st.sampled_from(TEXT_FIELDS[f]), min_size=1, max_size=3).flatmap(
                lambda vs: st.sampled_from(["IN", "NOT IN"]).map(
                    lambda kw: f"{f} {kw} ({', '.join(literal(v) for v in vs)})"
                )
            ),
            st.tuples(st.sampled_from(["LIKE", "NOT LIKE"]), st.sampled_from(PATTERNS)).map(
                lambda p: f"{f} {p[0]} {literal(p[1])}"
            ),
        )
    )
    number = st.sampled_from(sorted(NUMBER_FIELDS)).flatmap(
        lambda f: st.one_of(
            st.tuples(ops, st.sampled_from(NUMBER_FIELDS[f])).map(lambda o: f"{f} {o[0]} {literal(o[1])}"),
            st.lists(st.sampled_from(NUMBER_FIELDS[f]), min_size=1, max_size=3).map(
                lambda vs: f"{f} IN ({', '.join(literal(v) for v in vs)})"
            ),
        )
    )
    time = st.tuples(st.sampled_from(TIME_FIELDS), ops, st.sampled_from(TIMES)).map(
        lambda t: f"{t[0]} {t[1]} {literal(t[2])}"
    )
    attr = st.sampled_from(sorted(ATTRS)).flatmap(
        lambda f: st.one_of(
            st.tuples(ops, st.sampled_from(ATTRS[f])).map(lambda o: f"{f} {o[0]} {literal(o[1])}"),
            st.lists(st.sampled_from(ATTRS[f]), min_size=1, max_size=3).flatmap(
                lambda vs: st.sampled_from(["IN", "NOT IN", "in", "not in"]).map(
                    lambda kw: f"{f} {kw} ({', '.join(literal(v) for v in vs)})"
                )
            ),
            st.tuples(st.sampled_from(["LIKE", "NOT LIKE"]), st.sampled_from(PATTERNS)).map(
                lambda p: f"{f} {p[0]} {literal(p[1])}"
            ),
        )
    )
    nulls = st.tuples(
        st.sampled_from([*TEXT_FIELDS, *NUMBER_FIELDS, *TIME_FIELDS, *ATTRS]),
        st.sampled_from(["IS NULL", "IS NOT NULL", "is not null"]),
    ).map(" ".join)
    return st.one_of(text, number, time, attr, nulls)


expressions = st.recursive(
    predicate(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["AND", "OR", "and", "or"]), inner).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        inner.map(lambda e: f"NOT {e}"),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=6,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=expressions)
def test_random_expressions_agree_with_the_evaluator(dataset: Dataset, q: str) -> None:
    expr = parse(q)
    expected = [s["run_id"] for s in dataset.summaries() if holds(expr, s)]
    page, cursor = dataset.views.list_runs(q=q, limit=1000)
    assert cursor is None
    assert [r["run_id"] for r in page] == expected
