"""Runs as this process last saved them, for the next command on the same run.

A worker reports a run's tasks one request after another, and each report is a command on
the run. The repository's cache would first ask the store for events newer than its copy
(one query per command, the fast-forward). Commands here start from the copy this process
saved last instead, and stay correct without that query because the store is the judge:

* if another process wrote the run since, the save of the command's events collides with
  the store's ``(stream, version)`` key and raises ``IntegrityError``;
* if the stale copy made the command refuse the request, the refusal may be wrong.

Either way the command runs again on the run read from the store, and only that second
outcome counts (:meth:`ledger.service.base.LedgerBase._command`). Entries are replaced, never changed
in place (a kept run is frozen: a command on it raises), so a copy is never taken of a
half-applied run.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections import OrderedDict

from ledger.domain.run import Run
from ledger.domain.status import RunStatus


class RunCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._lock = threading.Lock()

    def copy_of(self, run_id: str) -> Run | None:
        """A private copy of the run as last saved here, or None."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                return None
            self._runs.move_to_end(run_id)
        return copy.deepcopy(run)

    def workspace_of(self, run_id: str) -> str | None:
        """The workspace of the run as saved here, or None (a run never changes workspace)."""
        with self._lock:
            run = self._runs.get(run_id)
        return None if run is None else run.workspace

    def status_of(self, run_id: str) -> RunStatus | None:
        """The status of the run as last saved here, without a copy (entries are never
        changed in place), or None."""
        with self._lock:
            run = self._runs.get(run_id)
        return None if run is None else run.status

    def saved(self, run: Run) -> None:
        """Keep ``run`` just after its events were stored. It is frozen: the caller and
        the cache share it, to read; commands run on :meth:`copy_of`."""
        if self.size <= 0:
            return
        run.freeze()
        with self._lock:
            current = self._runs.get(run.id)
            if current is not None and current.version > run.version:
                return  # a later save of this process got here first
            self._runs[run.id] = run
            self._runs.move_to_end(run.id)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)


class TriggeredHere:
    """Runs this process triggered that may still wait for a worker, oldest first.

    Claims take their candidates from the runs read model, which follows the ledger a few
    milliseconds behind; a worker asking right after a trigger would be told there is
    nothing to do. These ids are offered after the read model's, until claimed or found
    no longer pending. (Batch runs are left to the read model: it knows their parallelism.)
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, run_id: str) -> None:
        with self._lock:
            self._ids[run_id] = None
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._ids.pop(run_id, None)

    def oldest(self, limit: int) -> list[str]:
        with self._lock:
            return list(itertools.islice(self._ids, limit))
