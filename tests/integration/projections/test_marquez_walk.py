"""Marquez's lineage by node (:func:`projections.views.marquez_graph.lineage`) on both backends
against a plain in-memory breadth-first walk over random graphs: the same nodes, the same
edges and the same ``truncated``, with depth and the node limit both in play, while another
workspace holds the same nodes linked otherwise (a walk never leaves its workspace)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ledger.errors import InvalidRequest
from ledger.settings import Settings
from projections.db import Connection, connect
from projections.view import Tables
from projections.views.marquez import MarquezView
from projections.views.marquez_graph import lineage

AT = "2026-01-01T00:00:00.000000Z"
Key = tuple[str, str]


@dataclass(frozen=True)
class Graph:
    datasets: list[Key]
    jobs: list[Key]
    edges: list[tuple[Key, str, Key]]  # (job, "in" | "out", dataset)


# Namespaces without ':' (so a node id parses one way) but with '/', names with both, and a
# job and a dataset free to share a namespace and name.
names = st.text(alphabet="ab:/", min_size=1, max_size=3)
keys = st.tuples(st.sampled_from(["n", "n/x", "m"]), names)


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    datasets = sorted(draw(st.sets(keys, min_size=1, max_size=9)))
    jobs = sorted(draw(st.sets(keys, min_size=1, max_size=7)))
    pairs = st.tuples(st.sampled_from(jobs), st.sampled_from(["in", "out"]), st.sampled_from(datasets))
    return Graph(datasets, jobs, sorted(draw(st.sets(pairs, max_size=20))))


def expected(graph: Graph, kind: str, start: Key, depth: int, max_nodes: int) -> dict[str, Any]:
    """The rule, walked in memory: level by level, each level's new nodes in (namespace, name)
    order, the level that passes the limit cut to it and the walk stopped there."""
    around: dict[tuple[str, Key], set[tuple[str, Key]]] = {}
    for job, _, ds in graph.edges:
        around.setdefault(("job", job), set()).add(("dataset", ds))
        around.setdefault(("dataset", ds), set()).add(("job", job))
    seen = {(kind, start)}
    level = [(kind, start)]
    truncated = False
    for _ in range(2 * depth + (1 if kind == "job" else 0)):
        new = sorted({n for node in level for n in around.get(node, set())} - seen, key=lambda n: n[1])
        if len(new) > max_nodes - len(seen):
            new, truncated = new[: max_nodes - len(seen)], True
        seen.update(new)
        level = new
        if truncated or not new:
            break
    ids = {f"{k}:{ns}:{name}" for k, (ns, name) in seen}
    edges = set()
    for job, direction, ds in graph.edges:
        j, d = f"job:{job[0]}:{job[1]}", f"dataset:{ds[0]}:{ds[1]}"
        if j in ids and d in ids:
            edges.add((d, j) if direction == "in" else (j, d))
    return {"nodes": ids, "edges": edges, "truncated": truncated}


def observed(found: dict[str, Any]) -> dict[str, Any]:
    nodes = {n["id"] for n in found["graph"]}
    outs = {(e["origin"], e["destination"]) for n in found["graph"] for e in n["outEdges"]}
    ins = {(e["origin"], e["destination"]) for n in found["graph"] for e in n["inEdges"]}
    assert outs == ins  # every edge is listed at both of its ends
    return {"nodes": nodes, "edges": outs, "truncated": found["truncated"]}


def fill(conn: Connection, t: Tables, graph: Graph) -> None:
    """``graph`` in workspace ``default``, and in workspace ``other`` the same nodes with an
    edge between every job and every dataset: a walk that strayed out of its workspace would
    reach more of them."""
    everything = [(job, "in", ds) for job in graph.jobs for ds in graph.datasets]
    with conn.transaction():
        for table in ("datasets", "jobs", "edges"):
            conn.execute(f"DELETE FROM {t(table)}")
        for ws, edges in (("default", graph.edges), ("other", everything)):
            conn.executemany(
                f"INSERT INTO {t('datasets')} (workspace, namespace, name, created_at, updated_at, fields, "
                "facets, current_version) VALUES (?, ?, ?, ?, ?, '[]', '{}', NULL)",
                [(ws, ns, name, AT, AT) for ns, name in graph.datasets],
            )
            conn.executemany(
                f"INSERT INTO {t('jobs')} (workspace, namespace, name, created_at, updated_at, "
                "latest_run_id, facets) VALUES (?, ?, ?, ?, ?, NULL, '{}')",
                [(ws, ns, name, AT, AT) for ns, name in graph.jobs],
            )
            conn.executemany(
                f"INSERT INTO {t('edges')} (workspace, job_namespace, job_name, direction, ds_namespace, "
                "ds_name) VALUES (?, ?, ?, ?, ?, ?)",
                [(ws, j[0], j[1], direction, d[0], d[1]) for j, direction, d in edges],
            )


@pytest.fixture
def tables(settings: Settings) -> Iterator[tuple[Connection, Tables]]:
    conn = connect(settings)
    t = Tables.of("marquez", MarquezView.schema_version, 1)
    MarquezView().create(conn, t)
    try:
        yield conn, t
    finally:
        conn.close()


def test_lineage_by_node_is_the_breadth_first_walk_of_the_rule_on_random_graphs(
    tables: tuple[Connection, Tables],
) -> None:
    conn, t = tables

    @hypothesis_settings(max_examples=100, deadline=None, database=None)
    @given(
        graph=graphs(),
        data=st.data(),
        depth=st.integers(0, 4),
        max_nodes=st.one_of(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.just(5_000)),
    )
    @example(  # a cut level: ("m", "b") before ("n", "a"), namespace first
        graph=Graph(
            datasets=[("m", "b"), ("n", "a")],
            jobs=[("n", "j")],
            edges=[(("n", "j"), "out", ("m", "b")), (("n", "j"), "out", ("n", "a"))],
        ),
        data=None,
        depth=0,
        max_nodes=2,
    )
    def check(graph: Graph, data: st.DataObject | None, depth: int, max_nodes: int) -> None:
        fill(conn, t, graph)
        if data is None:
            kind, start = "job", graph.jobs[0]
        else:
            kind = data.draw(st.sampled_from(["dataset", "job"]))
            start = data.draw(st.sampled_from(graph.datasets if kind == "dataset" else graph.jobs))
        found = lineage(conn, t, "default", f"{kind}:{start[0]}:{start[1]}", depth, max_nodes=max_nodes)
        assert found is not None
        assert observed(found) == expected(graph, kind, start, depth, max_nodes)

    check()


def test_a_walk_past_the_node_limit_keeps_the_nearest_nodes_first_and_says_truncated(
    tables: tuple[Connection, Tables],
) -> None:
    conn, t = tables
    # raw -> load -> stage, read by ten reports (report_0..9), each writing its own output
    reports = [("r", f"report_{k}") for k in range(10)]
    graph = Graph(
        datasets=[("w", "raw"), ("w", "stage"), *[("w", f"out_{k}") for k in range(10)]],
        jobs=[("r", "load"), *reports],
        edges=[(("r", "load"), "in", ("w", "raw")), (("r", "load"), "out", ("w", "stage"))]
        + [(job, "in", ("w", "stage")) for job in reports]
        + [(job, "out", ("w", f"out_{k}")) for k, job in enumerate(reports)],
    )
    fill(conn, t, graph)
    whole = lineage(conn, t, "default", "dataset:w:stage", 1)
    assert whole is not None and whole["truncated"] is False and len(whole["graph"]) == 23
    cut = lineage(conn, t, "default", "dataset:w:stage", 1, max_nodes=6)
    assert cut is not None and cut["truncated"] is True
    # level 1 (load and the reports, 11 jobs) passes the limit: the first five by name stay
    assert {n["id"] for n in cut["graph"]} == {"dataset:w:stage", "job:r:load"} | {
        f"job:r:report_{k}" for k in range(4)
    }
    # a whole level that fits is not truncated; the walk stops at the depth asked for
    near = lineage(conn, t, "default", "job:r:report_3", 0, max_nodes=3)
    assert near is not None and near["truncated"] is False
    assert {n["id"] for n in near["graph"]} == {"job:r:report_3", "dataset:w:stage", "dataset:w:out_3"}


def test_a_run_node_starts_from_its_job_which_carries_that_run_as_latest(
    tables: tuple[Connection, Tables],
) -> None:
    conn, t = tables
    fill(conn, t, Graph([("w", "in"), ("w", "out")], [("r", "job")], [(("r", "job"), "in", ("w", "in"))]))
    run_id = "6f2c1c3e-0000-4000-8000-000000000001"
    conn.execute(
        f"INSERT INTO {t('runs')} (run_id, workspace, namespace, name, status, created_at, updated_at, "
        "started_at, ended_at, facets, position) "
        "VALUES (?, 'default', 'r', 'job', 'success', ?, ?, ?, ?, '{}', 0)",
        (run_id, AT, AT, AT, AT),
    )
    conn.execute(f"UPDATE {t('jobs')} SET latest_run_id = ? WHERE workspace = 'default'", (run_id,))
    found = lineage(conn, t, "default", f"run:{run_id.upper()}", 0)
    assert found is not None and found == lineage(conn, t, "default", "job:r:job", 0)
    job = next(n for n in found["graph"] if n["id"] == "job:r:job")
    assert (job["data"]["latestRun"]["id"], job["data"]["latestRun"]["state"]) == (run_id, "COMPLETED")
    assert {n["id"] for n in found["graph"]} == {"job:r:job", "dataset:w:in"}
    assert lineage(conn, t, "default", "run:6f2c1c3e-0000-4000-8000-00000000ffff", 0) is None
    assert lineage(conn, t, "other", f"run:{run_id}", 0) is None  # (a run of another workspace)
    with pytest.raises(InvalidRequest, match="run:<run id>"):
        lineage(conn, t, "default", "file:abc", 0)
