"""The Python client's cost: its overhead per call against raw httpx on the same endpoint, and
listing every run of a big ledger through the lazy iterator in flat memory.

    .venv/bin/python -m bench.client_overhead [--backend sqlite] [--runs 100000] [--calls 500]

1. A ledger of ``--runs`` runs filled in bulk (``bench.bulk``), served by a real
   ``runledger serve --no-executor``, its projections caught up.
2. Overhead: ``GET /api/runs/{id}`` through one pooled ``httpx.Client`` (the baseline: send,
   read, ``json()``) and through ``Client.runs.get(id)`` (the same request plus the pydantic
   model and the exception mapping), in alternating blocks so both see the same load. Prints
   the ratio of the medians; the goal is under 1.2x.
3. Listing: ``client.runs.list()`` over all runs (pages of 1000 followed by cursor), keeping
   none; the process's heap (tracemalloc) is sampled at 10% and at 100% of the runs, and must
   not grow with the count (flat memory).
4. Peak RSS: a fresh process of its own (``--list-child``) lists the first 10% of the runs
   through the iterator, another one all of them; their peak RSS (``wait4``) must be the same
   within 10% or 8 MiB (flat memory), whatever the count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.bulk import fill
from bench.common import scratch_database, write_json
from bench.server import RunledgerServer
from ledger.settings import Settings
from runledger import Client

GOAL_RATIO = 1.2
BLOCK = 25


def wait_caught_up(url: str, token: str, timeout: float = 3600) -> float:
    started = time.monotonic()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while time.monotonic() - started < timeout:
            views = http.get("/api/projections").json()["projections"]
            if all(v["lag"] == 0 and v["state"] == "live" for v in views):
                return time.monotonic() - started
            time.sleep(1.0)
    raise RuntimeError("projections did not catch up")


def overhead(url: str, token: str, run_ids: list[str], calls: int) -> dict[str, Any]:
    raw_times: list[float] = []
    client_times: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http, Client(url, token) as client:
        for run_id in run_ids[:5]:  # warm both connections and the server's caches
            http.get(f"/api/runs/{run_id}").json()
            client.runs.get(run_id)
        for block in range(calls // BLOCK):
            for i in range(BLOCK):
                run_id = run_ids[(block * BLOCK + i) % len(run_ids)]
                for first in (True, False) if i % 2 else (False, True):  # either goes first by turns
                    t0 = time.perf_counter()
                    if first:
                        response = http.get(f"/api/runs/{run_id}")
                        response.raise_for_status()
                        response.json()
                        raw_times.append(time.perf_counter() - t0)
                    else:
                        client.runs.get(run_id)
                        client_times.append(time.perf_counter() - t0)
    raw, ours = statistics.median(raw_times), statistics.median(client_times)
    return {
        "calls": len(raw_times),
        "raw_httpx_median_ms": round(raw * 1000, 3),
        "client_median_ms": round(ours * 1000, 3),
        "overhead_ratio": round(ours / raw, 3),
        "goal": f"< {GOAL_RATIO}x",
        "met": ours / raw < GOAL_RATIO,
    }


def listing(url: str, token: str, runs: int) -> dict[str, Any]:
    tracemalloc.start()
    seen = 0
    at_tenth = 0
    mark = max(1, runs // 10)
    started = time.monotonic()
    with Client(url, token, timeout=120) as client:
        for _ in client.runs.list(page_size=1000):
            seen += 1
            if seen == mark:
                at_tenth = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
    elapsed = time.monotonic() - started
    current, peak_after = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "runs_listed": seen,
        "seconds": round(elapsed, 1),
        "runs_per_s": round(seen / elapsed, 1),
        "heap_kb_at_10pct": at_tenth // 1024,
        "heap_peak_kb_after_10pct": peak_after // 1024,
        "heap_kb_at_end": current // 1024,
        "flat": peak_after <= max(at_tenth * 2, at_tenth + 8 * 1024 * 1024),
    }


def list_child(url: str, token: str, count: int) -> int:
    """In this (child) process: list ``count`` runs through the iterator, keeping none."""
    seen = 0
    with Client(url, token, timeout=120) as client:
        for _ in client.runs.list(page_size=1000):
            seen += 1
            if seen == count:
                break
    print(seen)
    return 0


def listed_in_a_process(url: str, token: str, count: int) -> dict[str, Any]:
    """``count`` runs listed by a fresh process: how many, how long, its peak RSS."""
    started = time.perf_counter()
    env = {**os.environ, "RL_BENCH_TOKEN": token}
    argv = [sys.executable, "-m", "bench.client_overhead", "--list-child", url, str(count)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"the listing process exited {proc.returncode}")
    return {
        "runs_listed": int(out.decode().strip()),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
    }


def rss_growth(url: str, token: str, runs: int) -> dict[str, Any]:
    small = listed_in_a_process(url, token, max(1, runs // 10))
    full = listed_in_a_process(url, token, runs)
    grew = full["peak_rss_mb"] - small["peak_rss_mb"]
    return {
        "small": small,
        "full": full,
        "peak_rss_ratio": round(full["peak_rss_mb"] / small["peak_rss_mb"], 3),
        "flat": grew <= max(small["peak_rss_mb"] * 0.1, 8.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", dest="json_path", help="also write the summary here")
    parser.add_argument("--list-child", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.list_child:  # the child of rss_growth (token in the environment, not argv)
        return list_child(args.list_child[0], os.environ["RL_BENCH_TOKEN"], int(args.list_child[1]))
    with scratch_database(args.backend, prefix="rl_client") as db:
        settings = Settings(database_url=db.url, data_dir=db.directory / "state")
        filled = fill(settings, args.runs, min(50, args.runs), None, datetime.now(UTC) - timedelta(days=2))
        run_ids: list[str] = filled["run_ids"]
        with RunledgerServer(db.url, db.directory / "state") as server:
            token = server.token("auditor")
            caught_up = wait_caught_up(server.url, token)
            summary = {
                "backend": args.backend,
                "runs": args.runs,
                "projections_caught_up_s": round(caught_up, 1),
                "overhead": overhead(server.url, token, run_ids, args.calls),
                "listing": listing(server.url, token, args.runs),
                "listing_rss": rss_growth(server.url, token, args.runs),
            }
    print(json.dumps(summary, indent=2))
    o = summary["overhead"]
    print(
        f"client overhead: {o['overhead_ratio']}x raw httpx on GET /api/runs/{{id}} "
        f"({o['client_median_ms']} ms vs {o['raw_httpx_median_ms']} ms; goal {o['goal']}: "
        f"{'met' if o['met'] else 'missed'})"
    )
    listed = summary["listing"]
    flat = "flat" if listed["flat"] else "GROWS"
    print(
        f"listed {listed['runs_listed']} runs in {listed['seconds']} s; heap "
        f"{listed['heap_kb_at_10pct']} KiB at 10%, "
        f"peak {listed['heap_peak_kb_after_10pct']} KiB after ({flat})"
    )
    rss = summary["listing_rss"]
    print(
        f"peak RSS listing {rss['small']['runs_listed']} runs: {rss['small']['peak_rss_mb']} MB, "
        f"{rss['full']['runs_listed']} runs: {rss['full']['peak_rss_mb']} MB "
        f"(x{rss['peak_rss_ratio']}, {'flat' if rss['flat'] else 'GROWS'})"
    )
    write_json(args.json_path, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
