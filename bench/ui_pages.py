"""The web UI at scale: ``/runs`` and ``/runs/{id}`` over 100,000 runs, p99 server-side.

    .venv/bin/python -m bench.ui_pages [--backend sqlite[,postgres]] [--runs 100000] [--iterations 300]

The ledger is filled by ``bench.bulk`` (the same runs as ``bench.queries``), its views rebuilt,
then a real ``runledger serve --no-executor`` answers, over one keep-alive connection of a
signed-in session, interleaved: ``GET /runs`` (the first page: 50 runs), ``GET /runs?status=
success``, ``GET /runs/{id}`` of a random run, and the JSON API's reads of the same data as
baselines: ``GET /api/runs?limit=50`` for the list, and for the run page the five reads it
shows (``/api/runs/{id}``, ``/tasks``, ``/files``, ``/audit``, ``/lineage``; their sum).
Server-side times are the ``duration_ms`` the server logs for each request (its request
logging middleware, around everything the app does); client-side times are printed too.
Goal: p99 server-side under 100 ms for both pages. The ratios are each page's p50 against its
baseline's, measured in the same loop.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.bulk import fill
from bench.common import latency_ms, machine, scratch_database, write_json
from bench.queries import timed_cli, wait_caught_up
from bench.server import RunledgerServer, runledger_env
from ledger.settings import Settings

GOAL_P99_MS = 100.0
RUN_API = ("", "/tasks", "/files", "/audit", "/lineage")


def sign_in(client: httpx.Client, token: str) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None, "the sign-in form has no CSRF token"
    answer = client.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/runs"})
    assert answer.status_code == 303 and "rl_session" in client.cookies, answer.text[:500]


def measure(
    url: str, token: str, run_ids: list[str], iterations: int, seed: int = 7
) -> dict[str, list[float]]:
    """Client-side seconds per operation; each request names its operation in ``X-Request-ID``,
    which the server's log line of the request carries as ``request_id``."""
    rng = random.Random(seed)
    client_s: dict[str, list[float]] = {}
    with (
        httpx.Client(base_url=url, timeout=60) as ui,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api,
    ):
        sign_in(ui, token)

        def timed(op: str, client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> None:
            started = time.perf_counter()
            tag = f"{op}.{len(client_s.get(op, []))}"
            answer = client.get(path, params=params, headers={"X-Request-ID": tag})
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
            client_s.setdefault(op, []).append(elapsed)

        for _ in range(10):  # warm up
            ui.get("/runs")
            ui.get(f"/runs/{rng.choice(run_ids)}")
        for _ in range(iterations):
            run_id = rng.choice(run_ids)
            timed("ui_runs", ui, "/runs")
            timed("api_runs", api, "/api/runs", {"limit": 50})
            timed("ui_runs_success", ui, "/runs", {"status": "success"})
            timed("ui_run", ui, f"/runs/{run_id}")
            started = time.perf_counter()
            for suffix in RUN_API:
                timed(f"api_run{suffix.replace('/', '_')}", api, f"/api/runs/{run_id}{suffix}")
            client_s.setdefault("api_run_all", []).append(time.perf_counter() - started)
    return client_s


def server_side(log_path: Path) -> dict[str, list[float]]:
    """The server's own ``duration_ms`` of every tagged request, by operation (seconds)."""
    found: dict[str, list[float]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if '"request_handled"' not in line:
            continue
        record = json.loads(line)
        match = re.fullmatch(r"([a-z_]+)\.\d+", str(record.get("request_id", "")))
        if match is None:
            continue
        found.setdefault(match.group(1), []).append(float(record["duration_ms"]) / 1000)
    return found


def bench_backend(backend: str, args: argparse.Namespace, results_dir: Path) -> dict[str, Any]:
    with scratch_database(backend, prefix="rl_bench_ui") as db:
        settings = Settings(database_url=db.url, data_dir=db.directory / "state")
        env = runledger_env(db.url, db.directory / "state")
        base = datetime.now(UTC) - timedelta(milliseconds=args.runs)
        filled = fill(settings, args.runs, min(args.runs, 200), None, base)
        run_ids: list[str] = filled.pop("run_ids")
        print(f"# {backend}: populated {filled['events']} events in {filled['seconds']} s", flush=True)
        timed_cli(env, "projections", "rebuild")
        log_path = results_dir / f"ui-pages-{backend}-serve.log"
        log_path.unlink(missing_ok=True)
        server = RunledgerServer(db.url, db.directory / "state", log_path=log_path)
        server.env["RUNLEDGER_LOG_LEVEL"] = "info"  # the request log carries each request's duration
        with server:
            token = server.token("operator")
            wait_caught_up(server.url, token)
            client_s = measure(server.url, token, run_ids, args.iterations)
        server_s = server_side(log_path)
    api_run_all = [
        sum(parts)
        for parts in zip(*(server_s[f"api_run{s.replace('/', '_')}"] for s in RUN_API), strict=True)
    ]
    server_s["api_run_all"] = api_run_all
    result: dict[str, Any] = {
        "backend": backend,
        "runs": args.runs,
        "events": filled["events"],
        "server_ms": {op: latency_ms(v) for op, v in sorted(server_s.items())},
        "client_ms": {op: latency_ms(v) for op, v in sorted(client_s.items())},
    }
    s = result["server_ms"]
    result["ratios_p50_server"] = {
        "ui_runs_vs_api_runs": round(s["ui_runs"]["p50_ms"] / s["api_runs"]["p50_ms"], 2),
        "ui_run_vs_api_run": round(s["ui_run"]["p50_ms"] / s["api_run"]["p50_ms"], 2),
        "ui_run_vs_its_five_api_reads": round(s["ui_run"]["p50_ms"] / s["api_run_all"]["p50_ms"], 2),
    }
    result["goals"] = {
        op: {"goal_p99_ms": GOAL_P99_MS, "p99_ms": s[op]["p99_ms"], "met": s[op]["p99_ms"] < GOAL_P99_MS}
        for op in ("ui_runs", "ui_runs_success", "ui_run")
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    results_dir = Path(args.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"machine": machine(), "results": []}
    for backend in args.backend.split(","):
        result = bench_backend(backend, args, results_dir)
        summary["results"].append(result)
        print(f"## {backend}, {result['runs']} runs ({result['events']} events): server-side ms")
        for op, values in result["server_ms"].items():
            client = result["client_ms"].get(op, {})
            print(
                f"  {op:22} p50 {values['p50_ms']:8.2f}  p99 {values['p99_ms']:8.2f}"
                f"   (client p99 {client.get('p99_ms', float('nan')):8.2f})"
            )
        print(f"  ratios (p50, server-side): {result['ratios_p50_server']}")
        for op, goal in result["goals"].items():
            print(
                f"  goal {op}: p99 {goal['p99_ms']} ms < {GOAL_P99_MS} ms: "
                f"{'met' if goal['met'] else 'NOT met'}"
            )
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
