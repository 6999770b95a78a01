"""runledger against MLflow, side by side in one session, same harness, same clients.

    .venv/bin/python -m bench.mlflow_compare [--backend sqlite,postgres] [--clients 1,8]
        [--runs 300] [--max-seconds 20] [--repeat 1] [--populate 0] [--out FILE]

MLflow lives in its own venv, ``bench/.mlflow-venv`` (git-ignored, never a project dependency;
created here on first use). For each backend, MLflow is driven by the shared
``../shared/bench/mlflow_bench.py`` (its server on 127.0.0.1 with 2 gunicorn workers over an
SQLite file, or the PostgreSQL database ``mlflow_bench``), then runledger by
:mod:`bench.http_ingest` (``runledger serve --no-executor --workers 2`` over a fresh SQLite
file or PostgreSQL schema: two API processes, as MLflow's two workers), then
:mod:`bench.null_server` (runledger's HTTP stack storing nothing, one process: the most the
harness can drive on this machine), each with the same ``runbench`` workload and client
counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, machine, write_json
from bench.http_ingest import RUNBENCH_DIR, bench_null, bench_runledger, read_rows, write_rows
from bench.nodelay import NoDelayProbe
from bench.server import free_port

VENV = ROOT / "bench" / ".mlflow-venv"


def ensure_mlflow_venv() -> str:
    """The MLflow venv's python, installing MLflow into it on first use."""
    python = VENV / "bin" / "python"
    if not (VENV / "bin" / "mlflow").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "mlflow", "httpx", "psycopg2-binary"], check=True
        )
    version = subprocess.run(  # the installed distribution's version, without importing it
        [str(python), "-c", "from importlib.metadata import version; print(version('mlflow'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return version


def bench_mlflow(
    backend: str,
    *,
    clients: str,
    runs: int,
    max_seconds: float,
    repeat: int,
    populate: int,
    results_dir: Path,
) -> dict[str, Any]:
    work = results_dir / "mlflow-work"
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_BENCH_VENV": str(VENV),
            "MLFLOW_BENCH_WORK": str(work),
            "MLFLOW_BENCH_RESULTS": str(results_dir),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
    )
    phases = "write,populate,read" if populate else "write"
    port = free_port()
    cmd = [
        str(VENV / "bin" / "python"),
        str(RUNBENCH_DIR / "mlflow_bench.py"),
        "--backend",
        backend,
        "--workers",
        "2",
        "--port",
        str(port),
        "--phases",
        phases,
        "--clients",
        clients,
        "--runs",
        str(runs),
        "--max-seconds",
        str(max_seconds),
        "--repeat",
        str(repeat),
        "--target-total",
        str(populate or 5000),
    ]
    print("#", " ".join(cmd[1:]).replace(str(ROOT) + "/", ""), file=sys.stderr, flush=True)
    started = time.time()
    with NoDelayProbe(port) as nodelay:
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    name = f"mlflow-{backend}-w2"
    with (results_dir / f"{name}-write.json").open() as handle:
        result: dict[str, Any] = {
            "backend": backend,
            "nodelay": nodelay.summary(),
            "write": write_rows(json.load(handle)),
            "wall_s": round(time.time() - started, 1),
        }
    if populate:
        with (results_dir / f"{name}-read.json").open() as handle:
            result["read"] = read_rows(json.load(handle))
    return result


def side_by_side(
    mlflow: dict[str, Any], runledger: dict[str, Any], null: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    rows = []
    ceilings = null["write"] if null else [None] * len(runledger["write"])
    for ours, theirs, ceiling in zip(runledger["write"], mlflow["write"], ceilings, strict=True):
        rows.append(
            {
                "backend": runledger["backend"],
                "clients": ours["clients"],
                "mlflow_runs_per_s": theirs["runs_per_s"],
                "runledger_runs_per_s": ours["runs_per_s"],
                "runs_ratio": round(ours["runs_per_s"] / theirs["runs_per_s"], 2)
                if theirs["runs_per_s"]
                else None,
                "mlflow_requests_per_s": theirs["requests_per_s"],
                "runledger_requests_per_s": ours["requests_per_s"],
                "mlflow_p50_ms": theirs["p50_ms"],
                "runledger_p50_ms": ours["p50_ms"],
                "mlflow_p99_ms": theirs["p99_ms"],
                "runledger_p99_ms": ours["p99_ms"],
                "mlflow_errors": theirs["errors"],
                "runledger_errors": ours["errors"],
            }
            | _cpu(theirs, ours)
            | _ceiling(ceiling, theirs)
        )
    return rows


def _cpu(mlflow: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Server CPU per run and per request beside each other, and their ratio (runledger's
    CPU per run over MLflow's: the goal is 0.1 or less)."""
    theirs_ms, ours_ms = mlflow.get("server_cpu_ms_per_run"), ours.get("server_cpu_ms_per_run")
    return {
        "mlflow_cpu_ms_per_run": theirs_ms,
        "runledger_cpu_ms_per_run": ours_ms,
        "cpu_ratio": round(ours_ms / theirs_ms, 3) if theirs_ms and ours_ms is not None else None,
        "mlflow_cpu_ms_per_request": mlflow.get("server_cpu_ms_per_request"),
        "runledger_cpu_ms_per_request": ours.get("server_cpu_ms_per_request"),
        "mlflow_cpu_ms_per_run_trials": mlflow.get("server_cpu_ms_per_run_trials", []),
        "runledger_cpu_ms_per_run_trials": ours.get("server_cpu_ms_per_run_trials", []),
    }


def _ceiling(null: dict[str, Any] | None, mlflow: dict[str, Any]) -> dict[str, Any]:
    """The null server's figures (the harness's ceiling) beside MLflow's."""
    if null is None:
        return {}
    return {
        "null_runs_per_s": null["runs_per_s"],
        "null_ratio": round(null["runs_per_s"] / mlflow["runs_per_s"], 2) if mlflow["runs_per_s"] else None,
        "null_client_cores": null.get("client_cores"),
        "null_p99_ms": null["p99_ms"],
        "null_cpu_ms_per_run": null.get("server_cpu_ms_per_run"),
        "null_cpu_ms_per_request": null.get("server_cpu_ms_per_request"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--populate", type=int, default=0, help="also populate to N runs and run the read phase on both"
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="runledger API processes (default 2, as MLflow's 2 gunicorn workers)",
    )
    parser.add_argument(
        "--no-ceiling",
        action="store_true",
        help="skip the null server (the harness's ceiling on this machine)",
    )
    parser.add_argument("--results-dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    summary: dict[str, Any] = {"machine": machine(), "mlflow_version": ensure_mlflow_venv(), "backends": []}
    for backend in args.backend.split(","):
        options = {
            "clients": args.clients,
            "runs": args.runs,
            "max_seconds": args.max_seconds,
            "repeat": args.repeat,
            "populate": args.populate,
            "results_dir": results_dir,
        }
        theirs = bench_mlflow(backend, **options)
        ours = bench_runledger(backend, **options, workers=args.server_workers)
        null = (
            None
            if args.no_ceiling
            else bench_null(
                clients=args.clients,
                runs=args.runs,
                max_seconds=args.max_seconds,
                repeat=args.repeat,
                results_dir=results_dir,
                label=f"null-{backend}",
            )
        )
        rows = side_by_side(theirs, ours, null)
        summary["backends"].append(
            {"backend": backend, "mlflow": theirs, "runledger": ours, "null": null, "rows": rows}
        )
        for row in rows:
            print(
                f"{backend:8} clients={row['clients']} runs/s mlflow={row['mlflow_runs_per_s']}"
                f" runledger={row['runledger_runs_per_s']} ratio={row['runs_ratio']} "
                f"p99 mlflow={row['mlflow_p99_ms']}ms runledger={row['runledger_p99_ms']}ms"
                f" null server={row.get('null_runs_per_s')} runs/s | server CPU/run"
                f" mlflow={row['mlflow_cpu_ms_per_run']}ms runledger={row['runledger_cpu_ms_per_run']}ms"
                f" null={row.get('null_cpu_ms_per_run')}ms cpu ratio={row['cpu_ratio']}",
                flush=True,
            )
        nodelay = {"mlflow": theirs["nodelay"], "runledger": ours["nodelay"]}
        if null is not None:
            nodelay["null"] = null["nodelay"]
        summary["backends"][-1]["nodelay"] = nodelay
        print(f"{backend:8} TCP_NODELAY on the servers' connections: {nodelay}", flush=True)
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
