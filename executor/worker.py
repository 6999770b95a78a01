"""The executor: claims pending runs, executes them, and fails runs whose worker died.

Threads: one dispatcher that claims runs while a slot is free (``concurrency`` runs at once,
each run's ready tasks also running up to ``concurrency`` at a time), one coordinator per
claimed run (see :mod:`executor.dag`, which also renews the run's lease), and a lease
monitor (:mod:`executor.leases`) that records ``worker_lost`` for runs whose lease lapsed
(any worker's, so a run is not left ``running`` when its worker was killed). A failed claim
(the database went away) is retried with backoff, and reported on the process's
:class:`~ledger.loops.Health` until a claim goes through again.

Claiming is optimistic: ``Ledger.claim`` appends ``Run.Started`` at the run's next sequence
number, so when two workers race for one run exactly one write succeeds.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

import structlog

from executor.cleanup import remove_finished_run_dirs
from executor.dag import RunExecution
from executor.evidence import ExecutableHasher
from executor.groups import reap_leftover_groups
from executor.leases import Lapsed, LeaseMonitor
from executor.sandbox import harden_data_dir, task_user
from ledger.domain.run import Run
from ledger.domain.status import RunStatus
from ledger.errors import LedgerError
from ledger.loops import Backoff, Health
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.filestore import FileStore

log = structlog.get_logger()

Candidates = Callable[[int], list[str]]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Executor:
    def __init__(
        self,
        ledger: Ledger,
        files: FileStore,
        settings: Settings,
        *,
        candidates: Candidates,
        lapsed: Lapsed,
        concurrency: int = 1,
        worker_id: str | None = None,
        poll_seconds: float = 0.2,
        health: Health | None = None,
    ) -> None:
        self.ledger = ledger
        self.files = files
        self.settings = settings
        self.candidates = candidates
        self.lapsed = lapsed
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or default_worker_id()
        self.poll_seconds = poll_seconds
        self.hasher = ExecutableHasher()
        self.task_user = task_user(settings)  # a name that is no user fails here, at start
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set when a slot frees up or on stop
        self._threads: list[threading.Thread] = []
        self._active: dict[str, tuple[threading.Thread, RunExecution]] = {}
        self._lock = threading.Lock()
        self.log = log.bind(worker_id=self.worker_id)
        self.health = health if health is not None else Health()
        self.leases = LeaseMonitor(
            ledger, settings, lapsed=lapsed, active=self.active_ids, health=self.health
        )

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._stopping.clear()
        harden_data_dir(self.settings)
        reap_leftover_groups()
        remove_finished_run_dirs(self.ledger)
        thread = threading.Thread(target=self._dispatch, name="executor-dispatcher", daemon=True)
        thread.start()
        self._threads.append(thread)
        self.leases.start()
        self.log.info("executor_started", concurrency=self.concurrency)

    def stop(self, *, drain_seconds: float = 10.0) -> None:
        """Stop claiming; give running runs ``drain_seconds`` to end, then stop and fail them."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.leases.stop()
        for thread, _ in self._snapshot():
            thread.join(drain_seconds)
        for thread, execution in self._snapshot():
            execution.abort("worker stopped")
            thread.join()
        self.log.info("executor_stopped")

    def _snapshot(self) -> list[tuple[threading.Thread, RunExecution]]:
        with self._lock:
            return list(self._active.values())

    @property
    def active_run_ids(self) -> list[str]:
        return self.active_ids()

    def active_ids(self) -> list[str]:
        with self._lock:
            return list(self._active)

    # ---- claiming -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                claimed = self.claim_one() if self._free_slots() > 0 else None
            except Exception as exc:  # the database went away: back off, then try again
                self.log.exception("claim_failed")
                self.health.failed("executor", exc)
                self._stopping.wait(backoff.failed())
                continue
            backoff.succeeded()
            self.health.ok("executor")
            if claimed is None:
                self._wake.wait(self.poll_seconds)

    def _free_slots(self) -> int:
        with self._lock:
            return self.concurrency - len(self._active)

    def claim_one(self) -> Run | None:
        """Claim and start the first claimable candidate; None when there was none."""
        for run_id in self.candidates(max(10, 4 * self.concurrency)):
            if self._stopping.is_set():
                return None
            with self._lock:
                if run_id in self._active:
                    continue
            try:
                run = self.ledger.get_run(run_id)
            except LedgerError:
                continue
            if run.status != RunStatus.PENDING or run.trigger_kind == "openlineage":
                continue
            if run.batch_id is not None and self._batch_full(run):
                continue
            claimed = self.ledger.claim(run_id, worker_id=self.worker_id)
            if claimed is not None:
                self._launch(claimed)
                return claimed
        return None

    def _batch_full(self, run: Run) -> bool:
        """At most ``parallelism`` runs of one batch run at once."""
        assert run.batch_id is not None
        try:
            batch = self.ledger.get_batch(run.batch_id)
        except LedgerError:
            return False
        running = 0
        for other in batch.run_ids:
            if other != run.id and self.ledger.get_run(other).status == RunStatus.RUNNING:
                running += 1
        return running >= batch.parallelism

    def _launch(self, run: Run) -> None:
        execution = RunExecution(
            self.ledger,
            self.files,
            run,
            worker_id=self.worker_id,
            task_slots=self.concurrency,
            hasher=self.hasher,
            user=self.task_user,
        )
        thread = threading.Thread(target=self._run, args=(execution,), name=f"run-{run.id[:8]}", daemon=True)
        with self._lock:
            self._active[run.id] = (thread, execution)
        self.log.info("run_claimed", run_id=run.id)
        thread.start()

    def _run(self, execution: RunExecution) -> None:
        try:
            execution.execute()
        finally:
            with self._lock:
                self._active.pop(execution.run_id, None)
            self._wake.set()

    # ---- lease monitor ------------------------------------------------------------------
    def expire_lapsed(self) -> list[str]:
        """Fail every running run whose lease lapsed with ``worker_lost``; the ones it failed."""
        return self.leases.expire_lapsed()
