"""``/api/stats``: run counts and durations, overall and per workflow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Auditor, RuntimeDep
from api.models import StatsPublic
from api.params import TimeQuery, iso_timestamp
from api.scope import WorkspaceDep

router = APIRouter(prefix="/api/stats", tags=["stats"])


@router.get("", response_model=StatsPublic)
def stats(
    runtime: RuntimeDep,
    _: Auditor,
    workspace: WorkspaceDep,
    workflow: Annotated[list[Annotated[str, Query(max_length=200)]] | None, Query(max_length=50)] = None,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
    q: Annotated[str | None, Query(max_length=4000)] = None,
) -> dict[str, Any]:
    """Counts and durations of the runs the filters select (``q``: SPEC section 8's search
    expression; a repeated ``workflow`` means any of them)."""
    return dict(
        runtime.views.stats(
            workflow=workflow,
            created_after=iso_timestamp(created_after, "created_after"),
            created_before=iso_timestamp(created_before, "created_before"),
            workspace=workspace,
            q=q,
        )
    )
