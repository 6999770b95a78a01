"""Queries at scale: 100,000 runs (1.3 million events), then the latency of the read API.

    .venv/bin/python -m bench.queries [--backend sqlite[,postgres]] [--runs 100000]
        [--iterations 300] [--service-runs 1000] [--workers N] [--export] [--verify] [--out FILE]

Population: the first ``--service-runs`` runs go through the real aggregates and the Ledger
service, 200 runs (2,600 events) per ``save()`` (the baseline); the rest are the same kind of
runs written by ``bench.bulk`` (the same events, byte for byte, hash-chained by the product's
own hashing, inserted in large transactions): events/s of both and their ratio. Then the read
side comes up as an operator would bring it up on an existing ledger: ``runledger projections
rebuild`` (every view from event 0, one batched pass) and ``runledger digest`` (the Merkle
tree), side by side and each timed, then a real ``runledger serve --no-executor``, which answers, sequentially
over one keep-alive connection, interleaved: ``GET /healthz`` (the HTTP floor, the baseline),
``GET /api/runs/{id}``, ``GET /api/runs?status=success&limit=50``,
``GET /api/runs?workflow=wf-N&limit=50``, ``GET /api/runs?param.dataset=ds-N&limit=50``,
``GET /api/stats``, ``GET /api/runs/{id}/lineage?depth=3``. Goals (p99): single run < 10 ms,
lists < 20 ms, stats < 50 ms. With ``--export``: ``runledger export`` and ``runledger verify``
time and peak RSS at full size; with ``--verify``: ``runledger verify`` must pass at the end;
with ``--analyze`` (PostgreSQL): ``ANALYZE`` before the queries, as autovacuum would do.
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.bulk import fill
from bench.common import PG_URL, latency_ms, machine, scratch_database, write_json
from bench.memory import measure_command
from bench.populate import CHAIN, N_DATASETS, N_WORKFLOWS
from bench.server import RunledgerServer, runledger_env
from ledger.settings import Settings

GOALS_MS = {
    "get_run": 10.0,
    "list_by_status": 20.0,
    "list_by_workflow": 20.0,
    "list_by_param": 20.0,
    "stats": 50.0,
}


def wait_caught_up(url: str, token: str, timeout: float = 3600) -> None:
    """Until every projection of the server reports lag 0."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while time.monotonic() < deadline:
            views = client.get("/api/projections").json()["projections"]
            if views and all(v["lag"] == 0 and v["state"] == "live" for v in views):
                return
            time.sleep(1.0)
    raise TimeoutError("the projections did not catch up")


def query_latencies(
    url: str, token: str, run_ids: list[str], iterations: int, seed: int = 11
) -> dict[str, Any]:
    rng = random.Random(seed)
    lat: dict[str, list[float]] = {}
    sizes: dict[str, list[int]] = {}
    failures: dict[str, int] = {}
    # Lineage from a run deep in a chain, so depth=3 crosses three runs.
    chained = [r for i, r in enumerate(run_ids) if (i // N_WORKFLOWS) % CHAIN >= 3]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:

        def timed(op: str, path: str, params: dict[str, Any] | None = None, key: str | None = None) -> None:
            started = time.perf_counter()
            response = client.get(path, params=params)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                failures[op] = failures.get(op, 0) + 1
                return
            body = response.json()
            if key is not None:
                sizes.setdefault(op, []).append(len(body[key]))
                if not body[key]:
                    failures[op] = failures.get(op, 0) + 1
            lat.setdefault(op, []).append(elapsed)

        for warm in range(10):
            client.get(f"/api/runs/{run_ids[warm]}")
            client.get("/api/runs", params={"status": "success", "limit": 50})
            client.get("/api/stats")
        for _ in range(iterations):
            timed("http_floor", "/healthz")  # the HTTP round trip alone: the baseline
            timed("get_run", f"/api/runs/{rng.choice(run_ids)}")
            timed("list_by_status", "/api/runs", {"status": "success", "limit": 50}, "runs")
            timed(
                "list_by_workflow",
                "/api/runs",
                {"workflow": f"wf-{rng.randrange(N_WORKFLOWS)}", "limit": 50},
                "runs",
            )
            timed(
                "list_by_param",
                "/api/runs",
                {"param.dataset": f"ds-{rng.randrange(N_DATASETS)}", "limit": 50},
                "runs",
            )
            timed("stats", "/api/stats")
            timed("lineage_depth3", f"/api/runs/{rng.choice(chained)}/lineage", {"depth": 3}, "nodes")
    result: dict[str, Any] = {op: latency_ms(values) for op, values in lat.items()}
    for op, values in sizes.items():
        result[op]["avg_items"] = round(sum(values) / len(values), 1)
    result["failures"] = failures
    return result


def timed_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    """``runledger ARGS`` as its own process: seconds, peak RSS (``measure_command``)."""
    outcome = measure_command(env, *args, timeout=3600)
    if outcome["exit_code"] != 0:
        raise RuntimeError(f"{outcome['command']} exited {outcome['exit_code']}: {outcome['stderr_tail']}")
    return {k: v for k, v in outcome.items() if k != "stderr_tail"}


def bench_backend(backend: str, args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    with scratch_database(backend, prefix="rl_bench_q") as db:
        settings = Settings(database_url=db.url, data_dir=db.directory / "state")
        env = runledger_env(db.url, db.directory / "state")
        result: dict[str, Any] = {"backend": backend, "runs": args.runs}
        base = datetime.now(UTC) - timedelta(milliseconds=args.runs)
        filled = fill(settings, args.runs, args.service_runs, args.workers, base)
        run_ids: list[str] = filled.pop("run_ids")
        filled["events_per_s"] = round(filled["events"] / filled["seconds"], 1)
        result["populate"] = filled
        print(f"# {backend}: populated {filled}", flush=True)
        # The read side, as an operator would bring it up on an existing ledger: every view
        # built from event 0 in one batched pass and the Merkle tree, side by side (two
        # processes, one per core), then the server.
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            rebuild = pool.submit(timed_cli, env, "projections", "rebuild")
            tree = pool.submit(timed_cli, env, "digest")
            result["rebuild"], result["tree"] = rebuild.result(), tree.result()
        result["read_side_seconds"] = round(time.perf_counter() - started, 1)
        result["rebuild"]["events_per_s"] = round(filled["events"] / result["rebuild"]["seconds"], 1)
        print(
            f"# {backend}: projections rebuilt {result['rebuild']}; Merkle tree built {result['tree']}",
            flush=True,
        )
        if db.schema:
            with psycopg.connect(PG_URL) as conn:
                row = conn.execute("SHOW autovacuum").fetchone()
                result["autovacuum"] = str(row[0]) if row else "?"
        if args.analyze and db.schema:
            # What autovacuum does on a production PostgreSQL (it is off on the test server):
            # planner statistics for the freshly built tables.
            started = time.perf_counter()
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{db.schema}"')
                conn.execute("ANALYZE")
            result["analyze_seconds"] = round(time.perf_counter() - started, 1)
        if args.export:
            bundle = db.directory / "bundle"
            result["exports"] = [
                {
                    "runs": args.runs,
                    "events": filled["events"],
                    "export": measure_command(env, "export", "--out", str(bundle)),
                    "verify": measure_command(env, "verify"),
                }
            ]
            print(f"# export/verify: {result['exports'][-1]}", flush=True)
        server = RunledgerServer(
            db.url, db.directory / "state", log_path=results_dir / f"queries-{backend}-serve.log"
        )
        with server:
            token = server.token("auditor")
            started = time.perf_counter()
            wait_caught_up(server.url, token)
            result["server_caught_up_seconds"] = round(time.perf_counter() - started, 1)
            result["latency"] = query_latencies(server.url, token, run_ids, args.iterations)
        result["serve_peak_rss_mb"] = round(server.peak_rss_kb / 1024, 1)
        if args.verify:
            result["verify"] = timed_cli(env, "verify")
            print(f"# {backend}: verify {result['verify']}", flush=True)
    floor = result["latency"].get("http_floor", {}).get("p50_ms")
    result["goals"] = {
        op: {
            "goal_p99_ms": goal,
            "p99_ms": result["latency"][op]["p99_ms"],
            "met": result["latency"][op]["p99_ms"] < goal,
        }
        for op, goal in GOALS_MS.items()
        if op in result["latency"]
    }
    if floor:
        result["p50_vs_http_floor"] = {
            op: round(values["p50_ms"] / floor, 2)
            for op, values in result["latency"].items()
            if op not in ("failures", "http_floor")
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument(
        "--service-runs",
        type=int,
        default=1000,
        help="runs written through the Ledger service first (the baseline)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="processes building the bulk rows (default: one per CPU)"
    )
    parser.add_argument(
        "--export", action="store_true", help="also time runledger export and verify (peak RSS) at full size"
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="(PostgreSQL) ANALYZE the schema after the rebuild, as autovacuum would, before the queries",
    )
    parser.add_argument(
        "--verify", action="store_true", help="finally run runledger verify over the whole ledger (must pass)"
    )
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"machine": machine(), "results": []}
    for backend in args.backend.split(","):
        result = bench_backend(backend, args, results_dir)
        summary["results"].append(result)
        for op, values in result["latency"].items():
            if op != "failures":
                print(f"{backend:8} {op:18} p50={values['p50_ms']}ms p99={values['p99_ms']}ms", flush=True)
        print(
            f"{backend:8} failures={result['latency']['failures']} "
            f"serve peak RSS={result['serve_peak_rss_mb']} MB",
            flush=True,
        )
        write_json(args.out, summary)  # what is done so far, should a later backend fail
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
