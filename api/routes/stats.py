"""``/api/stats``: run counts and durations, overall and per workflow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Auditor, RuntimeDep
from api.models import StatsPublic
from api.params import TimeQuery, iso_timestamp

router = APIRouter(prefix="/api/stats", tags=["stats"])


@router.get("", response_model=StatsPublic)
def stats(
    runtime: RuntimeDep,
    _: Auditor,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
) -> dict[str, Any]:
    return dict(
        runtime.views.stats(
            workflow=workflow,
            created_after=iso_timestamp(created_after, "created_after"),
            created_before=iso_timestamp(created_before, "created_before"),
        )
    )
