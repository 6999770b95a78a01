"""What workers do to runs: :class:`WorkerCommands` (claim, renew the lease, report task and
run events, fail a run, and the lease monitor's expiry) and :func:`apply_report`, which turns
one report into the run's command.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger.domain.definition import Approval
from ledger.domain.reports import (
    GateReachedReport,
    Report,
    TaskFinishedReport,
    TaskReusedReport,
    TaskStartedReport,
)
from ledger.domain.run import Run
from ledger.domain.status import RunStatus
from ledger.errors import Conflict, InvalidRequest, NotFound
from ledger.hashing import format_timestamp
from ledger.service.base import LedgerBase


class WorkerCommands(LedgerBase):
    """The commands of the executor and of remote workers through the API."""

    def lease_expiry(self, at: datetime) -> str:
        return format_timestamp(at + timedelta(seconds=self.settings.lease_seconds))

    def claim(self, run_id: str, *, worker_id: str, workspaces: Collection[str] | None = None) -> Run | None:
        """Start ``run_id`` for ``worker_id``; None when another worker claimed it first, or
        when the run is in none of ``workspaces`` (None: any workspace)."""
        known = self.run_cache.status_of(run_id)
        if known is not None and known != RunStatus.PENDING:
            self.triggered_here.discard(run_id)
            return None  # no transition leads back to pending: no need to ask the store

        def claim(run: Run) -> None:
            if run.status != RunStatus.PENDING or run.trigger_kind == "openlineage":
                # (an OpenLineage run is executed elsewhere: never claimed)
                raise Conflict(f"run {run.id} is not pending")
            if workspaces is not None and run.workspace not in workspaces:
                raise NotFound(f"no run {run.id!r}")  # (a worker claims only its workspaces' runs)
            at = self.clock()
            run.claim(worker_id=worker_id, lease_expires_at=self.lease_expiry(at), at=at)

        try:
            return self._command(run_id, claim)
        except (NotFound, Conflict):
            return None
        finally:
            self.triggered_here.discard(run_id)

    def claim_first(
        self, candidates: Sequence[str], *, worker_id: str, workspaces: Collection[str] | None = None
    ) -> Run | None:
        """Claim the first of ``candidates`` still pending, then of the runs this process
        triggered that the candidates (from a read model, a little behind) do not list yet;
        only runs of ``workspaces`` (None: any)."""
        listed = set(candidates)
        extra = [r for r in self.triggered_here.oldest(len(listed) + 50) if r not in listed]
        for run_id in [*candidates, *extra]:
            if workspaces is not None and self.run_cache.workspace_of(run_id) not in (None, *workspaces):
                continue  # (another workspace's run this process triggered: not even a read)
            run = self.claim(run_id, worker_id=worker_id, workspaces=workspaces)
            if run is not None:
                return run
        return None

    def renew_lease(self, run_id: str, *, worker_id: str) -> Run:
        def renew(run: Run) -> None:
            at = self.clock()
            run.renew_lease(worker_id=worker_id, lease_expires_at=self.lease_expiry(at), at=at)

        return self._command(run_id, renew)

    def report(self, run_id: str, *, worker_id: str, reports: Sequence[Report]) -> Run:
        """Append a worker's task and state events to its run in one atomic write."""

        def apply(run: Run) -> None:
            at = self.clock()
            lease_expires_at = self.lease_expiry(at)
            for report in reports:
                apply_report(run, report, worker_id=worker_id, at=at, lease_expires_at=lease_expires_at)

        return self._command(run_id, apply)

    def expire_lease(self, run_id: str) -> bool:
        """Fail a running run whose worker's lease lapsed, with error ``worker_lost``."""
        run = self.get_run(run_id)
        at = self.clock()
        if not run.lease_lapsed(format_timestamp(at)):
            return False
        run.fail(error="worker_lost", by="system:lease-monitor", at=at)
        try:
            self.save(run)
        except IntegrityError:
            return False
        return True

    def fail_run(self, run_id: str, *, error: str, by: str, worker_id: str | None = None) -> Run:
        run = self.get_run(run_id)
        run.fail(error=error, by=by, worker_id=worker_id, at=self.clock())
        self._save(run)
        return run


def apply_report(run: Run, report: Report, *, worker_id: str, at: datetime, lease_expires_at: str) -> None:
    if isinstance(report, TaskStartedReport):
        run.start_task(
            worker_id=worker_id,
            task=report.task,
            attempt=report.attempt,
            command=report.command,
            host=report.host,
            started_at=report.started_at or format_timestamp(at),
            at=at,
        )
    elif isinstance(report, TaskFinishedReport):
        run.finish_task(worker_id=worker_id, at=at, **report.evidence(at))
    elif isinstance(report, TaskReusedReport):
        run.reuse_task(
            worker_id=worker_id,
            task=report.task,
            source_run_id=report.source_run_id,
            outputs=[o.model_dump() for o in report.outputs],
            output_vars=report.output_vars,
            at=at,
        )
    elif isinstance(report, GateReachedReport):
        run.reach_gate(worker_id=worker_id, task=report.task, approval=gate_approval(run, report.task), at=at)
    elif report.type == "run_succeeded":
        run.succeed(worker_id=worker_id, at=at)
    elif report.type == "run_failed":
        run.fail(error=report.error or "failed", by=worker_id, worker_id=worker_id, at=at)
    elif report.type == "lease_renewed":
        run.renew_lease(worker_id=worker_id, lease_expires_at=lease_expires_at, at=at)
    else:  # pragma: no cover - the Report union is closed
        raise InvalidRequest(f"unknown report type {report.type!r}")


def gate_approval(run: Run, task: str) -> dict[str, Any]:
    """The ``approval`` of approval gate ``task`` in the run's definition, defaults filled in."""
    for spec in run.definition.get("tasks", []):
        if spec.get("name") == task and spec.get("approval") is not None:
            return Approval.model_validate(spec["approval"]).model_dump()
    raise InvalidRequest(f"task {task!r} of run {run.id} is not an approval gate")
