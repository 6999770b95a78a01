"""Filling a rebuild's new tables from event 0, through each view's
:class:`~projections.view.Rebuilder` (state carried in memory, rows appended), one transaction
per batch with the generation's position; or, for one part of a rebuild split between
processes, the part's streams over bounded position ranges, with the part's own position.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import threading
import time
from collections.abc import Iterator

import structlog

from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from projections import state as st
from projections.db import Connection, connect, max_position, read_events
from projections.view import Rebuilder, Tables, View

log = structlog.get_logger()

#: How often a fill logs its progress.
PROGRESS_SECONDS = 5.0


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


#: Linux prctl option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """A rebuild part's process initializer: never outlive the rebuild that spawned it (a
    SIGKILLed rebuild left its parts writing for a minute). On Linux the kernel sends SIGKILL
    when the parent goes (``PR_SET_PDEATHSIG``); everywhere, a thread checks every half second
    that the parent is still ours and ends the process if not."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def fill_part_process(
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
    # (The read side's connections commit without waiting for the WAL flush, see
    # projections.db.connect: a crash keeps batches whole, rows and position together.)
    with conn.transaction():
        for rebuilder, tables in work:
            if events:
                rebuilder.apply(conn, tables, events)
            track = tables if part is None else st.part(tables, part[0])
            st.advance(conn, track, expected=position, to=to)
