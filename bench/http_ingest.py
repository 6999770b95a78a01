"""HTTP ingest as an outside engine uses it: the shared ``runbench`` harness with our adapter
against a real ``runledger serve --no-executor`` on each backend.

    .venv/bin/python -m bench.http_ingest [--backend sqlite,postgres] [--clients 1,8]
        [--runs 300] [--max-seconds 20] [--repeat 1] [--populate 0] [--out FILE]

Per run: trigger, claim, 5 x (task_started, task_finished with exit code, duration, 2 input and
2 output hashes, host), run_succeeded: 13 requests. Reports runs/s, requests/s, p50/p95/p99 per
client count, and the peak RSS of the ``runledger serve`` process tree. With ``--populate N``
the store is then topped up to N runs (3-request bulk path) and the harness's read phase runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, scratch_database, write_json
from bench.nodelay import NoDelayProbe
from bench.server import NullServer, RunledgerServer

RUNBENCH_DIR = Path(os.environ.get("RUNBENCH_DIR", ROOT.parent / "shared" / "bench")).resolve()
ADAPTER = "bench.runledger_adapter:RunledgerAdapter"


def runbench(argv: list[str], out: Path) -> dict[str, Any]:
    """Run the shared harness once; its JSON summary."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(RUNBENCH_DIR), str(ROOT)])
    cmd = [sys.executable, str(RUNBENCH_DIR / "runbench.py"), *argv, "--out", str(out)]
    print("#", " ".join(cmd[1:]).replace(str(ROOT) + "/", ""), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
    with out.open() as handle:
        result: dict[str, Any] = json.load(handle)
    return result


def write_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per client count: medians over the trials."""
    rows = []
    for config in summary["configs"]:
        agg = config["aggregate"]
        errors: dict[str, int] = {}
        for trial in config["trials"]:
            for key, count in trial["errors"].items():
                errors[key] = errors.get(key, 0) + count
        rows.append(
            {
                "clients": config["clients"],
                "runs_per_s": agg["runs_per_s"]["median"],
                "requests_per_s": agg["requests_per_s"]["median"],
                "p50_ms": agg["latency_all.p50_ms"]["median"],
                "p95_ms": agg["latency_all.p95_ms"]["median"],
                "p99_ms": agg["latency_all.p99_ms"]["median"],
                "completed_runs": agg["completed_runs"]["median"],
                "failed_runs": agg["failed_runs"]["median"],
                "errors": errors,
                "server_cores": [t["cpu"].get("server_cores") for t in config["trials"]],
                "client_cores": [t["cpu"].get("client_cores") for t in config["trials"]],
                "foreign_cores": [t["cpu"].get("foreign_cores") for t in config["trials"]],
            }
            | server_cpu(config["trials"])
        )
    return rows


def server_cpu(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Server CPU per run and per request: the server process tree's CPU time over each trial
    (the harness reads it from ``/proc`` by the tree's session id) divided by the runs and the
    requests that trial completed. Medians over the trials, and every trial's figure per run
    (the spread)."""
    per_run: list[float] = []
    per_request: list[float] = []
    for trial in trials:
        cores = trial["cpu"].get("server_cores")
        if cores is None or not trial["completed_runs"] or not trial["requests_ok"]:
            continue
        cpu_ms = 1000 * cores * trial["elapsed_s"]
        per_run.append(round(cpu_ms / trial["completed_runs"], 2))
        per_request.append(round(cpu_ms / trial["requests_ok"], 3))
    if not per_run:
        return {
            "server_cpu_ms_per_run": None,
            "server_cpu_ms_per_request": None,
            "server_cpu_ms_per_run_trials": [],
        }
    return {
        "server_cpu_ms_per_run": round(statistics.median(per_run), 2),
        "server_cpu_ms_per_request": round(statistics.median(per_request), 3),
        "server_cpu_ms_per_run_trials": per_run,
    }


def read_rows(summary: dict[str, Any]) -> dict[str, Any]:
    agg = summary["aggregate"]
    return {
        op: {
            m: agg[f"latency_by_op.{op}.{m}"]["median"]
            for m in ("p50_ms", "p95_ms", "p99_ms")
            if f"latency_by_op.{op}.{m}" in agg
        }
        for op in ("get_run", "list_recent_finished", "search_by_param")
    } | {"correctness_failures": summary["trials"][-1]["correctness_failures"]}


def bench_runledger(
    backend: str,
    *,
    clients: str,
    runs: int,
    max_seconds: float,
    repeat: int,
    populate: int,
    results_dir: Path,
    workers: int = 1,
) -> dict[str, Any]:
    """Write (and optionally populate + read) phases on a fresh store of ``backend``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    with scratch_database(backend, prefix="rl_bench_http") as db:
        server = RunledgerServer(
            db.url,
            db.directory / "state",
            extra=("--workers", str(workers)) if workers > 1 else (),
            log_path=results_dir / f"runledger-{backend}-serve.log",
        )
        with server:
            common = [
                "--system",
                ADAPTER,
                "--url",
                server.url,
                "--opt",
                f"token={server.token('operator')}",
                "--opt",
                f"worker_token={server.token('worker')}",
                "--state",
                str(db.directory / "ids"),
                "--server-sid",
                str(server.pid),
            ]
            started = time.time()
            with NoDelayProbe(server.port) as nodelay:
                write = runbench(
                    [
                        *common,
                        "--mode",
                        "write",
                        "--clients",
                        clients,
                        "--runs",
                        str(runs),
                        "--max-seconds",
                        str(max_seconds),
                        "--repeat",
                        str(repeat),
                    ],
                    results_dir / f"runledger-{backend}-write.json",
                )
            result: dict[str, Any] = {
                "backend": backend,
                "server_workers": workers,
                "nodelay": nodelay.summary(),
                "write": write_rows(write),
                "write_wall_s": round(time.time() - started, 1),
            }
            assert server.rss is not None
            server.rss.sample()
            result["peak_rss_write_mb"] = round(server.rss.peak_kb / 1024, 1)
            if populate:
                started = time.time()
                filled = runbench(
                    [
                        *common,
                        "--mode",
                        "populate",
                        "--clients",
                        "8",
                        "--warmup",
                        "0",
                        "--target-total",
                        str(populate),
                        "--fast-populate",
                    ],
                    results_dir / f"runledger-{backend}-populate.json",
                )
                result["populate"] = {
                    "runs": filled["populate"]["now"],
                    "elapsed_s": filled["populate"]["elapsed_s"],
                }
                read = runbench(
                    [
                        *common,
                        "--mode",
                        "read",
                        "--iterations",
                        "200",
                        "--repeat",
                        str(repeat),
                        "--warmup",
                        "10",
                    ],
                    results_dir / f"runledger-{backend}-read.json",
                )
                result["read"] = read_rows(read)
                result["read_wall_s"] = round(time.time() - started, 1)
        result["peak_rss_mb"] = round(server.peak_rss_kb / 1024, 1)  # write + populate + read
        return result


def bench_null(
    *, clients: str, runs: int, max_seconds: float, repeat: int, results_dir: Path, label: str = "null"
) -> dict[str, Any]:
    """The same write phase against :mod:`bench.null_server`: the harness's ceiling."""
    results_dir.mkdir(parents=True, exist_ok=True)
    with NullServer(results_dir / "null-server", log_path=results_dir / f"{label}-serve.log") as server:
        started = time.time()
        with NoDelayProbe(server.port) as nodelay:
            write = runbench(
                [
                    "--system",
                    ADAPTER,
                    "--url",
                    server.url,
                    "--opt",
                    f"token={server.token('operator')}",
                    "--opt",
                    f"worker_token={server.token('worker')}",
                    "--server-sid",
                    str(server.pid),
                    "--mode",
                    "write",
                    "--clients",
                    clients,
                    "--runs",
                    str(runs),
                    "--max-seconds",
                    str(max_seconds),
                    "--repeat",
                    str(repeat),
                ],
                results_dir / f"{label}-write.json",
            )
        return {
            "write": write_rows(write),
            "nodelay": nodelay.summary(),
            "write_wall_s": round(time.time() - started, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--populate", type=int, default=0)
    parser.add_argument(
        "--server-workers", type=int, default=1, help="runledger serve --workers (API processes)"
    )
    parser.add_argument("--results-dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    summary: dict[str, Any] = {"machine": machine(), "results": []}
    for backend in args.backend.split(","):
        result = bench_runledger(
            backend,
            clients=args.clients,
            runs=args.runs,
            max_seconds=args.max_seconds,
            repeat=args.repeat,
            populate=args.populate,
            results_dir=Path(args.results_dir),
            workers=args.server_workers,
        )
        summary["results"].append(result)
        for row in result["write"]:
            print(
                f"{backend:8} clients={row['clients']} runs/s={row['runs_per_s']} "
                f"req/s={row['requests_per_s']} p50={row['p50_ms']}ms p95={row['p95_ms']}ms "
                f"p99={row['p99_ms']}ms errors={row['errors']} server CPU/run="
                f"{row['server_cpu_ms_per_run']}ms (trials {row['server_cpu_ms_per_run_trials']}) "
                f"CPU/request={row['server_cpu_ms_per_request']}ms",
                flush=True,
            )
        print(f"{backend:8} peak RSS of runledger serve: {result['peak_rss_mb']} MB", flush=True)
        print(f"{backend:8} TCP_NODELAY on the server's connections: {result['nodelay']}", flush=True)
        if "read" in result:
            print(f"{backend:8} read: {result['read']}", flush=True)
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
