"""The projection runner: catches each view up from its position, follows new events, and
rebuilds views into fresh tables before swapping them in.

Exactly once: a batch's rows and the view's new position commit in one transaction, and the
position only moves from the value the batch started at (:func:`projections.state.advance`).
On PostgreSQL one runner per view is active at a time (a session advisory lock); the others
stand by. New events are followed by LISTEN/NOTIFY on PostgreSQL (the library NOTIFYs on every
insert) and by a short poll on SQLite.

A rebuild fills new tables through each view's :class:`~projections.view.Rebuilder` (state
carried in memory, rows appended, unique indexes built last), one transaction per batch with
the generation's position. On PostgreSQL, from PARALLEL_MIN_EVENTS on, the runs are split by
stream between two processes (this one and a spawned one), each with a position of its own;
then the tables are finished and indexed on two connections, and the events that came in
meanwhile are applied and the tables swapped in one transaction, which first checks that
every part reached the same position.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import structlog

from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from ledger.store.reader import POSTGRES_CHANNEL
from projections import state as st
from projections.db import Connection, connect, max_position, read_events
from projections.view import Rebuilder, Tables, View
from projections.views.audit import AuditView
from projections.views.lineage import LineageView
from projections.views.stats import StatsView
from projections.views.summaries import SummariesView

log = structlog.get_logger()

DEFAULT_BATCH = 1000
#: Events per transaction when rebuilding (fewer, larger commits than when following).
REBUILD_BATCH = 5000
#: From this many events on, a rebuild on PostgreSQL splits the runs between two processes.
PARALLEL_MIN_EVENTS = 100_000
#: How often a rebuild logs its progress.
PROGRESS_SECONDS = 5.0


def default_views() -> list[View]:
    return [SummariesView(), StatsView(), LineageView(), AuditView()]


def view_named(views: Sequence[View], name: str) -> View:
    for view in views:
        if view.name == name:
            return view
    raise ValueError(f"no projection {name!r}; known: {', '.join(v.name for v in views)}")


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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a rebuild allocates millions of short-lived
    objects (freed by reference counting) while it holds a large carried state, and each
    collection would walk all of it again (measured: decoding alone took 3.5x as long)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fill_part(
    conn: Connection,
    work: list[tuple[Rebuilder, Tables]],
    *,
    batch: int,
    part: tuple[int, int] | None = None,
    upto: int | None = None,
) -> int:
    """Fold events from position 0 into new tables, one transaction per batch with their
    positions (the part's own with ``part``). Without ``upto``: stop before the last,
    incomplete batch, which the swap applies; returns the position reached. With ``part``
    (and ``upto``), each batch is the part's events in the next ``batch * parts`` positions."""
    progress = _Progress(part, upto if upto is not None else max_position(conn))
    with gc_paused():
        if part is None:
            position = _fill_batches(conn, work, batch, upto, progress)
        else:
            assert upto is not None, "a part is read up to a fixed position"
            position = _fill_ranges(conn, work, batch * part[1], part, upto, progress)
        with conn.transaction():
            for rebuilder, tables in work:
                rebuilder.flush(conn, tables)
        return position


class _Progress:
    """Logs how far a fill has read, at most every PROGRESS_SECONDS (a long rebuild's
    progress on the terminal, or in the logs of a server rebuilding a changed view)."""

    def __init__(self, part: tuple[int, int] | None, upto: int) -> None:
        self.part, self.upto = part, upto
        self.started = self.logged = time.monotonic()

    def at(self, position: int) -> None:
        now = time.monotonic()
        if now - self.logged < PROGRESS_SECONDS:
            return
        self.logged = now
        log.info(
            "projection_rebuild_progress",
            part=None if self.part is None else self.part[0],
            position=position,
            upto=self.upto,
            percent=round(100 * (position + 1) / max(1, self.upto + 1), 1),
            events_per_s=round((position + 1) / (now - self.started)),
        )


def _fill_batches(
    conn: Connection, work: list[tuple[Rebuilder, Tables]], batch: int, upto: int | None, progress: _Progress
) -> int:
    position = -1
    while True:
        events = read_events(conn, position, batch, upto=upto)
        if not events or (upto is None and len(events) < batch):
            break
        _apply_fill(conn, work, None, position, events, events[-1].position)
        position = events[-1].position
        progress.at(position)
    if upto is not None and position != upto:  # the rest of the range holds none of ours
        _apply_fill(conn, work, None, position, [], upto)
        position = upto
    return position


def _fill_ranges(
    conn: Connection,
    work: list[tuple[Rebuilder, Tables]],
    span: int,
    part: tuple[int, int],
    upto: int,
    progress: _Progress,
) -> int:
    position = -1
    while position < upto:
        high = min(position + span, upto)
        events = read_events(conn, position, None, upto=high, part=part)
        _apply_fill(conn, work, part, position, events, high)
        position = high
        progress.at(position)
    return position


def _apply_fill(
    conn: Connection,
    work: list[tuple[Rebuilder, Tables]],
    part: tuple[int, int] | None,
    position: int,
    events: list[EventRecord],
    to: int,
) -> None:
    """One batch of a fill and the generation's (or part's) position, in one transaction."""
    # (Projection connections commit without waiting for the WAL flush, see
    # projections.db.connect: a crash keeps batches whole, rows and position together.)
    with conn.transaction():
        for rebuilder, tables in work:
            if events:
                rebuilder.apply(conn, tables, events)
            track = tables if part is None else st.part(tables, part[0])
            st.advance(conn, track, expected=position, to=to)


def _fill_part_process(
    settings: Settings, work: list[tuple[View, Tables]], index: int, parts: int, upto: int, batch: int
) -> None:
    """One part of a split rebuild, on its own connection (run in a worker process)."""
    conn = connect(settings)
    try:
        fill_part(
            conn,
            [(view.rebuilder(), tables) for view, tables in work],
            batch=batch,
            part=(index, parts),
            upto=upto,
        )
    finally:
        conn.close()


def apply_batch(
    conn: Connection, view: View, tables: Tables, expected: int, events: list[EventRecord]
) -> None:
    """Fold ``events`` into ``tables`` and move the position, in one transaction."""
    with conn.transaction():
        view.apply(conn, tables, events)
        st.advance(conn, tables, expected=expected, to=events[-1].position)


class ProjectionRunner:
    def __init__(
        self,
        settings: Settings,
        *,
        views: Sequence[View] | None = None,
        batch_size: int = DEFAULT_BATCH,
        rebuild_batch_size: int = REBUILD_BATCH,
        rebuild_parts: int | None = None,
        poll_interval: float = 0.02,
        linger: float = 0.02,
    ) -> None:
        self.settings = settings
        self.views = list(views) if views is not None else default_views()
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        #: Processes a rebuild is split between; None: decided by backend, CPUs and size.
        self.rebuild_parts = rebuild_parts
        #: What the last rebuild did: views, events, parts, seconds filling, indexing, in all.
        self.last_rebuild: dict[str, Any] | None = None
        self.poll_interval = poll_interval
        #: PostgreSQL: after a notification, how long to wait for more events before a batch
        #: (SQLite polls every ``poll_interval``, which batches the same way).
        self.linger = linger
        self._conn: Connection | None = None
        self._lock_conn: Connection | None = None
        self._owned: set[str] = set()
        self._step_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="projection-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._step_lock:
            for conn in (self._conn, self._lock_conn):
                if conn is not None:
                    conn.close()
            self._conn = self._lock_conn = None
            self._owned.clear()

    close = stop

    def _run(self) -> None:
        log.info("projection_runner_started", views=[v.name for v in self.views])
        while not self._stopping.is_set():
            try:
                moved = self.step()
            except Exception:  # log, reconnect, retry: the runner must live on
                log.exception("projection_batch_failed")
                self._reset_connections()
                self._stopping.wait(0.5)
                continue
            if moved < self.batch_size:  # caught up: the next events are still to come
                self._wait()
        log.info("projection_runner_stopped")

    def _wait(self) -> None:
        listen = self._lock_conn
        if listen is None or not listen.is_postgres or not self._owned:
            self._stopping.wait(self.poll_interval if self._owned else 1.0)
            return
        notified = False
        for _ in listen.raw.notifies(timeout=0.5, stop_after=1):
            notified = True
        if notified and self.linger > 0:
            # Let the events of the next few milliseconds join this batch, and take their
            # notifications now: the batch reads those events.
            self._stopping.wait(self.linger)
            for _ in listen.raw.notifies(timeout=0.001):
                pass

    def _reset_connections(self) -> None:
        with self._step_lock:
            for conn in (self._conn, self._lock_conn):
                if conn is not None:
                    with contextlib.suppress(Exception):  # already broken
                        conn.close()
            self._conn = self._lock_conn = None
            self._owned.clear()

    # ---- connections and ownership --------------------------------------------------------
    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self.settings)
            for view in self.views:
                st.ensure_view(self._conn, view)
        return self._conn

    def _acquire(self) -> list[View]:
        """The views this runner may write: all on SQLite; those whose lock it holds on PG."""
        conn = self._connection()
        if not conn.is_postgres:
            self._owned = {v.name for v in self.views}
            return list(self.views)
        if self._lock_conn is None:
            self._lock_conn = connect(self.settings)
            self._lock_conn.execute(f"LISTEN {POSTGRES_CHANNEL}")
        for view in self.views:
            if view.name in self._owned:
                continue
            key = st.advisory_key(self._lock_conn, f"view:{view.name}")
            row = self._lock_conn.one("SELECT pg_try_advisory_lock(?) AS ok", (key,))
            if row is not None and row["ok"]:
                self._owned.add(view.name)
                log.info("projection_lock_acquired", view=view.name)
        return [v for v in self.views if v.name in self._owned]

    # ---- processing -----------------------------------------------------------------------
    def step(self) -> int:
        """Apply the next batch to every view this runner holds; the number of events read."""
        with self._step_lock:
            owned = self._acquire()
            if not owned:
                return 0
            conn = self._connection()
            live: list[tuple[View, Tables, int]] = []
            pointers = st.live_positions(conn)
            for view in owned:
                pointer, position = pointers[view.name]
                if pointer.schema_version != view.schema_version:
                    log.info(
                        "projection_schema_changed",
                        view=view.name,
                        stored=pointer.schema_version,
                        code=view.schema_version,
                    )
                    self._build([view])
                    pointer, position = st.live_positions(conn)[view.name]
                if position is not None:
                    live.append((view, pointer.live, position))
            if not live:
                return 0
            low = min(position for _, _, position in live)
            events = read_events(conn, low, self.batch_size)
            for view, tables, position in live:
                mine = [e for e in events if e.position > position]
                if mine:
                    apply_batch(conn, view, tables, position, mine)
            return len(events)

    def catch_up(self) -> None:
        """Process events synchronously until every held view has read the newest one."""
        while self.step():
            pass

    # ---- rebuild --------------------------------------------------------------------------
    def rebuild(self, name: str | None = None) -> list[str]:
        """Build the named view (or all, in one pass over the events) from event 0 into new
        tables, then swap them in."""
        targets = [view_named(self.views, name)] if name else list(self.views)
        self._build(targets)
        return [v.name for v in targets]

    def _build(self, views: list[View]) -> None:
        conn = connect(self.settings)
        held: list[int] = []
        try:
            for view in views:
                st.ensure_view(conn, view)
                if conn.is_postgres:
                    key = st.advisory_key(conn, f"rebuild:{view.name}")
                    row = conn.one("SELECT pg_try_advisory_lock(?) AS ok", (key,))
                    if row is None or not row["ok"]:
                        raise RuntimeError(f"a rebuild of {view.name!r} is already running")
                    held.append(key)
            self._fill(conn, views)
        finally:
            # Unlock explicitly: a closed session's locks go only when its backend exits.
            with contextlib.suppress(Exception):
                for key in held:
                    conn.execute("SELECT pg_advisory_unlock(?)", (key,))
            conn.close()

    def _fill(self, conn: Connection, views: list[View]) -> None:
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
            self._fill_parts(conn, views, building, parts, upto)
            position = upto
        else:
            position = fill_part(
                conn, [(rebuilders[v.name], building[v.name]) for v in views], batch=self.rebuild_batch_size
            )
        filled = time.perf_counter()
        self._finish(conn, views, rebuilders, building, indexes, parts)
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
            self._forget(conn, view, old[view.name])
        self.last_rebuild = {
            "views": [v.name for v in views],
            "events": count,
            "parts": parts,
            "fill_seconds": round(filled - started, 3),
            "index_seconds": round(indexed - filled, 3),
            "seconds": round(time.perf_counter() - started, 3),
        }
        log.info("projection_rebuilt", tables=[t.prefix for t in building.values()], **self.last_rebuild)

    def _finish(
        self,
        conn: Connection,
        views: list[View],
        rebuilders: dict[str, Rebuilder],
        building: dict[str, Tables],
        indexes: list[str],
        parts: int,
    ) -> None:
        """Finish each table, then build its held-back indexes; with several parts, tables
        go to as many connections at once (largest first), each built once, outside the swap."""
        steps: list[tuple[Rebuilder, Tables, str, list[str]]] = []
        for view in views:
            tables = building[view.name]
            for table in view.table_names:
                mine = [s for s in indexes if _index_table(s) == tables(table)]
                steps.append((rebuilders[view.name], tables, table, mine))
        assert sum(len(step[3]) for step in steps) == len(indexes)

        def run(step: tuple[Rebuilder, Tables, str, list[str]], on: Connection) -> None:
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

        def work(step: tuple[Rebuilder, Tables, str, list[str]]) -> None:
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
        """How many processes share a rebuild: ``rebuild_parts`` if set, else two on
        PostgreSQL with more than one CPU and at least PARALLEL_MIN_EVENTS to read."""
        if self.rebuild_parts is not None:
            return max(1, self.rebuild_parts)
        if conn.is_postgres and (os.cpu_count() or 1) > 1 and upto + 1 >= PARALLEL_MIN_EVENTS:
            return 2
        return 1

    def _fill_parts(
        self, conn: Connection, views: list[View], building: dict[str, Tables], parts: int, upto: int
    ) -> None:
        """Split the runs between ``parts`` processes (this one included), each folding its
        streams' events up to ``upto`` into the same new tables with a position of its own."""
        for tables in building.values():
            st.start_parts(conn, tables, parts)
        work = [(v, building[v.name]) for v in views]
        context = multiprocessing.get_context("spawn")  # never fork a process with threads
        with ProcessPoolExecutor(max_workers=parts - 1, mp_context=context) as pool:
            others = [
                pool.submit(
                    _fill_part_process, self.settings, work, index, parts, upto, self.rebuild_batch_size
                )
                for index in range(1, parts)
            ]
            _fill_part_process(self.settings, work, 0, parts, upto, self.rebuild_batch_size)
            for other in others:
                other.result()

    @staticmethod
    def _forget(conn: Connection, view: View, tables: Tables) -> None:
        for attempt in range(5):
            try:
                st.forget(conn, view, tables)
                return
            except Exception:  # a reader or writer held a lock; try again
                log.warning("projection_old_tables_busy", tables=tables.prefix, attempt=attempt)
                time.sleep(0.2 * (attempt + 1))

    # ---- status ---------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        conn = connect(self.settings)
        try:
            return projection_status(conn, self.views)
        finally:
            conn.close()


def projection_status(conn: Connection, views: Sequence[View]) -> list[dict[str, Any]]:
    newest = max_position(conn)
    result = []
    for view in views:
        pointer = st.read_pointer(conn, view.name)
        if pointer is None:
            result.append(
                {
                    "name": view.name,
                    "schema_version": view.schema_version,
                    "position": -1,
                    "lag": newest + 1,
                    "state": "live",
                }
            )
            continue
        position = st.position_of(conn, pointer.live)
        position = -1 if position is None else position
        building = pointer.building
        result.append(
            {
                "name": view.name,
                "schema_version": pointer.schema_version,
                "position": position,
                "lag": max(0, newest - position),
                "state": "rebuilding" if building is not None else "live",
            }
        )
    return result
