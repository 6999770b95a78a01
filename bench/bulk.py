"""Bulk population: the very events ``bench.populate`` writes through the aggregates, written
straight into the events table, several times faster.

    .venv/bin/python -m bench.bulk --backend sqlite --runs 100000 [--workers 2] [--keep DIR]

Each run's facts come from :func:`bench.populate.run_facts` (a pure function of the run's
number), so both paths write the same runs. Every event gets its hash from the product's own
``ledger.hashing.event_hash`` over exactly the fields the aggregate would record, chained to the
previous one, and is stored in the library's own row format (topic, transcoded timestamp,
``originator_topic`` on a stream's first event): ``runledger verify`` passes on the result and
the projections read it as any other event (``tests/integration/test_bench_bulk.py`` checks
that the rows are byte-identical to the aggregate path's). The workflows are registered through
the Ledger service first. Rows are built by ``--workers`` processes (the CPU-bound part: hashes
and JSON) and inserted in run order by this one: ``executemany`` in large transactions on
SQLite, ``COPY`` on PostgreSQL. Nothing else may write to the ledger while it runs (it does
not take the library's table lock).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.common import scratch_database
from bench.populate import (
    EVENTS_PER_RUN,
    WORKER,
    RunFacts,
    file_refs,
    populate,
    register_workflows,
    run_facts,
    run_id_of,
)
from ledger import __version__
from ledger.hashing import event_hash, format_timestamp
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.setup import events_table, postgres_conninfo

Row = tuple[str, int, str, bytes]
#: What a worker needs to know of each workflow's active version: (version, hash, definition).
Active = dict[str, tuple[int, str, dict[str, Any]]]

#: The library stores ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)`` output;
#: for these events (ASCII keys, short ints, floats printed without an exponent) orjson writes
#: the same bytes, several times faster (tests/integration/test_bench_bulk.py compares them).
_encode = orjson.dumps


class RunWriter:
    """Rows of the events of whole runs, exactly as ``Ledger.save`` would store them."""

    def __init__(self, active: Active, lease_seconds: float) -> None:
        self.active = active
        self.lease = timedelta(seconds=lease_seconds)
        self.rows: list[Row] = []

    def _event(
        self,
        stream: str,
        sequence: int,
        kind: str,
        at: datetime,
        stamp: str,
        prev: str | None,
        data: dict[str, Any],
        first: bool = False,
    ) -> str:
        digest = event_hash(
            stream=stream, sequence=sequence, type=f"Run.{kind}", timestamp=stamp, data=data, prev_hash=prev
        )
        state: dict[str, Any] = {
            "timestamp": {"_type_": "datetime_iso", "_data_": at.isoformat()},
            "hash": digest,
            "prev_hash": prev,
        }
        if first:
            state["originator_topic"] = "ledger.domain.run:Run"
        state.update(data)
        self.rows.append((stream, sequence, f"ledger.domain.run:Run.{kind}", _encode(state)))
        return digest

    def add(self, facts: RunFacts, at: datetime) -> None:
        stream, stamp = facts.run_id, format_timestamp(at)
        version, definition_hash, definition = self.active[facts.workflow]
        prev = self._event(
            stream,
            1,
            "Triggered",
            at,
            stamp,
            None,
            {
                "workflow": facts.workflow,
                "version": version,
                "definition_hash": definition_hash,
                "definition": definition,
                "engine_version": __version__,
                "triggered_by": "bench",
                "trigger_kind": "name",
                "parameters": facts.parameters,
                "replay_of": None,
                "resume_of": None,
                "resume_from_task": None,
                "batch_id": None,
                "idempotency_key": None,
                "workspace": "default",
                "reason": None,
            },
            first=True,
        )
        prev = self._event(
            stream,
            2,
            "Labelled",
            at,
            stamp,
            prev,
            {"set": facts.labels, "remove": [], "by": "bench", "reason": None},
        )
        prev = self._event(
            stream,
            3,
            "Started",
            at,
            stamp,
            prev,
            {"worker_id": WORKER, "lease_expires_at": format_timestamp(at + self.lease)},
        )
        sequence = 4
        for t in facts.tasks:
            prev = self._event(
                stream,
                sequence,
                "TaskStarted",
                at,
                stamp,
                prev,
                {"task": t.task, "attempt": 1, "command": None, "host": t.host, "started_at": stamp},
            )
            prev = self._event(
                stream,
                sequence + 1,
                "TaskFinished",
                at,
                stamp,
                prev,
                {
                    "task": t.task,
                    "attempt": 1,
                    "status": "success" if t.exit_code == 0 else "failed",
                    "exit_code": t.exit_code,
                    "command": None,
                    "image": None,
                    "image_hash": None,
                    "executable": None,
                    "executable_sha256": None,
                    "inputs": file_refs("in", t.inputs, 1024),
                    "outputs": file_refs("out", t.outputs, 2048),
                    "output_vars": {},
                    "stdout": None,
                    "stderr": None,
                    "started_at": stamp,
                    "ended_at": stamp,
                    "duration_seconds": t.duration_seconds,
                    "host": t.host,
                    "error": None,
                },
            )
            sequence += 2
        if facts.failed:
            self._event(stream, sequence, "Failed", at, stamp, prev, {"error": "t4 failed", "by": WORKER})
        else:
            self._event(stream, sequence, "Succeeded", at, stamp, prev, {"by": WORKER})


# ---- worker processes -------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


def _init(active: Active, lease_seconds: float, seed: int, base: datetime) -> None:
    _STATE.update(active=active, lease=lease_seconds, seed=seed, base=base)


def _rows(first: int, count: int) -> list[Row]:
    """Rows of runs ``first`` .. ``first + count - 1``; run ``seq`` at ``base + seq`` ms."""
    writer = RunWriter(_STATE["active"], _STATE["lease"])
    base: datetime = _STATE["base"]
    for seq in range(first, first + count):
        writer.add(run_facts(seq, _STATE["seed"]), base + timedelta(milliseconds=seq))
    return writer.rows


# ---- inserting --------------------------------------------------------------------------------
def _sqlite_inserter(settings: Settings) -> tuple[Callable[[list[Row]], None], Callable[[], None]]:
    conn = sqlite3.connect(settings.database.sqlite_path or "", timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")

    def insert(rows: list[Row]) -> None:
        conn.executemany(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
            rows,
        )
        conn.commit()

    return insert, conn.close


def _postgres_inserter(
    settings: Settings, table: str
) -> tuple[Callable[[list[Row]], None], Callable[[], None]]:
    db = settings.database
    conn = psycopg.connect(postgres_conninfo(db))
    statement = sql.SQL("COPY {}.{} (originator_id, originator_version, topic, state) FROM STDIN").format(
        sql.Identifier(db.schema or "public"), sql.Identifier(table)
    )

    def insert(rows: list[Row]) -> None:
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()

    return insert, conn.close


def chunks(start: int, runs: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(start, start + runs, size):
        yield first, min(size, start + runs - first)


def bulk_populate(
    settings: Settings,
    runs: int,
    *,
    start: int = 0,
    seed: int = 7,
    workers: int | None = None,
    chunk: int = 500,
    base: datetime | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write runs ``start`` .. ``start + runs - 1`` (13 events each) straight into the table.

    Run ``seq`` happens at ``base + seq`` milliseconds (default: so that the last run is now).
    Returns counts, seconds and the run ids, like :func:`bench.populate.populate`.
    """
    ledger = Ledger(settings)
    try:
        definitions = register_workflows(ledger)
        table = events_table(ledger.recorder)
    finally:
        ledger.close()
    active: Active = {name: (a.version, a.definition_hash, a.definition) for name, a in definitions.items()}
    if base is None:
        base = datetime.now(UTC) - timedelta(milliseconds=start + runs)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    insert, close = (
        _sqlite_inserter(settings)
        if settings.database.kind == "sqlite"
        else _postgres_inserter(settings, table)
    )
    started = time.perf_counter()
    events = 0
    try:
        if workers <= 1:
            _init(active, settings.lease_seconds, seed, base)
            for first, count in chunks(start, runs, chunk):
                insert(_rows(first, count))
                events += count * EVENTS_PER_RUN
        else:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_init,
                initargs=(active, settings.lease_seconds, seed, base),
            ) as pool:
                pending: deque[Future[list[Row]]] = deque()
                todo = chunks(start, runs, chunk)
                for first, count in todo:  # a bounded window, inserted in run order
                    pending.append(pool.submit(_rows, first, count))
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    rows = pending.popleft().result()
                    for first, count in todo:
                        pending.append(pool.submit(_rows, first, count))
                        break
                    insert(rows)
                    events += len(rows)
                    if progress and events % (100 * chunk * EVENTS_PER_RUN) < len(rows):
                        rate = events / (time.perf_counter() - started)
                        print(f"# bulk: {events} events ({rate:.0f} events/s)", flush=True)
    finally:
        close()
    elapsed = time.perf_counter() - started
    return {
        "runs": runs,
        "events": events,
        "seconds": round(elapsed, 1),
        "events_per_s": round(events / elapsed, 1),
        "workers": workers,
        "run_ids": [run_id_of(seq) for seq in range(start, start + runs)],
    }


def fill(
    settings: Settings, runs: int, service_runs: int, workers: int | None, base: datetime
) -> dict[str, Any]:
    """The first ``service_runs`` runs through the Ledger service (the baseline), the rest
    through the bulk path: the same runs, the same events (``bench.bulk``)."""
    service_runs = min(service_runs, runs)
    ledger = Ledger(settings)
    try:
        service = populate(
            ledger, service_runs, progress=False, clock=lambda seq: base + timedelta(milliseconds=seq)
        )
    finally:
        ledger.close()
    bulk = bulk_populate(settings, runs - service_runs, start=service_runs, base=base, workers=workers)
    events = service["events"] + bulk["events"]
    result = {
        "events": events,
        "seconds": round(service["seconds"] + bulk["seconds"], 1),
        "service": {k: v for k, v in service.items() if k != "run_ids"},
        "bulk": {k: v for k, v in bulk.items() if k != "run_ids"},
        "run_ids": service["run_ids"] + bulk["run_ids"],
    }
    if service["events"] and bulk["events"]:
        result["bulk_vs_service"] = round(bulk["events_per_s"] / service["events_per_s"], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--keep", type=Path, default=None, help="(SQLite) write the ledger into this directory and keep it"
    )
    args = parser.parse_args(argv)
    for backend in args.backend.split(","):
        if args.keep is not None and backend == "sqlite":
            args.keep.mkdir(parents=True, exist_ok=True)
            settings = Settings(
                database_url=f"sqlite:///{args.keep / 'ledger.db'}", data_dir=args.keep / "state"
            )
            done = bulk_populate(settings, args.runs, workers=args.workers)
        else:
            with scratch_database(backend, prefix="rl_bench_bulk") as db:
                settings = Settings(database_url=db.url, data_dir=db.directory / "state")
                done = bulk_populate(settings, args.runs, workers=args.workers)
        print(backend, {k: v for k, v in done.items() if k != "run_ids"}, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
