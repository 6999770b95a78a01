"""Marquez lineage by node at depth 5 (``GET /api/v1/lineage``'s query) over a graph of 100,000
runs and 20,000 datasets, on PostgreSQL by default. Target: p99 < 50 ms.

    .venv/bin/python -m bench.marquez_lineage                  # PostgreSQL, the full size
    .venv/bin/python -m bench.marquez_lineage --backend sqlite --jobs 1000

The Marquez view's tables are filled directly (a real view's DDL and indexes, rows as its
handlers write them): 10,000 jobs of 10 runs each, every job writing two datasets and reading
one or two written by the 50 jobs before it, as pipelines do; then VACUUM ANALYZE, as a
rebuild leaves the tables. Then ``queries`` random dataset nodes are asked for at depths 1, 2,
5 and 10 (the full graph rows, as ``GET /api/v1/lineage`` answers); prints p50/p99 of each,
the CPU per query of this process and of its PostgreSQL backend (when on this host), the
ratio of depth 5 to depth 1 (the baseline of the same run), and the load average the figures
were taken under (on a shared machine, the p99 follows it).
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import latency_ms, scratch_database, write_json
from ledger.settings import Settings
from projections.db import connect
from projections.view import Tables, dumps
from projections.views.marquez import MarquezView
from projections.views.marquez_graph import lineage

NS = "bench://warehouse:5432"
#: The workspace the graph is in (a single-workspace deployment's: every row ``default``).
WS = "default"
AT = "2026-01-01T00:00:00.000000Z"


def fill(conn: Any, t: Tables, jobs: int, runs_per_job: int, rng: random.Random) -> dict[str, int]:
    datasets = [
        (WS, NS, f"schema.table_{k}", AT, AT, dumps([{"name": "id", "type": "int"}]), "{}", None)
        for k in range(2 * jobs)
    ]
    job_rows: list[tuple[Any, ...]] = []
    run_rows: list[tuple[str, str, str, int]] = []
    edges: list[tuple[str, ...]] = []
    for j in range(jobs):
        run_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(runs_per_job)]
        job_rows.append((WS, "bench", f"job_{j}", AT, AT, run_ids[-1], "{}"))
        run_rows.extend(("bench", f"job_{j}", r, n) for n, r in enumerate(run_ids))
        for out in (2 * j, 2 * j + 1):
            edges.append((WS, "bench", f"job_{j}", "out", NS, f"schema.table_{out}"))
        if j:
            sources = {
                rng.randrange(max(0, j - 50), j) * 2 + rng.randrange(2) for _ in range(rng.choice((1, 2)))
            }
            edges.extend((WS, "bench", f"job_{j}", "in", NS, f"schema.table_{s}") for s in sorted(sources))
    with conn.transaction():
        conn.executemany(
            f"INSERT INTO {t('datasets')} (workspace, namespace, name, created_at, updated_at, fields, "
            "facets, current_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            datasets,
        )
        conn.executemany(
            f"INSERT INTO {t('jobs')} (workspace, namespace, name, created_at, updated_at, latest_run_id, "
            "facets) VALUES (?, ?, ?, ?, ?, ?, ?)",
            job_rows,
        )
        conn.executemany(
            f"INSERT INTO {t('runs')} (run_id, workspace, namespace, name, status, created_at, updated_at, "
            "started_at, ended_at, facets, position) VALUES (?, ?, ?, ?, 'success', ?, ?, ?, ?, '{}', ?)",
            [(r, WS, ns, name, AT, AT, AT, AT, n) for ns, name, r, n in run_rows],
        )
        conn.executemany(
            f"INSERT INTO {t('edges')} (workspace, job_namespace, job_name, direction, ds_namespace, "
            "ds_name) VALUES (?, ?, ?, ?, ?, ?)",
            edges,
        )
    if conn.is_postgres:
        for table in ("datasets", "jobs", "runs", "edges"):
            conn.execute(f"VACUUM ANALYZE {t(table)}")
    return {"jobs": jobs, "runs": len(run_rows), "datasets": len(datasets), "edges": len(edges)}


DEPTHS = (1, 2, 5, 10)


def server_cpu(conn: Any) -> float | None:
    """CPU seconds the connection's PostgreSQL backend has used, when it runs on this host and
    ``/proc`` shows it (None otherwise): on a shared machine, CPU per query is the figure the
    load does not move."""
    if not conn.is_postgres:
        return None
    pid = conn.one("SELECT pg_backend_pid() AS pid")["pid"]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(conn: Any, t: Tables, depth: int, nodes: list[str]) -> dict[str, Any]:
    timings, sizes, truncated = [], [], 0
    server_before, client_before = server_cpu(conn), time.process_time()
    for node in nodes:
        started = time.perf_counter()
        graph = lineage(conn, t, WS, node, depth)
        timings.append(time.perf_counter() - started)
        assert graph is not None
        sizes.append(len(graph["graph"]))
        truncated += graph["truncated"]
    client = (time.process_time() - client_before) / len(nodes)
    server_after = server_cpu(conn)
    server = (
        None if server_before is None or server_after is None else (server_after - server_before) / len(nodes)
    )
    return latency_ms(timings) | {
        "nodes_avg": round(sum(sizes) / len(sizes), 1),
        "nodes_max": max(sizes),
        "truncated": truncated,
        "client_cpu_ms": round(client * 1000, 2),
        "server_cpu_ms": None if server is None else round(server * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs-per-job", type=int, default=10)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", "--out", dest="json", default=None, help="write the result here")
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
            load_before = os.getloadavg()[0]
            by_depth = {depth: measure(conn, t, depth, nodes) for depth in DEPTHS}
            load_after = os.getloadavg()[0]
        finally:
            conn.close()
    deep, shallow = by_depth[5], by_depth[1]
    summary = {
        "backend": args.backend,
        **size,
        "depths": {str(depth): figures for depth, figures in by_depth.items()},
        "p99_ratio_depth5_to_depth1": round(deep["p99_ms"] / max(shallow["p99_ms"], 1e-9), 2),
        "target_p99_ms": 50,
        "met": deep["p99_ms"] < 50,
        "load_average_1m": [load_before, load_after],
        "cpus": os.cpu_count(),
    }
    lines = [
        f"marquez lineage on {args.backend}: {size['runs']} runs, {size['datasets']} datasets, "
        f"{size['edges']} edges; load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} CPUs"
    ]
    for depth, f in by_depth.items():
        cpu = f"CPU/query: client {f['client_cpu_ms']} ms, server {f['server_cpu_ms']} ms"
        lines.append(
            f"  depth {depth:>2}: p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms "
            f"({f['nodes_avg']:.0f} nodes avg, {f['nodes_max']} max, {f['truncated']} truncated; {cpu})"
        )
    lines.append(
        f"  p99 ratio depth5/depth1 (baseline): {summary['p99_ratio_depth5_to_depth1']}x; "
        f"target p99 < 50 ms at depth 5: {'met' if summary['met'] else 'NOT met'}"
    )
    print("\n".join(lines))
    write_json(args.json, summary)


if __name__ == "__main__":
    main()
