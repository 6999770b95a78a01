"""Store append: events/s through ``ledger.service.app.Ledger`` against raw inserts of the same rows.

    .venv/bin/python -m bench.store_append [--backend sqlite,postgres] [--threads 1,4]
                                           [--events 1,10] [--saves 1500] [--out FILE]

Ledger side, through the service's real commands:
  * 1 event per save: ``Ledger.trigger`` (one ``Run.Triggered``);
  * 10 events per save: ``Ledger.report`` of 5 tasks (started + finished with exit code,
    duration, 2 input and 2 output hashes, host) on a claimed run.
Raw side: the very rows the ledger stored (same ``originator_id, originator_version, topic,
state``), read back and inserted into a table of the library's layout with plain sqlite3 /
psycopg, one transaction per save, each writer thread on its own connection, at the same
durability (SQLite WAL with the default ``synchronous``, PostgreSQL ``synchronous_commit=on``).
Each configuration is measured ledger first, raw right after, in the same process.
"""

from __future__ import annotations

import argparse
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from bench.common import PG_URL, ScratchDatabase, machine, scratch_database, write_json
from ledger.domain.reports import Report, TaskFinishedReport, TaskStartedReport
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.setup import events_table

Row = tuple[str, int, str, bytes]

WORKFLOW_NAME = "bench_append"
WORKFLOW: dict[str, Any] = {
    "name": WORKFLOW_NAME,
    "params": {
        name: {"type": "string", "required": True}
        for name in ("workflow", "dataset", "git_sha", "seed", "owner")
    },
    "tasks": [{"name": f"t{i}", "command": ["true"]} for i in range(5)],
}
PARAMS = {"workflow": "wf-1", "dataset": "ds-7", "git_sha": "0123456789ab", "seed": "42", "owner": "user-3"}


def task_reports() -> list[Report]:
    """The 10 events of one report: 5 tasks, each started and finished."""
    reports: list[Report] = []
    for i in range(5):
        task = f"t{i}"
        host = f"node-{i}.local"
        reports.append(TaskStartedReport(type="task_started", task=task, attempt=1, host=host))
        reports.append(
            TaskFinishedReport.model_validate(
                {
                    "type": "task_finished",
                    "task": task,
                    "attempt": 1,
                    "exit_code": 0,
                    "duration_seconds": 1.25 + i,
                    "inputs": [{"sha256": f"{i}{j}".ljust(64, "a")} for j in range(2)],
                    "outputs": [{"sha256": f"{i}{j}".ljust(64, "b")} for j in range(2)],
                    "host": host,
                }
            )
        )
    return reports


def run_threads(threads: int, jobs: Sequence[Callable[[], Any]]) -> float:
    """Run ``jobs`` on ``threads`` threads (each takes the next job); the wall time."""
    todo: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} writer(s) failed: {errors[0]!r}") from errors[0]
    return elapsed


# ---- the raw side ----------------------------------------------------------------------------
class RawStore:
    """A table of the library's layout and plain inserts into it, one connection per thread."""

    def __init__(self, db: ScratchDatabase) -> None:
        self.db = db
        self.local = threading.local()
        self.connections: list[Any] = []
        self.lock = threading.Lock()
        if db.backend == "sqlite":
            self._sqlite().execute(
                "CREATE TABLE IF NOT EXISTS raw_events (originator_id TEXT, "
                "originator_version INTEGER, topic TEXT, state BLOB, "
                "PRIMARY KEY (originator_id, originator_version))"
            )
        else:
            conn = self._postgres()
            table = self._pg_table()
            with conn.transaction():
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (originator_id text NOT NULL, "
                        "originator_version bigint NOT NULL, topic text, state bytea, "
                        "notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
                    ).format(table)
                )
                conn.execute(
                    sql.SQL(
                        "CREATE UNIQUE INDEX IF NOT EXISTS raw_events_nid ON {} (notification_id)"
                    ).format(table)
                )

    def _pg_table(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.db.schema), sql.Identifier("raw_events"))

    def _sqlite(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db.url[len("sqlite:///") :], isolation_level=None, check_same_thread=False, timeout=30
        )
        conn.execute("PRAGMA journal_mode=WAL")
        with self.lock:
            self.connections.append(conn)
        return conn

    def _postgres(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(PG_URL)
        conn.execute("SET synchronous_commit = on")
        conn.commit()
        with self.lock:
            self.connections.append(conn)
        return conn

    def durability(self) -> str:
        conn = self.connections[0]
        if self.db.backend == "sqlite":
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            return f"journal_mode={mode} synchronous={sync}"
        row = conn.execute("SHOW synchronous_commit").fetchone()
        conn.commit()
        return f"synchronous_commit={row[0]}"

    def connection(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self._sqlite() if self.db.backend == "sqlite" else self._postgres()
            self.local.conn = conn
        return conn

    def save(self, rows: Sequence[Row]) -> None:
        """One transaction inserting one save's rows."""
        conn = self.connection()
        if self.db.backend == "sqlite":
            conn.execute("BEGIN")
            try:
                conn.executemany("INSERT INTO raw_events VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return
        insert = sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
        ).format(self._pg_table())
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(insert, rows)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()


def stored_rows(ledger: Ledger, db: ScratchDatabase, stream: str, min_version: int) -> list[Row]:
    """The rows the ledger stored for ``stream`` from ``min_version`` on, byte for byte."""
    table = events_table(ledger.recorder)
    with ledger.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        if db.backend == "sqlite":
            cursor.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {table} "
                "WHERE originator_id = ? AND originator_version >= ? ORDER BY originator_version",
                (stream, min_version),
            )
        else:
            cursor.execute(
                sql.SQL(
                    "SELECT originator_id, originator_version, topic, state FROM {}.{} "
                    "WHERE originator_id = %s AND originator_version >= %s ORDER BY originator_version"
                ).format(sql.Identifier(db.schema), sql.Identifier(table)),
                (stream, min_version),
            )
        return [
            (r["originator_id"], int(r["originator_version"]), r["topic"], bytes(r["state"]))
            for r in cursor.fetchall()
        ]


# ---- one configuration -----------------------------------------------------------------------
@dataclass
class Case:
    backend: str
    threads: int
    events_per_save: int
    saves: int
    ledger_s: float = 0.0
    raw_s: float = 0.0
    ledger_cpu_s: float = 0.0  # this process's CPU (all threads) during the timed saves
    raw_cpu_s: float = 0.0
    events: int = 0
    transactions: int = 0

    def result(self) -> dict[str, Any]:
        ledger_eps = self.events / self.ledger_s
        raw_eps = self.events / self.raw_s
        return {
            "backend": self.backend,
            "threads": self.threads,
            "events_per_save": self.events_per_save,
            "saves": self.saves,
            "events": self.events,
            "ledger_events_per_s": round(ledger_eps, 1),
            "raw_events_per_s": round(raw_eps, 1),
            "ratio": round(ledger_eps / raw_eps, 3),
            "ledger_transactions": self.transactions,
            "ledger_cpu_us_per_save": round(self.ledger_cpu_s / self.saves * 1e6),
            "raw_cpu_us_per_save": round(self.raw_cpu_s / self.saves * 1e6),
            "ledger_wall_us_per_save": round(self.ledger_s / self.saves * 1e6),
            "raw_wall_us_per_save": round(self.raw_s / self.saves * 1e6),
        }


def _ledger_round(ledger: Ledger, case: Case, count: int) -> tuple[list[str], int]:
    """``count`` saves through the service; the streams written and their first new version."""
    if case.events_per_save == 1:
        run_ids: list[str] = []
        ids_lock = threading.Lock()

        def trigger() -> None:
            run_id = ledger.trigger(workflow=WORKFLOW_NAME, parameters=PARAMS, principal="bench").run_id
            with ids_lock:
                run_ids.append(run_id)

        groups = ledger.group_commit.groups
        cpu = time.process_time()
        case.ledger_s += run_threads(case.threads, [trigger] * count)
        case.ledger_cpu_s += time.process_time() - cpu
        case.transactions += ledger.group_commit.groups - groups
        return run_ids, 1
    # Setup (not timed): pending runs in big saves, then claimed.
    streams: list[str] = []
    for start in range(0, count, 500):
        size = min(500, count - start)
        streams += ledger.trigger_batch(
            workflow=WORKFLOW_NAME,
            items=[f"ds-{i}" for i in range(size)],
            input_param="dataset",
            parallelism=1,
            parameters=PARAMS,
            principal="bench",
        ).run_ids
    run_threads(4, [partial(ledger.claim, r, worker_id="bench") for r in streams])
    reports = task_reports()
    groups = ledger.group_commit.groups
    cpu = time.process_time()
    case.ledger_s += run_threads(
        case.threads,
        [partial(ledger.report, r, worker_id="bench", reports=reports) for r in streams],
    )
    case.ledger_cpu_s += time.process_time() - cpu
    case.transactions += ledger.group_commit.groups - groups
    return streams, 3


def measure(ledger: Ledger, raw: RawStore, db: ScratchDatabase, case: Case, rounds: int = 3) -> None:
    """Ledger then raw, in ``rounds`` alternating rounds, so drift in the machine's load and
    disk hits both sides alike."""
    per_round = [case.saves // rounds + (1 if i < case.saves % rounds else 0) for i in range(rounds)]
    for count in per_round:
        streams, min_version = _ledger_round(ledger, case, count)
        saves = [stored_rows(ledger, db, stream, min_version) for stream in streams]
        stored = sum(len(rows) for rows in saves)
        assert stored == count * case.events_per_save, "the ledger stored an unexpected count"
        case.events += stored
        cpu = time.process_time()
        case.raw_s += run_threads(case.threads, [partial(raw.save, rows) for rows in saves])
        case.raw_cpu_s += time.process_time() - cpu


def bench_backend(
    backend: str, threads: list[int], events: list[int], saves: dict[int, int]
) -> tuple[list[dict[str, Any]], str]:
    with scratch_database(backend, prefix="rl_bench_append") as db:
        settings = Settings(database_url=db.url, data_dir=db.directory / "state")
        ledger = Ledger(settings)
        raw = RawStore(db)
        try:
            ledger.register_workflow(WORKFLOW, principal="bench")
            # Warm both paths (connections, statement caches) before timing.
            measure(ledger, raw, db, Case(backend, 1, 1, 20), rounds=1)
            measure(ledger, raw, db, Case(backend, 1, 10, 20), rounds=1)
            results = []
            for per_save in events:
                for count in threads:
                    case = Case(backend, count, per_save, saves[per_save])
                    measure(ledger, raw, db, case)
                    results.append(case.result())
                    print(_line(results[-1]), flush=True)
            return results, raw.durability()
        finally:
            raw.close()
            ledger.close()


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['backend']:8} threads={r['threads']} events/save={r['events_per_save']:2} "
        f"ledger={r['ledger_events_per_s']:8.1f} ev/s raw={r['raw_events_per_s']:8.1f} ev/s "
        f"ratio={r['ratio']:.3f} (ledger used {r['ledger_transactions']} transactions "
        f"for {r['saves']} saves; per save: ledger {r['ledger_wall_us_per_save']} us wall, "
        f"{r['ledger_cpu_us_per_save']} us CPU; raw {r['raw_wall_us_per_save']} us wall, "
        f"{r['raw_cpu_us_per_save']} us CPU)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite,postgres")
    parser.add_argument("--threads", default="1,4")
    parser.add_argument("--events", default="1,10")
    parser.add_argument("--saves", type=int, default=1500, help="saves per 1-event case")
    parser.add_argument("--saves10", type=int, default=600, help="saves per 10-event case")
    parser.add_argument("--out", default=None, help="also write the JSON results here")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    events = [int(e) for e in args.events.split(",")]
    summary: dict[str, Any] = {"machine": machine(), "results": [], "durability": {}}
    for backend in args.backend.split(","):
        results, durability = bench_backend(backend, threads, events, {1: args.saves, 10: args.saves10})
        summary["results"] += results
        summary["durability"][backend] = durability
        print(f"# {backend}: raw durability {durability}", flush=True)
    write_json(args.out, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
