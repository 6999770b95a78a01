"""``/api/projections``: each read model's schema version, position, lag and state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Auditor, RuntimeDep
from api.models import ProjectionsPublic

router = APIRouter(prefix="/api/projections", tags=["projections"])


@router.get("", response_model=ProjectionsPublic)
def projections_status(runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    return {"projections": runtime.views.status()}
