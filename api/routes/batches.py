"""``/api/batches/{batch_id}``: a batch trigger's progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import Auditor, RuntimeDep
from api.models import BatchPublic
from api.reads import run_summary
from api.scope import NamedWorkspace
from ledger.errors import NotFound
from projections.views.rundetail import batch_progress

router = APIRouter(prefix="/api/batches", tags=["batches"])

BatchId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get("/{batch_id}", response_model=BatchPublic)
def show_batch(
    batch_id: BatchId, runtime: RuntimeDep, principal: Auditor, named: NamedWorkspace
) -> dict[str, Any]:
    batch = runtime.ledger.get_batch(batch_id)  # its items, in run order; 404 for no batch
    if not principal.covers(batch.workspace) or named not in (None, batch.workspace):
        raise NotFound(f"no batch {batch_id!r}")  # (SPEC 9: as if it did not exist)
    run_ids = list(batch.run_ids)
    known = runtime.views.batch_statuses(batch_id) or {}
    # Runs the view has not seen yet are answered from their own streams.
    statuses = [known[r] if r in known else run_summary(runtime, r)["status"] for r in run_ids]
    return batch_progress(batch_id, run_ids, statuses, batch.items)
