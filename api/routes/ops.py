"""Operational endpoints: ``GET /readyz`` and ``GET /metrics`` (no token, like ``/healthz``:
probes and Prometheus scrapers carry none, and neither answer holds run data).

Ready means the database answers and every view is within ``READY_MAX_LAG`` events of the
ledger (and none is missing); the answer lists them under ``projections``, the contract's
word. ``/metrics`` is the Prometheus text format (see ``api.metrics``).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep
from api.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["ops"])
log = structlog.get_logger()

#: The most events a view may trail the ledger by while the service counts as ready.
READY_MAX_LAG = 1000


@router.get("/readyz", summary="Ready to serve: database reachable, projections caught up")
def readyz(runtime: RuntimeDep) -> JSONResponse:
    body: dict[str, Any] = {"ready": False, "database": "unreachable", "projections": []}
    try:
        body["ledger_size"] = runtime.ledger.reader.max_position() + 1
        body["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready", never a 500
        log.warning("readiness_check_failed", part="database", error=str(exc))
        return JSONResponse(body, status_code=503)
    try:
        projections = [
            {"name": v["name"], "lag": int(v["lag"]), "state": v["state"]} for v in runtime.views.status()
        ]
    except Exception as exc:  # view tables missing or unreadable
        log.warning("readiness_check_failed", part="projections", error=str(exc))
        body["projections_error"] = str(exc)
        return JSONResponse(body, status_code=503)
    body["projections"] = projections
    body["max_lag"] = READY_MAX_LAG
    body["ready"] = bool(projections) and all(p["lag"] <= READY_MAX_LAG for p in projections)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(render(runtime), media_type=CONTENT_TYPE)
