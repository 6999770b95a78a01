"""``/api/runs/{id}/expunge`` and ``/api/runs/{id}/hold`` (SPEC section 11): erasure and legal
holds. Both record ledger events (``Run.Expunged``, ``Run.HoldPlaced``, ``Run.HoldReleased``);
the reason they carry is checked by :func:`ledger.reasons.check_reason`."""

from __future__ import annotations

import structlog
from fastapi import APIRouter

from api.deps import Admin, RuntimeDep
from api.models import ExpungePublic, ExpungeRequest, HoldPublic, HoldRequest
from api.scope import ScopedRunId
from ledger.reasons import check_reason

router = APIRouter(prefix="/api/runs", tags=["runs"])
log = structlog.get_logger()


@router.post("/{run_id}/expunge", response_model=ExpungePublic)
def expunge(
    run_id: ScopedRunId, runtime: RuntimeDep, principal: Admin, body: ExpungeRequest | None = None
) -> ExpungePublic:
    """Destroy the run's key, delete its files no other live run references and its working
    directory, and record ``Run.Expunged``. 409 for a held or unfinished run; a run expunged
    already answers what the first expunge did (``recorded: false``) and writes nothing."""
    reason = check_reason(
        body.reason if body else None, required=runtime.settings.require_reason, action="expunge"
    )
    done = runtime.ledger.expunge(run_id, principal=principal.name, reason=reason)
    log.info("run_expunge_answered", run_id=run_id, by=principal.name, recorded=done.recorded)
    return ExpungePublic(
        run_id=run_id,
        recorded=done.recorded,
        files_deleted=done.files_deleted,
        key_destroyed=done.key_destroyed,
    )


@router.post("/{run_id}/hold", response_model=HoldPublic)
def place_hold(
    run_id: ScopedRunId, runtime: RuntimeDep, principal: Admin, body: HoldRequest | None = None
) -> HoldPublic:
    """Put a legal hold on the run: retention skips it and expunge answers 409."""
    reason = check_reason(
        body.reason if body else None, required=runtime.settings.require_reason, action="a hold"
    )
    recorded = runtime.ledger.place_hold(run_id, principal=principal.name, reason=reason)
    log.info("run_hold_placed", run_id=run_id, by=principal.name, recorded=recorded)
    return HoldPublic(run_id=run_id, held=True, recorded=recorded)


@router.delete("/{run_id}/hold", response_model=HoldPublic)
def release_hold(
    run_id: ScopedRunId, runtime: RuntimeDep, principal: Admin, body: HoldRequest | None = None
) -> HoldPublic:
    """Release the legal hold (``reason`` in the body, as for placing it)."""
    reason = check_reason(
        body.reason if body else None, required=runtime.settings.require_reason, action="releasing a hold"
    )
    recorded = runtime.ledger.release_hold(run_id, principal=principal.name, reason=reason)
    log.info("run_hold_released", run_id=run_id, by=principal.name, recorded=recorded)
    return HoldPublic(run_id=run_id, held=False, recorded=recorded)
