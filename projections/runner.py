"""The projection runner: catches each view up from its position and follows new events
(rebuilding a view into new tables, then swapping them in, is :mod:`projections.rebuild`).

Exactly once: a batch's rows and the view's new position commit in one transaction, and the
position only moves from the value the batch started at (:func:`projections.state.advance`);
every view's batch of one step shares that transaction (:func:`apply_batches`). On
PostgreSQL one runner per view is active at a time (a session advisory lock); the others
stand by. New events are followed by LISTEN/NOTIFY on PostgreSQL (the library NOTIFYs on every
insert) and by a short poll on SQLite. A view whose schema version changed in the code is
rebuilt before it is followed on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import structlog

from ledger.loops import Backoff, Health
from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from ledger.store.reader import POSTGRES_CHANNEL
from projections import state as st
from projections.db import Connection, connect, read_events
from projections.rebuild import REBUILD_BATCH, Rebuild
from projections.rebuild_lock import try_lock
from projections.view import Tables, View
from projections.views import default_views, view_named

__all__ = ["DEFAULT_BATCH", "ProjectionRunner", "apply_batch", "apply_batches", "default_views", "view_named"]

log = structlog.get_logger()

DEFAULT_BATCH = 1000


def apply_batch(
    conn: Connection, view: View, tables: Tables, expected: int, events: list[EventRecord]
) -> None:
    """Fold ``events`` into ``tables`` and move the position, in one transaction."""
    with conn.transaction():
        view.apply(conn, tables, events)
        st.advance(conn, tables, expected=expected, to=events[-1].position)


def apply_batches(conn: Connection, batches: list[tuple[View, Tables, int, list[EventRecord]]]) -> None:
    """Every view's batch and new position in one transaction: a step costs one commit (on
    PostgreSQL one BEGIN and one COMMIT round trip) instead of one per view, and each view's
    rows still commit with its position. Should that transaction fail (a view refusing its
    batch, another runner's position), each view is applied in a transaction of its own, so
    one view's fault holds back no other view (the fault is raised once the rest are done)."""
    if len(batches) > 1:
        try:
            with conn.transaction():
                for view, tables, expected, events in batches:
                    view.apply(conn, tables, events)
                    st.advance(conn, tables, expected=expected, to=events[-1].position)
            return
        except Exception:  # every view's rows were rolled back with the positions
            log.warning("projection_batch_split", views=[b[0].name for b in batches], exc_info=True)
    failed: Exception | None = None
    for view, tables, expected, events in batches:
        try:
            apply_batch(conn, view, tables, expected, events)
        except Exception as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


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
        health: Health | None = None,
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
        #: Where this runner reports itself down (a step failed) and up again, for ``/readyz``.
        self.health = health if health is not None else Health()

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
        backoff = Backoff()
        while not self._stopping.is_set():
            try:  # waiting too: a LISTEN connection's notifies() raises when the database goes
                moved = self.step()
                if moved < self.batch_size:  # caught up: the next events are still to come
                    self._wait()
            except Exception as exc:  # log, reconnect, retry: the runner must live on
                log.exception("projection_batch_failed")
                self.health.failed("projections", exc)
                self._reset_connections()
                self._stopping.wait(backoff.failed())
                continue
            backoff.succeeded()
            self.health.ok("projections")
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
            if not self._owned:  # (again after a reconnect) clear what a dead rebuild left
                for view in self.views:
                    self._abandoned(conn, view)
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
                log.info("view_lock_acquired", view=view.name)
                self._abandoned(conn, view)
        return [v for v in self.views if v.name in self._owned]

    def _abandoned(self, conn: Connection, view: View) -> None:
        """A view marked ``rebuilding`` with no rebuild holding its rebuild lock was left by a
        rebuild that died (SIGKILL): mark it as not rebuilding (and drop the half-built
        tables), so its state does not say ``rebuilding`` until the next rebuild. Both
        backends (:mod:`projections.rebuild_lock`)."""
        pointer = st.read_pointer(conn, view.name)
        if pointer is None or pointer.building is None:
            return
        lock = try_lock(conn, self.settings, view.name)
        if lock is None:
            return  # a rebuild is running now
        try:
            dropped = st.abandon_building(conn, view)
        finally:
            lock.release()
        if dropped is not None:
            log.info("abandoned_rebuild_cleared", view=view.name, tables=dropped.prefix)

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
                        "view_schema_changed",
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
            batches = [(v, t, p, [e for e in events if e.position > p]) for v, t, p in live]
            apply_batches(conn, [b for b in batches if b[3]])
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
        """One pass over the events; but a view a rebuild must not split by stream
        (``View.splittable``) gets an unsplit pass of its own when the others may be split."""
        whole = [v for v in views if not v.splittable]
        split = [v for v in views if v.splittable]
        if not whole or self.rebuild_parts == 1:
            passes = [(views, self.rebuild_parts)]
        elif not split:
            passes = [(whole, 1)]
        else:
            passes = [(split, self.rebuild_parts), (whole, 1)]
        done = [
            Rebuild(self.settings, part, batch=self.rebuild_batch_size, parts=n).run() for part, n in passes
        ]
        self.last_rebuild = done[0] | {"views": [name for d in done for name in d["views"]]}

    # ---- status ---------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        conn = connect(self.settings)
        try:
            return st.view_status(conn, self.views)
        finally:
            conn.close()
