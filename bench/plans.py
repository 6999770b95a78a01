"""The query plans behind ``bench.queries``' listings, ``q`` pages and stats, as the planner
ran them on the benchmark's own data: ``EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)`` on
PostgreSQL (so the plan shows how many rows each step really read: a page that stops early
reads about ``limit / share`` rows, not every match), ``EXPLAIN QUERY PLAN`` on SQLite.

Each statement is the one the read model sends (the very functions of
``projections.views.summaries_queries`` and ``stats``, on a connection that explains every
``SELECT`` before running it), so the plan is the product's, not a copy of its SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.settings import Settings
from projections import state
from projections.db import Connection, Row, connect
from projections.view import Tables
from projections.views import stats, summaries_queries


@dataclass
class ExplainingConnection(Connection):
    """A connection that records the plan of each ``SELECT`` it runs."""

    plans: list[list[str]] = field(default_factory=list)

    def all(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        if statement.lstrip().upper().startswith("SELECT"):
            if self.is_postgres:
                rows = super().all(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {statement}", params)
                self.plans.append([str(r["QUERY PLAN"]) for r in rows])
            else:
                rows = super().all(f"EXPLAIN QUERY PLAN {statement}", params)
                self.plans.append([f"{'  ' * _depth(r, rows)}{r['detail']}" for r in rows])
        return super().all(statement, params)


def _depth(row: Row, rows: list[Row]) -> int:
    parents = {r["id"]: r["parent"] for r in rows}
    depth, parent = 0, row["parent"]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


Query = Callable[[Connection, Tables], Any]


def bench_queries(qs: dict[str, str], workspace: str = "default") -> dict[str, Query]:
    """The listings and stats of ``bench.queries`` (one value each), as the API calls them."""
    sq = summaries_queries

    def page(**filters: Any) -> Query:
        return lambda c, t: sq.list_runs(c, t, limit=50, workspace=workspace, **filters)

    return {
        "list_by_status": page(status="success"),
        "list_by_workflow": page(workflow="wf-3"),
        "list_by_param": page(params={"dataset": "ds-7"}),
        "list_by_label": page(labels={"team": "team-3"}),
        "list_status_any": page(status=["failed", "killed"]),
        "q_label_eq": page(q=qs["q_label_eq"]),
        "q_workflow_or_label": page(q=qs["q_workflow_or_label"]),
        "q_param_range_window": page(q=qs["q_param_range_window"]),
        "stats_q": lambda c, t: sq.search_stats(c, t, qs["stats_q"], workspace=workspace),
    }


def explain(settings: Settings, qs: dict[str, str]) -> dict[str, list[list[str]]]:
    """Each query's plans (one per statement it sends), on the live summaries tables; the
    plain ``/api/stats`` on the stats view's."""
    plain = connect(settings)
    conn = ExplainingConnection(plain.kind, plain.raw)
    try:
        plans: dict[str, list[list[str]]] = {}
        summaries = state.read_pointer(conn, "summaries")
        stats_view = state.read_pointer(conn, "stats")
        assert summaries is not None and stats_view is not None, "the views are not built"
        queries = bench_queries(qs)
        for name, query in queries.items():
            conn.plans = []
            query(conn, summaries.live)
            plans[name] = conn.plans
        conn.plans = []
        stats.query_stats(conn, stats_view.live, workspace="default")
        plans["stats"] = conn.plans[:2]  # the GROUP BY and the first rank query; the rest alike
        return plans
    finally:
        conn.close()
