"""Marquez lineage by node at depth 5 (``GET /api/v1/lineage``'s query) over a graph of 100,000
runs and 20,000 datasets, on PostgreSQL by default. Target: p99 < 50 ms.

    .venv/bin/python -m bench.marquez_lineage                  # PostgreSQL, the full size
    .venv/bin/python -m bench.marquez_lineage --backend sqlite --jobs 1000

The Marquez view's tables are filled directly (a real view's DDL and indexes, rows as its
handlers write them): 10,000 jobs of 10 runs each, every job writing two datasets and reading
one or two written by the 50 jobs before it, as pipelines do. Then ``queries`` random dataset
nodes are asked for at depth 5, and at depth 1 as the baseline of the same run; prints p50/p99
of each and their ratio.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from typing import Any

from bench.common import latency_ms, scratch_database, write_json
from ledger.settings import Settings
from projections.db import connect
from projections.view import Tables, dumps
from projections.views.marquez import MarquezView
from projections.views.marquez_graph import lineage

NS = "bench://warehouse:5432"
AT = "2026-01-01T00:00:00.000000Z"


def fill(conn: Any, t: Tables, jobs: int, runs_per_job: int, rng: random.Random) -> dict[str, int]:
    datasets = [
        (NS, f"schema.table_{k}", AT, AT, dumps([{"name": "id", "type": "int"}]), "{}", None)
        for k in range(2 * jobs)
    ]
    job_rows: list[tuple[Any, ...]] = []
    run_rows: list[tuple[str, str, str, int]] = []
    edges: list[tuple[str, ...]] = []
    for j in range(jobs):
        run_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(runs_per_job)]
        job_rows.append(("bench", f"job_{j}", AT, AT, run_ids[-1], "{}"))
        run_rows.extend(("bench", f"job_{j}", r, n) for n, r in enumerate(run_ids))
        for out in (2 * j, 2 * j + 1):
            edges.append(("bench", f"job_{j}", "out", NS, f"schema.table_{out}"))
        if j:
            sources = {
                rng.randrange(max(0, j - 50), j) * 2 + rng.randrange(2) for _ in range(rng.choice((1, 2)))
            }
            edges.extend(("bench", f"job_{j}", "in", NS, f"schema.table_{s}") for s in sorted(sources))
    with conn.transaction():
        conn.executemany(
            f"INSERT INTO {t('datasets')} (namespace, name, created_at, updated_at, fields, facets, "
            "current_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
            datasets,
        )
        conn.executemany(
            f"INSERT INTO {t('jobs')} (namespace, name, created_at, updated_at, latest_run_id, facets) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            job_rows,
        )
        conn.executemany(
            f"INSERT INTO {t('runs')} (run_id, namespace, name, status, created_at, updated_at, started_at, "
            "ended_at, facets, position) VALUES (?, ?, ?, 'success', ?, ?, ?, ?, '{}', ?)",
            [(r, ns, name, AT, AT, AT, AT, n) for ns, name, r, n in run_rows],
        )
        conn.executemany(
            f"INSERT INTO {t('edges')} (job_namespace, job_name, direction, ds_namespace, ds_name) "
            "VALUES (?, ?, ?, ?, ?)",
            edges,
        )
    if conn.is_postgres:
        for table in ("datasets", "jobs", "runs", "edges"):
            conn.execute(f"ANALYZE {t(table)}")
    return {"jobs": jobs, "runs": len(run_rows), "datasets": len(datasets), "edges": len(edges)}


def measure(conn: Any, t: Tables, depth: int, nodes: list[str]) -> tuple[dict[str, float], float]:
    timings, sizes = [], []
    for node in nodes:
        started = time.perf_counter()
        graph = lineage(conn, t, node, depth)
        timings.append(time.perf_counter() - started)
        assert graph is not None
        sizes.append(len(graph["graph"]))
    return latency_ms(timings), sum(sizes) / len(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs-per-job", type=int, default=10)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = random.Random(24)
    with scratch_database(args.backend, prefix="rl_bench_mq") as db:
        conn = connect(Settings(database_url=db.url, data_dir=db.directory / "state"))
        try:
            t = Tables.of("marquez", MarquezView.schema_version, 1)
            MarquezView().create(conn, t)
            size = fill(conn, t, args.jobs, args.runs_per_job, rng)
            nodes = [f"dataset:{NS}:schema.table_{rng.randrange(2 * args.jobs)}" for _ in range(args.queries)]
            measure(conn, t, 5, nodes[:20])  # warm the caches
            deep, deep_nodes = measure(conn, t, 5, nodes)
            shallow, shallow_nodes = measure(conn, t, 1, nodes)
        finally:
            conn.close()
    summary = {
        "backend": args.backend,
        **size,
        "depth5_ms": deep,
        "depth5_nodes_avg": round(deep_nodes, 1),
        "depth1_ms": shallow,
        "depth1_nodes_avg": round(shallow_nodes, 1),
        "p99_ratio_depth5_to_depth1": round(deep["p99_ms"] / max(shallow["p99_ms"], 1e-9), 2),
        "target_p99_ms": 50,
        "met": deep["p99_ms"] < 50,
    }
    print(
        f"marquez lineage on {args.backend}: {size['runs']} runs, {size['datasets']} datasets, "
        f"{size['edges']} edges\n"
        f"  depth 5: p50 {deep['p50_ms']:.2f} ms, p99 {deep['p99_ms']:.2f} ms ({deep_nodes:.0f} nodes avg)\n"
        f"  depth 1 (baseline): p50 {shallow['p50_ms']:.2f} ms, p99 {shallow['p99_ms']:.2f} ms\n"
        f"  p99 ratio depth5/depth1: {summary['p99_ratio_depth5_to_depth1']}x; target p99 < 50 ms: "
        f"{'met' if summary['met'] else 'NOT met'}"
    )
    write_json(args.json, summary)


if __name__ == "__main__":
    main()
