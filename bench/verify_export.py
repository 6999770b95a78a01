"""Benchmark: ``verify`` and ``export`` throughput over N events (default 1,000,000).

    .venv/bin/python bench/verify_export.py [--events N] [--backend sqlite,postgres] [--keep DIR]

Builds an SQLite ledger of N events quickly: one real run is recorded through the service
(trigger, claim, task started/finished, succeeded), then its stored rows are cloned under new
run ids with fresh timestamps, each clone re-chained and re-hashed by the contract's rules and
bulk-inserted; for PostgreSQL the same rows are then copied (COPY) into the events table of a
scratch schema the product created. Then, per backend, each in a fresh subprocess (so peak RSS
is the step's own):

- tree: the first Merkle catch-up over all events (done once; later requests are incremental);
- baseline: reading every row and SHA-256 of its stored bytes, no checks;
- verify-1proc / verify: ``verify_ledger`` (hash recomputation, chains, sequences, positions,
  tree, root) in one process, then with the decoding and hashing spread over the CPUs;
- export: ``write_bundle`` of every run (events, summaries, inclusion proofs, signature);
- verify-bundle: the offline check of that bundle.

Prints events/s for each, the verify/baseline ratio and peak RSS, and a JSON line at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import scratch_database  # noqa: E402
from ledger.hashing import format_timestamp  # noqa: E402
from ledger.settings import Settings  # noqa: E402
from ledger.store.decode import canonical, load_json  # noqa: E402
from ledger.store.event_record import decode_row  # noqa: E402

DEFINITION: dict[str, Any] = {
    "name": "bench",
    "params": {"query": {"type": "string", "required": True}, "limit": {"type": "integer", "default": 5}},
    "tasks": [
        {
            "name": "extract",
            "command": ["python3", "-c", "print(1)", "{{ params.query }}"],
            "outputs": ["out.txt"],
        }
    ],
}


def settings_for(directory: Path, url: str | None = None) -> Settings:
    return Settings(
        database_url=url or f"sqlite:///{directory / 'ledger.db'}",
        data_dir=directory / "state",
        log_level="warning",
    )


def copy_to_postgres(directory: Path, url: str) -> int:
    """The SQLite ledger's rows, in position order, into a fresh PostgreSQL ledger."""
    import psycopg

    from ledger.service import Ledger
    from ledger.store.setup import postgres_conninfo

    (directory / "pg").mkdir(exist_ok=True)
    settings = settings_for(directory / "pg", url)
    Ledger(settings).close()  # the product creates its tables, triggers and sequence
    source = sqlite3.connect(directory / "ledger.db")
    table = f'"{settings.database.schema}".runledger_events'
    with psycopg.connect(postgres_conninfo(settings.database)) as pg, pg.cursor() as cursor:
        with cursor.copy(
            f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN"
        ) as copy:
            for row in source.execute(
                "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
            ):
                copy.write_row(row)
        count = int(cursor.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    source.close()
    return count


def template_rows(settings: Settings) -> list[tuple[str, int, str, bytes]]:
    from ledger.domain.reports import ReportBatch
    from ledger.service import Ledger

    ledger = Ledger(settings)
    try:
        ledger.register_workflow(DEFINITION, principal="bench")
        run_id = ledger.trigger(workflow="bench", parameters={"query": "q"}, principal="bench").run_id
        ledger.claim(run_id, worker_id="w1")
        reports = ReportBatch.model_validate(
            {
                "events": [
                    {"type": "task_started", "task": "extract"},
                    {
                        "type": "task_finished",
                        "task": "extract",
                        "exit_code": 0,
                        "output_vars": {"rows": 12},
                        "duration_seconds": 0.25,
                        "outputs": [{"path": "out.txt", "sha256": "ab" * 32, "size": 12}],
                    },
                    {"type": "run_succeeded"},
                ]
            }
        ).events
        ledger.report(run_id, worker_id="w1", reports=list(reports))
    finally:
        ledger.close()
    conn = sqlite3.connect(settings.database.sqlite_path or "")
    rows = conn.execute(
        "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
    ).fetchall()
    conn.close()
    return [(r[0], r[1], r[2], bytes(r[3])) for r in rows if r[0] == run_id]


def build(settings: Settings, events: int) -> int:
    """Clone the template run until ``events`` rows exist; returns the number inserted."""
    template = template_rows(settings)
    conn = sqlite3.connect(settings.database.sqlite_path or "")
    conn.execute("DROP TRIGGER IF EXISTS stored_events_refuse_update")  # not needed: inserts only
    start = datetime(2026, 1, 1, tzinfo=UTC)
    payloads = [json.loads(state) for _, _, _, state in template]
    existing = int(conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
    batch: list[tuple[str, int, str, bytes]] = []
    inserted, run = existing, 0
    while inserted < events:
        run_id = str(uuid.uuid4())
        prev: str | None = None
        for (_, sequence, topic, _), payload in zip(template, payloads, strict=True):
            if inserted >= events:
                break
            at = start + timedelta(microseconds=run * 50 + sequence)
            payload = dict(payload, prev_hash=prev)
            payload["timestamp"] = {"_type_": "datetime_iso", "_data_": at.isoformat()}
            record = decode_row(1, run_id, sequence, topic, json.dumps(payload).encode())
            value, fast = load_json(json.dumps(record.data).encode())
            hashed = {
                "stream": run_id,
                "sequence": sequence,
                "type": record.type,
                "timestamp": format_timestamp(at),
                "data": value,
                "prev_hash": prev,
            }
            payload["hash"] = prev = hashlib.sha256(canonical(hashed, fast=fast)).hexdigest()
            batch.append((run_id, sequence, topic, json.dumps(payload).encode()))
            inserted += 1
        run += 1
        if len(batch) >= 50_000:
            _flush(conn, batch)
    _flush(conn, batch)
    conn.close()
    return inserted


def _flush(conn: sqlite3.Connection, batch: list[tuple[str, int, str, bytes]]) -> None:
    conn.executemany(
        "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        batch,
    )
    conn.commit()
    batch.clear()


def report_size(settings: Settings) -> int:
    """The Merkle tree's size (the ``tree`` step built it)."""
    from ledger.integrity.merkle_store import MerkleStore

    return MerkleStore(settings).catch_up().tree_size


# ---- steps, each run in a child process -------------------------------------------------------
def step(name: str, directory: Path, url: str | None) -> dict[str, Any]:
    settings = settings_for(directory, url)
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if name == "tree":
        from ledger.integrity.merkle_store import MerkleStore

        result["events"] = MerkleStore(settings).catch_up().tree_size
    elif name == "baseline":
        from ledger.store.rawstore import RawStore

        raw = RawStore(settings)
        count = 0
        with raw.connect() as conn:
            for row in raw.rows.scan(conn):
                hashlib.sha256(row.state).digest()
                count += 1
        result["events"] = count
    elif name in ("verify", "verify-1proc"):
        from ledger.integrity.verify import auto_workers, verify_ledger

        workers = 1 if name == "verify-1proc" else auto_workers(report_size(settings))
        report = verify_ledger(settings, workers=workers)
        result["workers"] = workers
        assert report.ok, [str(p) for p in report.problems[:5]]
        result["events"] = report.events_checked
    elif name == "export":
        from ledger.integrity.bundle import write_bundle
        from projections.views.summaries_fold import summary_from_events

        exported = write_bundle(settings, directory / "bundle.tar", summarise=summary_from_events)
        result["events"] = exported.events
        result["bundle_bytes"] = (directory / "bundle.tar").stat().st_size
    elif name == "verify-bundle":
        from ledger.integrity.bundle_verify import verify_bundle

        problems = verify_bundle(directory / "bundle.tar")
        assert not problems, problems[:5]
        import tarfile

        with tarfile.open(directory / "bundle.tar") as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        result["events"] = manifest["counts"]["events"]
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_child(name: str, directory: Path, url: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--step", name, "--dir", str(directory)]
    done = subprocess.run(
        command + (["--url", url] if url else []), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


STEPS = ("tree", "baseline", "verify-1proc", "verify", "export", "verify-bundle")


def run_steps(directory: Path, url: str | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in STEPS:
        outcome = run_child(name, directory, url)
        rate = outcome["events"] / outcome["seconds"] if outcome["seconds"] else 0.0
        results[name] = {
            "seconds": round(outcome["seconds"], 2),
            "workers": outcome.get("workers", 1),
            "events_per_second": round(rate),
            "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
        }
        if "bundle_bytes" in outcome:
            results[name]["bundle_mb"] = round(outcome["bundle_bytes"] / 2**20, 1)
        print(
            f"{name:>14}: {outcome['events']} events in {outcome['seconds']:.2f} s = "
            f"{rate:,.0f} events/s, peak RSS {outcome['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    best = max(results["verify"]["events_per_second"], results["verify-1proc"]["events_per_second"])
    ratio = best / max(1, results["baseline"]["events_per_second"])
    results["verify_vs_baseline"] = round(ratio, 3)
    results["verify_goal_met"] = best >= 100_000
    print(
        f"verify throughput (best of 1 process and {results['verify'].get('workers', 'N')} "
        f"processes) is {ratio:.2f}x the raw read+sha256 baseline "
        f"(goal: >= 100,000 events/s verify; got {best:,})",
        flush=True,
    )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--backend", default="sqlite", help="sqlite, postgres or both, comma separated (default sqlite)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="build in this directory and keep it (an SQLite ledger already there is reused)",
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.dir, args.url)))
        return 0
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="runledger-bench-") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if (directory / "ledger.db").exists():
            with sqlite3.connect(directory / "ledger.db") as conn:
                total = int(conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
            print(f"reusing {total} events in {directory}", flush=True)
        else:
            total = build(settings_for(directory), args.events)
        build_seconds = time.perf_counter() - started
        print(f"built {total} events in {build_seconds:.1f} s", flush=True)
        results: dict[str, Any] = {"events": total, "build_seconds": round(build_seconds, 2)}
        for backend in backends:
            print(f"== {backend}", flush=True)
            if backend == "sqlite":
                results[backend] = run_steps(directory, None)
                continue
            with scratch_database("postgres", prefix="rl_bench_verify") as scratch:
                started = time.perf_counter()
                copied = copy_to_postgres(directory, scratch.url)
                print(
                    f"copied {copied} events to PostgreSQL in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
                results[backend] = run_steps(directory / "pg", scratch.url)
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
