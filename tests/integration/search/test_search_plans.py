"""The shape of a ``q`` page's plan, on both backends: the runs are walked newest first by a
time index and each is probed in place through the fields table's ``(run_id, name, ...)``
index, so the page can stop after ``limit`` matches; a time window on a field equality is a
range of that field's own index rows. (How fast that is at scale: ``bench/queries.py``.)"""

from __future__ import annotations

from typing import Any

from bench.plans import ExplainingConnection
from projections import state
from projections.db import connect
from projections.views import summaries_queries
from tests.integration.search.conftest import Dataset


def plans_of(dataset: Dataset, **filters: Any) -> tuple[str, list[dict[str, Any]]]:
    """The plan text of ``list_runs(**filters)`` (one page of 5), and the page."""
    plain = connect(dataset.settings)
    conn = ExplainingConnection(plain.kind, plain.raw)
    try:
        pointer = state.read_pointer(conn, "summaries")
        assert pointer is not None
        page, _ = summaries_queries.list_runs(conn, pointer.live, limit=5, workspace="default", **filters)
        return "\n".join(line for plan in conn.plans for line in plan), page
    finally:
        conn.close()


def test_an_or_with_a_label_probes_each_run_instead_of_hashing_every_match(dataset: Dataset) -> None:
    plan, page = plans_of(dataset, q='workflow = "etl" OR label.env = "prod"')
    assert page == dataset.views.list_runs(q='workflow = "etl" OR label.env = "prod"', limit=5)[0]
    if plan.startswith("SEARCH") or "SCAN" in plan:  # SQLite
        assert "TEMP B-TREE" not in plan  # no sort: the walk is in page order
        assert "_fields_by_run (run_id=? AND name=? AND value_text=?)" in plan
    else:  # PostgreSQL: whichever scan its statistics pick, a per-run SubPlan
        assert "SubPlan" in plan and "hashed SubPlan" not in plan


def test_a_numeric_range_in_a_time_window_probes_the_runs_of_the_window(dataset: Dataset) -> None:
    runs = dataset.summaries()
    start, end = runs[-len(runs) // 2]["created_at"], runs[len(runs) // 4]["created_at"]
    q = f'param.max_urls > 3 AND created_at >= "{start}" AND created_at < "{end}"'
    plan, page = plans_of(dataset, q=q)
    assert page == dataset.views.list_runs(q=q, limit=5)[0]
    if not plan.startswith("Limit"):  # SQLite: the field's rows of this run, not every run's
        assert "TEMP B-TREE" not in plan
        assert "_fields_by_run (run_id=? AND name=?)" in plan
        assert "_fields_by_num" not in plan
    else:  # PostgreSQL: a per-run SubPlan, not a semi-join over every run the range matches
        assert "SubPlan" in plan and "hashed SubPlan" not in plan and "Semi Join" not in plan


def test_a_label_equality_with_a_time_window_is_a_range_of_the_label_rows(dataset: Dataset) -> None:
    runs = dataset.summaries()
    start = runs[len(runs) // 2]["created_at"]
    q = f'label.env = "prod" AND created_at >= "{start}"'
    plan, page = plans_of(dataset, q=q)
    assert page == dataset.views.list_runs(q=q, limit=5)[0]
    if plan.startswith("Limit"):  # PostgreSQL: the bound is on the label rows' scan
        lines = plan.splitlines()
        scan = next(i for i, line in enumerate(lines) if "_fields p" in line or "_fields_pkey on" in line)
        assert "created_at >= " in lines[scan + 1]
    else:
        assert "(name=? AND value_text=? AND created_at>?)" in plan
