"""Group commit: writes that arrive together share one transaction.

The first writer to arrive leads: it inserts every write queued so far in one
``insert_events`` call (one transaction, one table lock on PostgreSQL), then hands the lead to
the oldest write still waiting. If the combined insert violates a uniqueness constraint (an
optimistic-concurrency conflict) or one write's ``expect`` (a stale read, see
:mod:`ledger.store.recorders`), each write is retried alone so only the loser fails.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
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
    def __init__(self, recorder: ApplicationRecorder, *, max_events: int = 2000) -> None:
        self.recorder = recorder
        self.max_events = max_events
        self._lock = threading.Lock()
        self._queue: list[_Write] = []
        self._busy = False
        self.groups = 0  # how many transactions were used, for tests and metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recorder, name)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, expect: Mapping[str, int] | None = None, **kwargs: Any
    ) -> Sequence[int] | None:
        if any(value is not None for value in kwargs.values()):  # tracking: not ours to merge
            return self.recorder.insert_events(stored_events, **with_expect(expect, kwargs))
        write = _Write(stored_events, expect)
        with self._lock:
            self._queue.append(write)
            if not self._busy:
                self._busy = True
                write.leads = True
            else:
                write.done = threading.Event()
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
                    write.ids = self.recorder.insert_events(write.events, **with_expect(write.expect, {}))
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
