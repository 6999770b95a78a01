"""``/api/batches/{batch_id}``: a batch trigger's progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.deps import Auditor, RuntimeDep
from api.models import BatchPublic
from api.reads import run_summary
from projections.views.rundetail import batch_progress

router = APIRouter(prefix="/api/batches", tags=["batches"])

BatchId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get("/{batch_id}", response_model=BatchPublic)
def show_batch(batch_id: BatchId, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    progress = runtime.views.batch_progress(batch_id)
    if progress is not None:
        return dict(progress)
    # The view has not seen the batch yet: answer from the batch's own stream and its runs.
    batch = runtime.ledger.get_batch(batch_id)
    statuses = [run_summary(runtime, run_id)["status"] for run_id in batch.run_ids]
    return batch_progress(batch_id, list(batch.run_ids), statuses)
