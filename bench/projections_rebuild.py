"""Projection rebuild throughput and live lag, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.projections_rebuild [--backend sqlite,postgres]
                                                  [--events 1000000] [--lag-samples 300]
                                                  [--per-view | --no-per-view]

Per backend, on a scratch database of its own:
  1. fill the ledger with ``--events`` real events (complete runs of 13 events): the first
     ``--service-runs`` runs through the Ledger service (``bench.populate``), the rest written
     by ``bench.bulk`` (the same events, byte for byte, several times faster); the time is in
     the output's ``populate``;
  2. baseline: a raw scan of the events table (plain SELECT in batches, rows fetched, not
     decoded), then the same scan decoded into ``EventRecord``s (``read_events``);
  3. with ``--per-view`` (the default up to 200,000 events): rebuild each view from event 0
     (``ProjectionRunner.rebuild(name)``), timed per view;
  4. all four in one pass (``rebuild()``, what ``runledger projections rebuild`` does: on
     PostgreSQL from PARALLEL_MIN_EVENTS on split between two processes), and on PostgreSQL
     the same in one process, for comparison; throughput = events / seconds, and its ratio
     to the raw scan; each with the time spent filling and indexing;
  5. live lag: with the runner following (LISTEN/NOTIFY on PostgreSQL, a 20 ms poll on
     SQLite), trigger one run at a time and time from the acknowledged save to the run being
     visible through ``ReadModels.run_summary``: p50/p99.

Goals (issue #4): at least 50,000 events/s for the one-pass rebuild on PostgreSQL, and a live
lag p99 under 100 ms there; the output says ``met`` or ``missed`` for each.

The load average is recorded before and after each backend (other work on the machine skews
every figure).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import tuple_row

from bench.bulk import fill
from bench.common import latency_ms, machine, scratch_database
from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.db import Connection, connect, events_of, read_events
from projections.runner import ProjectionRunner, default_views

SCAN_BATCH = 5000
#: Goals on PostgreSQL: rebuild throughput (events/s) and live lag p99 (ms).
GOAL_REBUILD_EVENTS_PER_S = 50_000
GOAL_LAG_P99_MS = 100.0


def raw_scan(conn: Connection) -> tuple[int, float]:
    """Every stored row fetched in batches of SCAN_BATCH as ``read_events`` fetches them
    (tuples; binary on PostgreSQL), not decoded: (rows, seconds)."""
    events = events_of(conn).events
    column = events.position
    statement = (
        f"SELECT {column} AS n, originator_id, originator_version, topic, state "
        f"FROM {events.table} WHERE {column} > ? ORDER BY {column} LIMIT ?"
    )
    started = time.perf_counter()
    last, rows = 0, 0
    while True:
        if conn.is_postgres:
            with conn.raw.cursor(row_factory=tuple_row) as cursor:
                batch = cursor.execute(conn.sql(statement), (last, SCAN_BATCH), binary=True).fetchall()
        else:
            batch = conn.raw.execute(statement, (last, SCAN_BATCH)).fetchall()
        if not batch:
            break
        rows += len(batch)
        last = batch[-1][0]
    return rows, time.perf_counter() - started


def decoded_scan(conn: Connection) -> tuple[int, float]:
    started = time.perf_counter()
    position, rows = -1, 0
    while True:
        events = read_events(conn, position, SCAN_BATCH)
        if not events:
            break
        rows += len(events)
        position = events[-1].position
    return rows, time.perf_counter() - started


def measure_lag(ledger: Ledger, settings: Settings, samples: int) -> dict[str, Any]:
    runner = ProjectionRunner(settings)
    views = ReadModels(settings)
    runner.start()
    try:
        deadline = time.monotonic() + 600
        while any(s["lag"] for s in views.status()) and time.monotonic() < deadline:
            time.sleep(0.1)
        lags: list[float] = []
        for i in range(samples):
            run_id = ledger.trigger(
                workflow="wf-0",
                parameters={
                    "workflow": "wf-0",
                    "dataset": "ds-lag",
                    "git_sha": f"{i:012d}",
                    "seed": str(i),
                    "owner": "lag",
                },
                principal="bench",
            ).run_id
            acked = time.perf_counter()
            while views.run_summary(run_id) is None:
                time.sleep(0.0005)
            lags.append(time.perf_counter() - acked)
            time.sleep(0.01)
        return latency_ms(lags)
    finally:
        runner.stop()
        views.close()


def timed_rebuild(runner: ProjectionRunner, name: str | None, total: int) -> dict[str, Any]:
    started = time.perf_counter()
    runner.rebuild(name)
    seconds = time.perf_counter() - started
    facts = runner.last_rebuild or {}
    return {
        "seconds": round(seconds, 2),
        "events_per_s": round(total / seconds),
        "parts": facts.get("parts"),
        "fill_seconds": facts.get("fill_seconds"),
        "index_seconds": facts.get("index_seconds"),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_backend(
    backend: str, events: int, lag_samples: int, per_view: bool, service_runs: int
) -> dict[str, Any]:
    with scratch_database(backend, prefix="rl_bench_proj") as scratch:
        settings = Settings(database_url=scratch.url, data_dir=scratch.directory / "state")
        base = datetime.now(UTC) - timedelta(milliseconds=events)
        filled = fill(settings, max(1, events // 13), service_runs, None, base)
        ledger = Ledger(settings)
        try:
            total = ledger.reader.max_position() + 1
            load_before = load_average()
            conn = connect(settings)
            try:
                raw_rows, raw_seconds = raw_scan(conn)
                dec_rows, dec_seconds = decoded_scan(conn)
            finally:
                conn.close()
            runner = ProjectionRunner(settings, batch_size=1000)
            per_view_results: dict[str, Any] = {}
            if per_view:
                for view in default_views():
                    per_view_results[view.name] = timed_rebuild(runner, view.name, total)
            # What `runledger projections rebuild` does: one pass, all views.
            one_pass = timed_rebuild(runner, None, total)
            raw_eps = raw_rows / raw_seconds
            result: dict[str, Any] = {
                "backend": backend,
                "events": total,
                "populate": {k: v for k, v in filled.items() if k != "run_ids"},
                "load_average_before": load_before,
                "baseline_raw_scan_events_per_s": round(raw_eps),
                "baseline_decoded_scan_events_per_s": round(dec_rows / dec_seconds),
                "rebuild_all_views_one_pass": one_pass,
                "rebuild_all_views_one_pass_seconds": one_pass["seconds"],
                "rebuild_all_views_one_pass_events_per_s": one_pass["events_per_s"],
                "ratio_one_pass_to_raw_scan": round(one_pass["events_per_s"] / raw_eps, 3),
            }
            if one_pass["parts"] != 1:
                single = ProjectionRunner(settings, rebuild_parts=1)
                result["rebuild_all_views_one_process"] = timed_rebuild(single, None, total)
            if per_view_results:
                slowest = max(v["seconds"] for v in per_view_results.values())
                result |= {
                    "rebuild_per_view": per_view_results,
                    "rebuild_views_one_by_one_seconds": round(
                        sum(v["seconds"] for v in per_view_results.values()), 2
                    ),
                    "slowest_view_events_per_s": round(total / slowest),
                    "ratio_slowest_view_to_raw_scan": round(total / slowest / raw_eps, 3),
                }
            result["load_average_after_rebuilds"] = load_average()
            result["live_lag"] = lag = measure_lag(ledger, settings, lag_samples)
            if backend == "postgres":
                result["goals"] = {
                    "rebuild_events_per_s": _goal(
                        one_pass["events_per_s"] >= GOAL_REBUILD_EVENTS_PER_S,
                        f">= {GOAL_REBUILD_EVENTS_PER_S}",
                    ),
                    "live_lag_p99_ms": _goal(lag["p99_ms"] < GOAL_LAG_P99_MS, f"< {GOAL_LAG_P99_MS}"),
                }
        finally:
            ledger.close()
    return result


def _goal(met: bool, goal: str) -> str:
    return f"{goal}: {'met' if met else 'missed'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lag-samples", type=int, default=300)
    parser.add_argument(
        "--per-view",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also rebuild each view alone (default: up to 200,000 events)",
    )
    parser.add_argument(
        "--service-runs",
        type=int,
        default=1000,
        help="runs written through the Ledger service before the bulk path",
    )
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    per_view = args.per_view if args.per_view is not None else args.events <= 200_000
    results = {
        "machine": machine(),
        "results": [
            bench_backend(b.strip(), args.events, args.lag_samples, per_view, args.service_runs)
            for b in args.backend.split(",")
            if b.strip()
        ],
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
