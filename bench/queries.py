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
``GET /api/stats``, ``GET /api/runs/{id}/lineage?depth=3``, and for issue 20
``label.team=``, ``status=failed&status=killed``, three ``q`` expressions and
``/api/stats?q=`` (:func:`q_expressions`). Goals (p99): single run < 10 ms, lists and ``q``
pages < 20 ms, stats < 50 ms, stats with ``q`` < 100 ms. With ``--mlflow``: MLflow's
``search_runs`` with the same filters over the same runs on the same backend
(:func:`mlflow_peer`, ``bench/mlflow_search.py``), the peer. Past 300 lines on purpose: the
population, the read side's start, both systems' query loops and the goals are one
measurement, and splitting them would split what one run reports. With ``--export``:
``runledger export`` and ``runledger verify``
time and peak RSS at full size; with ``--explain``, each query's plan on this data
(``bench/plans.py``: ``EXPLAIN ANALYZE`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite);
with ``--verify``: ``runledger verify`` must pass at the end; with ``--analyze``
(PostgreSQL): ``ANALYZE`` before the queries, as autovacuum would do.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
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
from bench.mlflow_compare import VENV, ensure_mlflow_venv
from bench.plans import explain
from bench.populate import CHAIN, N_DATASETS, N_TEAMS, N_WORKFLOWS, run_facts
from bench.server import RunledgerServer, runledger_env
from ledger.hashing import format_timestamp
from ledger.settings import Settings

GOALS_MS = {
    "get_run": 10.0,
    "list_by_status": 20.0,
    "list_by_workflow": 20.0,
    "list_by_param": 20.0,
    "list_by_label": 20.0,
    "list_status_any": 20.0,
    "q_label_eq": 20.0,
    "q_workflow_or_label": 20.0,
    "q_param_range_window": 20.0,
    "stats": 50.0,
    "stats_q": 100.0,
}


def q_expressions(base: datetime, runs: int) -> dict[str, str]:
    """The three ``q`` expressions of issue 20 (and the one ``/api/stats?q=`` takes): a label
    equality, an OR across workflow and label, and a range over a numeric parameter within a
    time window (the middle fifth of the runs: about 2% of all runs match)."""
    start = format_timestamp(base + timedelta(milliseconds=int(runs * 0.4)))
    end = format_timestamp(base + timedelta(milliseconds=int(runs * 0.6)))
    return {
        "q_label_eq": 'label.team = "team-3"',
        "q_workflow_or_label": 'workflow = "wf-3" OR label.tier = "gold"',
        "q_param_range_window": f'param.max_urls > 90 AND created_at >= "{start}" AND created_at < "{end}"',
        "stats_q": f'label.team = "team-3" AND created_at >= "{start}" AND created_at < "{end}"',
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
    url: str, token: str, run_ids: list[str], iterations: int, qs: dict[str, str], seed: int = 11
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
            timed(
                "list_by_label",
                "/api/runs",
                {"label.team": f"team-{rng.randrange(N_TEAMS)}", "limit": 50},
                "runs",
            )
            timed("list_status_any", "/api/runs", {"status": ["failed", "killed"], "limit": 50}, "runs")
            for op in ("q_label_eq", "q_workflow_or_label", "q_param_range_window"):
                timed(op, "/api/runs", {"q": qs[op], "limit": 50}, "runs")
            timed("stats", "/api/stats")
            timed("stats_q", "/api/stats", {"q": qs["stats_q"]})
            timed("lineage_depth3", f"/api/runs/{rng.choice(chained)}/lineage", {"depth": 3}, "nodes")
    result: dict[str, Any] = {op: latency_ms(values) for op, values in lat.items()}
    for op, values in sizes.items():
        result[op]["avg_items"] = round(sum(values) / len(values), 1)
    result["failures"] = failures
    return result


def mlflow_filters(base: datetime, runs: int) -> dict[str, str | list[str]]:
    """The same filters as MLflow ``search_runs`` filter strings (a list: MLflow has no OR,
    so one search per side, merged). Each label is a tag, the workflow a tag too, and the
    numeric parameter also a metric (MLflow compares params as strings only)."""
    start = int((base + timedelta(milliseconds=int(runs * 0.4))).timestamp() * 1000)
    end = int((base + timedelta(milliseconds=int(runs * 0.6))).timestamp() * 1000)
    return {
        "list_by_status": "attributes.status = 'FINISHED'",
        "list_by_workflow": "tags.workflow = 'wf-3'",
        "list_by_param": "params.dataset = 'ds-7'",
        "list_status_any": ["attributes.status = 'FAILED'", "attributes.status = 'KILLED'"],
        "q_label_eq": "tags.team = 'team-3'",
        "q_workflow_or_label": ["tags.workflow = 'wf-3'", "tags.tier = 'gold'"],
        "q_param_range_window": (
            f"metrics.max_urls > 90 AND attributes.start_time >= {start} AND attributes.start_time < {end}"
        ),
    }


def mlflow_peer(backend: str, runs: int, base: datetime, iterations: int, work: Path) -> dict[str, Any]:
    """MLflow's ``search_runs`` over the same runs (``bench/mlflow_search.py`` in MLflow's venv,
    its store on the same backend: an SQLite file, or the PostgreSQL database
    ``mlflow_search_bench``, emptied first)."""
    version = ensure_mlflow_venv()
    runs_file = work / "mlflow-runs.tsv"
    with runs_file.open("w", encoding="utf-8") as out:
        for seq in range(runs):
            facts = run_facts(seq)
            start_ms = int((base + timedelta(milliseconds=seq)).timestamp() * 1000)
            out.write(
                f"{facts.run_id}\t{facts.workflow}\t{int(facts.failed)}\t{start_ms}\t"
                f"{json.dumps(facts.parameters)}\t{json.dumps(facts.labels)}\n"
            )
    if backend == "postgres":
        admin = PG_URL.rsplit("/", 1)[0]
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            if (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = 'mlflow_search_bench'").fetchone()
                is None
            ):
                conn.execute("CREATE DATABASE mlflow_search_bench")
        with psycopg.connect(f"{admin}/mlflow_search_bench", autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        uri = f"{admin.replace('postgresql://', 'postgresql+psycopg2://')}/mlflow_search_bench"
    else:
        uri = f"sqlite:///{work / 'mlflow-search.db'}"
    out_file = work / "mlflow-search.json"
    try:
        _run_mlflow_search(uri, runs_file, base, runs, iterations, out_file, work)
    finally:
        if backend == "postgres":  # MLflow's tables go with the run, as the scratch schema does
            with psycopg.connect(f"{PG_URL.rsplit('/', 1)[0]}/postgres", autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS mlflow_search_bench WITH (FORCE)")
    result: dict[str, Any] = json.loads(out_file.read_text())
    result["mlflow_version"] = version
    return result


def _run_mlflow_search(
    uri: str, runs_file: Path, base: datetime, runs: int, iterations: int, out_file: Path, work: Path
) -> None:
    subprocess.run(
        [
            str(VENV / "bin" / "python"),
            str(Path(__file__).with_name("mlflow_search.py")),
            "--uri",
            uri,
            "--runs-file",
            str(runs_file),
            "--queries",
            json.dumps(mlflow_filters(base, runs)),
            "--iterations",
            str(iterations),
            "--out",
            str(out_file),
        ],
        check=True,
        cwd=work,
    )


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
            qs = q_expressions(base, args.runs)
            result["q"] = qs
            if args.explain:  # how the planner runs each query on this data (bench/plans.py)
                result["plans"] = explain(settings, qs)
                for op, plans in result["plans"].items():
                    print(f"# {backend} plan {op}:\n" + "\n".join("\n".join(p) for p in plans), flush=True)
            result["latency"] = query_latencies(server.url, token, run_ids, args.iterations, qs)
        result["serve_peak_rss_mb"] = round(server.peak_rss_kb / 1024, 1)
        if args.mlflow:
            peer = mlflow_peer(backend, args.runs, base, args.mlflow_iterations, db.directory)
            result["mlflow"] = peer
            result["mlflow_p50_vs_runledger_p50"] = {
                op: round(values["p50_ms"] / result["latency"][op]["p50_ms"], 2)
                for op, values in peer["latency"].items()
                if op in result["latency"] and result["latency"][op]["p50_ms"]
            }
            print(f"# {backend}: MLflow {peer}", flush=True)
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
        "--explain",
        action="store_true",
        help="record the plan of each listing, q page and stats query (bench/plans.py) before timing",
    )
    parser.add_argument(
        "--verify", action="store_true", help="finally run runledger verify over the whole ledger (must pass)"
    )
    parser.add_argument(
        "--mlflow",
        action="store_true",
        help="also MLflow's search_runs over the same runs, same backend (bench/mlflow_search.py)",
    )
    parser.add_argument("--mlflow-iterations", type=int, default=100)
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
