"""Group commit: writes that arrive together share one transaction.

The first writer to arrive leads: it inserts every write queued so far in one
``insert_events`` call (one transaction, one table lock on PostgreSQL), then hands the lead to
the oldest write still waiting. If the combined insert violates a uniqueness constraint (an
optimistic-concurrency conflict) or one write's ``expect`` (a stale read, see
:mod:`ledger.recorders`), each write is retried alone so only the loser fails.

Commit delay, as PostgreSQL's ``commit_delay`` with ``commit_siblings``: commands announce,
from their first read to their save, that a write is coming (:meth:`coming`). A leader that
knows of writes on their way waits for them, at most ``max_delay`` seconds, so that they
share its transaction instead of each queueing behind the next commit. A writer with no
others on their way commits at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent


@dataclass(eq=False)
class _Write:
    events: Sequence[StoredEvent]
    expect: Mapping[str, int] | None = None
    done: threading.Event | None = None  # made only for a write that has to wait
    leads: bool = False
    ids: Sequence[int] | None = None
    error: BaseException | None = None


class GroupCommitRecorder:
    def __init__(self, recorder: ApplicationRecorder, *, max_events: int = 2000,
                 max_delay: float = 0.002) -> None:
        self.recorder = recorder
        self.max_events = max_events
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: list[_Write] = []
        self._busy = False
        self._coming = 0  # announced writers that have not queued their write yet
        self._local = threading.local()
        self.groups = 0  # how many transactions were used, for tests and metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recorder, name)

    @contextmanager
    def coming(self) -> Iterator[None]:
        """Announce a write from this thread for the span of a command (re-entrant: a
        thread is counted once, and only until its first write is queued)."""
        if getattr(self._local, "announced", False):
            yield
            return
        self._local.announced, self._local.queued = True, False
        with self._lock:
            self._coming += 1
        try:
            yield
        finally:
            self._local.announced = False
            if not self._local.queued:  # it did not write after all
                with self._lock:
                    self._coming -= 1
                    self._arrived.notify_all()

    def insert_events(self, stored_events: Sequence[StoredEvent], *,
                      expect: Mapping[str, int] | None = None,
                      **kwargs: Any) -> Sequence[int] | None:
        if any(value is not None for value in kwargs.values()):  # tracking: not ours to merge
            return self.recorder.insert_events(stored_events, **with_expect(expect, kwargs))
        write = _Write(stored_events, expect)
        counted = getattr(self._local, "announced", False) and not self._local.queued
        if counted:
            self._local.queued = True
        with self._lock:
            if counted:
                self._coming -= 1
            self._queue.append(write)
            if not self._busy:
                self._busy = True
                write.leads = True
            else:
                write.done = threading.Event()
            self._arrived.notify_all()
        while not write.leads:
            assert write.done is not None
            write.done.wait()
            if write.ids is not None or write.error is not None:
                break
        else:
            self._lead()
        if write.error is not None:
            raise write.error
        return write.ids

    def _lead(self) -> None:
        with self._lock:
            self._wait_for_writes_on_their_way()
            group: list[_Write] = []
            count = 0
            while self._queue and (not group or count + len(self._queue[0].events) <= self.max_events):
                write = self._queue.pop(0)
                group.append(write)
                count += len(write.events)
        try:
            self._flush(group)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    assert successor.done is not None  # it arrived while a write was busy
                    successor.done.set()
                else:
                    self._busy = False
            for write in group:
                if write.done is not None:  # (the leader's own write never waited)
                    write.done.set()

    def _wait_for_writes_on_their_way(self) -> None:
        """With the lock held: until no announced write is still on its way, at most
        ``max_delay``."""
        if self._coming <= 0 or self.max_delay <= 0:
            return
        deadline = time.monotonic() + self.max_delay
        while self._coming > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.wait(remaining)

    def _flush(self, group: list[_Write]) -> None:
        self.groups += 1
        combined = [event for write in group for event in write.events]
        expect: dict[str, int] = {}
        for write in group:  # every write's expectation must hold: the strictest of each
            for stream, version in (write.expect or {}).items():
                expect[stream] = min(version, expect.get(stream, version))
        try:
            ids = self.recorder.insert_events(combined, **with_expect(expect, {}))
        except IntegrityError as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for write in group:
                self.groups += 1
                try:
                    write.ids = self.recorder.insert_events(
                        write.events, **with_expect(write.expect, {}))
                except BaseException as single_exc:
                    write.error = single_exc
            return
        except BaseException as exc:
            for write in group:
                write.error = exc
            return
        offset = 0
        for write in group:
            write.ids = list(ids[offset : offset + len(write.events)]) if ids else []
            offset += len(write.events)


def with_expect(expect: Mapping[str, int] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` plus ``expect`` when there is one (the library's own recorders, behind
    tracking writes, take no ``expect``)."""
    return kwargs | {"expect": expect} if expect else kwargs
