"""Rebuild and swap: views built from event 0 into new tables while the old ones keep serving,
then swapped in.

The new tables are filled by :mod:`projections.fill`. On PostgreSQL, from PARALLEL_MIN_EVENTS
on, the runs are split by stream between two processes (this one and a spawned one), each with
a position of its own; then the tables are finished and indexed on two connections, and the
events that came in meanwhile are applied and the tables swapped in one transaction, which
first checks that every part reached the same position.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

from ledger.settings import Settings
from projections import state as st
from projections.db import Connection, connect, max_position, read_events
from projections.fill import die_with_parent, fill_part, fill_part_process
from projections.rebuild_lock import RebuildLock, try_lock
from projections.view import Rebuilder, Tables, View

log = structlog.get_logger()

#: Events per transaction when rebuilding (fewer, larger commits than when following).
REBUILD_BATCH = 5000
#: From this many events on, a rebuild on PostgreSQL splits the runs between two processes.
PARALLEL_MIN_EVENTS = 100_000

#: One table to finish: its view's rebuilder, the new tables, the table's name, its indexes.
_Step = tuple[Rebuilder, Tables, str, list[str]]


@dataclass
class Rebuild:
    """One rebuild of ``views``, all in one pass over the events."""

    settings: Settings
    views: list[View]
    batch: int = REBUILD_BATCH
    #: Processes the fill is split between; None: decided by backend, CPUs and size.
    parts: int | None = None

    def run(self) -> dict[str, Any]:
        """Build and swap in the new tables; returns what was done (views, events, parts,
        seconds filling, indexing, in all). Refused while another rebuild of one of the
        views runs (each view's rebuild lock, :mod:`projections.rebuild_lock`)."""
        conn = connect(self.settings)
        held: list[RebuildLock] = []
        try:
            for view in self.views:
                st.ensure_view(conn, view)
                lock = try_lock(conn, self.settings, view.name)
                if lock is None:
                    raise RuntimeError(f"a rebuild of {view.name!r} is already running")
                held.append(lock)
            return self._fill(conn)
        finally:
            for lock in held:
                lock.release()
            conn.close()

    def _fill(self, conn: Connection) -> dict[str, Any]:
        views = self.views
        started = time.perf_counter()
        old = {}
        building: dict[str, Tables] = {}
        rebuilders: dict[str, Rebuilder] = {}
        indexes: list[str] = []
        for view in views:
            pointer = st.read_pointer(conn, view.name)
            assert pointer is not None
            old[view.name] = pointer.live
            rebuilders[view.name] = rebuilder = view.rebuilder()
            building[view.name], deferred = st.start_building(conn, view, defer_unique=rebuilder.defer_unique)
            indexes += deferred
        upto = max_position(conn)
        parts = self._parts(conn, upto)
        log.info(
            "projection_rebuild_started",
            views=[v.name for v in views],
            tables=[t.prefix for t in building.values()],
            parts=parts,
        )
        if parts > 1:
            self._fill_parts(conn, building, parts, upto)
            position = upto
        else:
            position = fill_part(
                conn, [(rebuilders[v.name], building[v.name]) for v in views], batch=self.batch
            )
        filled = time.perf_counter()
        self._finish(conn, rebuilders, building, indexes, parts)
        indexed = time.perf_counter()
        with conn.transaction():  # the last events and the swap, together
            if parts > 1:
                for tables in building.values():
                    st.merge_parts(conn, tables, parts, upto=upto)
            events = read_events(conn, position, None)
            for view in views:
                tables = building[view.name]
                if events:
                    view.apply(conn, tables, events)
                    st.advance(conn, tables, expected=position, to=events[-1].position)
                generation = int(tables.prefix.rsplit("_g", 1)[1])
                st.swap(conn, view, tables, version=view.schema_version, generation=generation)
        count = (events[-1].position if events else position) + 1
        for view in views:
            _forget(conn, view, old[view.name])
        done = {
            "views": [v.name for v in views],
            "events": count,
            "parts": parts,
            "fill_seconds": round(filled - started, 3),
            "index_seconds": round(indexed - filled, 3),
            "seconds": round(time.perf_counter() - started, 3),
        }
        log.info("projection_rebuilt", tables=[t.prefix for t in building.values()], **done)
        return done

    def _finish(
        self,
        conn: Connection,
        rebuilders: dict[str, Rebuilder],
        building: dict[str, Tables],
        indexes: list[str],
        parts: int,
    ) -> None:
        """Finish each table, then build its held-back indexes; with several parts, tables
        go to as many connections at once (largest first), each built once, outside the swap."""
        steps: list[_Step] = []
        for view in self.views:
            tables = building[view.name]
            for table in view.table_names:
                mine = [s for s in indexes if _index_table(s) == tables(table)]
                steps.append((rebuilders[view.name], tables, table, mine))
        assert sum(len(step[3]) for step in steps) == len(indexes)

        def run(step: _Step, on: Connection) -> None:
            rebuilder, tables, table, statements = step
            rebuilder.finish(on, tables, table, parts=parts)
            for statement in statements:
                on.execute(statement)
            if on.is_postgres:  # statistics for the planner (and a visibility map for
                # index-only scans) now, not whenever autovacuum comes by
                analyze = "ANALYZE" if table in rebuilder.view.analyze_only else "VACUUM (ANALYZE)"
                on.execute(f"{analyze} {tables(table)}")

        if parts <= 1:
            for step in steps:
                run(step, conn)
            return
        steps.sort(key=lambda step: -_table_size(conn, step[1](step[2])))
        local = threading.local()
        opened: list[Connection] = []
        lock = threading.Lock()

        def work(step: _Step) -> None:
            if not hasattr(local, "conn"):
                local.conn = connect(self.settings)
                with lock:
                    opened.append(local.conn)
            run(step, local.conn)

        try:
            with ThreadPoolExecutor(max_workers=parts) as pool:
                for done in [pool.submit(work, step) for step in steps]:
                    done.result()
        finally:
            for each in opened:
                each.close()

    def _parts(self, conn: Connection, upto: int) -> int:
        """How many processes share the fill: ``parts`` if set, else two on PostgreSQL with
        more than one CPU and at least PARALLEL_MIN_EVENTS to read."""
        if self.parts is not None:
            return max(1, self.parts)
        if conn.is_postgres and (os.cpu_count() or 1) > 1 and upto + 1 >= PARALLEL_MIN_EVENTS:
            return 2
        return 1

    def _fill_parts(self, conn: Connection, building: dict[str, Tables], parts: int, upto: int) -> None:
        """Split the runs between ``parts`` processes (this one included), each folding its
        streams' events up to ``upto`` into the same new tables with a position of its own."""
        for tables in building.values():
            st.start_parts(conn, tables, parts)
        work = [(v, building[v.name]) for v in self.views]
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        with ProcessPoolExecutor(
            max_workers=parts - 1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as pool:
            others = [
                pool.submit(fill_part_process, self.settings, work, index, parts, upto, self.batch)
                for index in range(1, parts)
            ]
            fill_part_process(self.settings, work, 0, parts, upto, self.batch)
            for other in others:
                other.result()


def _forget(conn: Connection, view: View, tables: Tables) -> None:
    """Drop the generation the swap replaced (retried while a reader or writer holds it)."""
    for attempt in range(5):
        try:
            st.forget(conn, view, tables)
            return
        except Exception:  # a reader or writer held a lock; try again
            log.warning("view_old_tables_busy", tables=tables.prefix, attempt=attempt)
            time.sleep(0.2 * (attempt + 1))


_INDEX_TABLE = re.compile(r" ON (\S+) \(")


def _index_table(statement: str) -> str:
    """The table a ``CREATE [UNIQUE] INDEX ... ON <table> (...)`` statement indexes."""
    found = _INDEX_TABLE.search(statement)
    if found is None:
        raise ValueError(f"not an index statement: {statement}")
    return found[1]


def _table_size(conn: Connection, table: str) -> int:
    """Bytes on disk of a PostgreSQL table (0 on SQLite): which to index first."""
    if not conn.is_postgres:
        return 0
    row = conn.one("SELECT pg_total_relation_size(to_regclass(?)) AS n", (table,))
    return int(row["n"] or 0) if row is not None else 0
