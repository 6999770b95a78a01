"""Worker endpoints: ``POST /api/runs/claim`` and ``POST /api/runs/{run_id}/events``.

A worker is identified by its token, never by the token's name (names are free text: two
tokens may share one, and a name may hold a ``/``): its identity is ``token:<token id>``, or
``token:<token id>/<worker_id>`` when the body names a worker id (several processes may share
a worker token). Token ids are fixed-length UUIDs, so no token's identity can be spelled by
another token with whatever name or worker id. The same identity must report on the run.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response

from api.auth import Principal
from api.deps import RuntimeDep, Worker
from api.models import ClaimedRun, ClaimRequest, ReportAccepted, ReportRequest
from api.scope import NamedWorkspace, ScopedRunId, resolve_workspace

router = APIRouter(prefix="/api/runs", tags=["workers"])
log = structlog.get_logger()


def worker_identity(principal: Principal, worker_id: str | None) -> str:
    assert principal.token_id, "an authenticated principal carries its token's id"
    base = f"token:{principal.token_id}"
    return base if worker_id is None else f"{base}/{worker_id}"


@router.post("/claim", response_model=ClaimedRun, responses={204: {"description": "no run is waiting"}})
def claim(
    runtime: RuntimeDep, principal: Worker, named: NamedWorkspace, body: ClaimRequest | None = None
) -> ClaimedRun | Response:
    """Claim the oldest pending run of the named workspace, or else of any the token covers;
    204 when there is none. Two workers never get the same."""
    worker = worker_identity(principal, body.worker_id if body else None)
    workspaces: tuple[str, ...] | None = None  # (a token of every workspace, none named)
    if named is not None:
        workspaces = (resolve_workspace(runtime, principal, named),)
    elif not principal.every_workspace:
        workspaces = principal.workspaces
    candidates = runtime.views.pending_run_ids(limit=50, workspaces=workspaces)
    run = runtime.ledger.claim_first(candidates, worker_id=worker, workspaces=workspaces)
    if run is None:
        return Response(status_code=204)
    log.info("run_claimed", run_id=run.id, worker_id=worker, token_name=principal.name)
    return ClaimedRun(
        run_id=run.id,
        worker_id=worker,
        lease_expires_at=run.lease_expires_at,
        workflow=run.workflow,
        version=run.workflow_version,
        definition_hash=run.definition_hash,
        definition=run.definition,
        parameters=runtime.ledger.run_parameters(run),
    )


@router.post("/{run_id}/events", response_model=ReportAccepted)
def report(
    run_id: ScopedRunId, body: ReportRequest, runtime: RuntimeDep, principal: Worker
) -> ReportAccepted:
    """Append the worker's task and state events in one atomic write; 409 if stale or foreign."""
    worker = worker_identity(principal, body.worker_id)
    run = runtime.ledger.report(run_id, worker_id=worker, reports=body.events)
    log.info("run_reported", run_id=run_id, worker_id=worker, events=len(body.events))
    return ReportAccepted(run_id=run_id, status=run.status.value, events_appended=len(body.events))
