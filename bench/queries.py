"""Queries at scale: 100,000 runs (1.3 million events), then the latency of the read API.

    .venv/bin/python -m bench.queries [--backend sqlite] [--runs 100000] [--iterations 300]
        [--export] [--out FILE]

Population goes through the real aggregates and the Ledger service, 200 runs (2,600 events) per
``save()``; the projections then catch up (timed). A real ``runledger serve --no-executor``
answers, sequentially over one keep-alive connection, interleaved:
``GET /api/runs/{id}``, ``GET /api/runs?status=success&limit=50``,
``GET /api/runs?workflow=wf-N&limit=50``, ``GET /api/runs?param.dataset=ds-N&limit=50``,
``GET /api/stats``, ``GET /api/runs/{id}/lineage?depth=3``. Goals (p99): single run < 10 ms,
lists < 20 ms, stats < 50 ms. With ``--export``: ``runledger export`` and ``runledger verify``
peak RSS and time, at a tenth of the runs and at all of them (flat memory means equal peaks).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import latency_ms, machine, scratch_database, write_json
from bench.memory import measure_command
from bench.populate import CHAIN, N_DATASETS, N_WORKFLOWS, populate
from bench.server import RunledgerServer, runledger_env
from ledger.service import Ledger
from ledger.settings import Settings

GOALS_MS = {"get_run": 10.0, "list_by_status": 20.0, "list_by_workflow": 20.0,
            "list_by_param": 20.0, "stats": 50.0}


def wait_caught_up(url: str, token: str, timeout: float = 3600) -> None:
    """Until every projection of the server reports lag 0."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:
        while time.monotonic() < deadline:
            views = client.get("/api/projections").json()["projections"]
            if views and all(v["lag"] == 0 and v["state"] == "live" for v in views):
                return
            time.sleep(1.0)
    raise TimeoutError("the projections did not catch up")


def query_latencies(url: str, token: str, run_ids: list[str], iterations: int,
                    seed: int = 11) -> dict[str, Any]:
    rng = random.Random(seed)
    lat: dict[str, list[float]] = {}
    sizes: dict[str, list[int]] = {}
    failures: dict[str, int] = {}
    # Lineage from a run deep in a chain, so depth=3 crosses three runs.
    chained = [r for i, r in enumerate(run_ids) if (i // N_WORKFLOWS) % CHAIN >= 3]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:

        def timed(op: str, path: str, params: dict[str, Any] | None = None,
                  key: str | None = None) -> None:
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
            timed("get_run", f"/api/runs/{rng.choice(run_ids)}")
            timed("list_by_status", "/api/runs", {"status": "success", "limit": 50}, "runs")
            timed("list_by_workflow", "/api/runs",
                  {"workflow": f"wf-{rng.randrange(N_WORKFLOWS)}", "limit": 50}, "runs")
            timed("list_by_param", "/api/runs",
                  {"param.dataset": f"ds-{rng.randrange(N_DATASETS)}", "limit": 50}, "runs")
            timed("stats", "/api/stats")
            timed("lineage_depth3", f"/api/runs/{rng.choice(chained)}/lineage",
                  {"depth": 3}, "nodes")
    result: dict[str, Any] = {op: latency_ms(values) for op, values in lat.items()}
    for op, values in sizes.items():
        result[op]["avg_items"] = round(sum(values) / len(values), 1)
    result["failures"] = failures
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--export", action="store_true",
                        help="also measure runledger export/verify at 1/10 and all of the runs")
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"machine": machine(), "results": []}
    for backend in args.backend.split(","):
        with scratch_database(backend, prefix="rl_bench_q") as db:
            settings = Settings(database_url=db.url, data_dir=db.directory / "state")
            env = runledger_env(db.url, db.directory / "state")
            result: dict[str, Any] = {"backend": backend, "runs": args.runs}
            # The server (and its projection runner) runs while we populate: the runner
            # catches up on the other core as the events arrive.
            server = RunledgerServer(db.url, db.directory / "state",
                                     log_path=results_dir / f"queries-{backend}-serve.log")
            ledger = Ledger(settings)
            run_ids: list[str] = []
            populated = {"events": 0, "seconds": 0.0}
            exports = []
            with server:
                token = server.token("auditor")
                started = time.perf_counter()
                try:
                    steps = [args.runs // 10, args.runs - args.runs // 10] if args.export else [
                        args.runs]
                    for count in steps:
                        filled = populate(ledger, count, start=len(run_ids))
                        run_ids += filled["run_ids"]
                        populated["events"] += filled["events"]
                        populated["seconds"] += filled["seconds"]
                        if args.export:
                            bundle = db.directory / f"bundle-{len(run_ids)}"
                            exports.append({"runs": len(run_ids), "events": populated["events"],
                                            "export": measure_command(env, "export", "--out",
                                                                      str(bundle)),
                                            "verify": measure_command(env, "verify")})
                            print(f"# export/verify at {len(run_ids)} runs: {exports[-1]}",
                                  flush=True)
                finally:
                    ledger.close()
                result["populate"] = {
                    "events": populated["events"], "seconds": round(populated["seconds"], 1),
                    "events_per_s": round(populated["events"] / populated["seconds"], 1)}
                print(f"# {backend}: populated {result['populate']}", flush=True)
                wait_caught_up(server.url, token)
                seconds = time.perf_counter() - started
                result["projections_caught_up"] = {
                    "seconds_from_first_write": round(seconds, 1),
                    "events_per_s": round(populated["events"] / seconds, 1)}
                print(f"# {backend}: projections caught up {result['projections_caught_up']}",
                      flush=True)
                assert server.rss is not None
                server.rss.sample()
                result["serve_peak_rss_mb_populate"] = round(server.rss.peak_kb / 1024, 1)
                result["latency"] = query_latencies(server.url, token, run_ids, args.iterations)
            result["serve_peak_rss_mb"] = round(server.peak_rss_kb / 1024, 1)
            result["goals"] = {
                op: {"goal_p99_ms": goal, "p99_ms": result["latency"][op]["p99_ms"],
                     "met": result["latency"][op]["p99_ms"] < goal}
                for op, goal in GOALS_MS.items() if op in result["latency"]}
            if exports:
                result["exports"] = exports
            summary["results"].append(result)
            for op, values in result["latency"].items():
                if op != "failures":
                    print(f"{backend:8} {op:18} p50={values['p50_ms']}ms "
                          f"p99={values['p99_ms']}ms", flush=True)
            print(f"{backend:8} failures={result['latency']['failures']} "
                  f"serve peak RSS={result['serve_peak_rss_mb']} MB", flush=True)
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
