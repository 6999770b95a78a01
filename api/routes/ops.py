"""Operational endpoints: ``GET /readyz`` and ``GET /metrics`` (no token, like ``/healthz``:
probes and Prometheus scrapers carry none, and neither answer holds run data).

Ready means the database answers, every view is within ``READY_MAX_LAG`` events of the
ledger (and none is missing), and none of the process's long-lived loops (projection runner,
executor, lease monitor, Merkle follower) is down: the answer lists the views under
``projections``, the contract's word, and the loops under ``loops`` (``ok`` or ``down``, with
the last error of each down one under ``loops_down``). ``/metrics`` is the Prometheus text
format (see ``api.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep
from api.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["ops"])
log = structlog.get_logger()

#: The most events a view may trail the ledger by while the service counts as ready.
READY_MAX_LAG = 1000
#: How long each readiness check may take before the answer is "not ready".
READY_TIMEOUT_SECONDS = 2.0

T = TypeVar("T")


@router.get("/readyz", summary="Ready to serve: database reachable, projections caught up")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """``async``, with each check in a worker thread bounded by ``READY_TIMEOUT_SECONDS``:
    while the database is away a pool may wait for a connection for many seconds, and a probe
    must hear "not ready" before its own timeout."""
    body: dict[str, Any] = {"ready": False, "database": "unreachable", "projections": []}
    body["loops"] = runtime.health.loops()
    down = runtime.health.down()
    if down:  # a loop already knows: answered at once
        body["loops_down"] = down
        body["database"] = "unknown"
        return JSONResponse(body, status_code=503)
    try:
        body["ledger_size"] = await _bounded(lambda: runtime.ledger.reader.max_position() + 1)
        body["database"] = "ok"
    except Exception as exc:  # any driver error (or none in time) means "not ready", never a 500
        log.warning("readiness_check_failed", part="database", error=str(exc) or type(exc).__name__)
        return JSONResponse(body, status_code=503)
    try:
        status = await _bounded(runtime.views.status)
        projections = [{"name": v["name"], "lag": int(v["lag"]), "state": v["state"]} for v in status]
    except Exception as exc:  # view tables missing or unreadable
        log.warning("readiness_check_failed", part="projections", error=str(exc) or type(exc).__name__)
        body["projections_error"] = str(exc) or type(exc).__name__
        return JSONResponse(body, status_code=503)
    body["projections"] = projections
    body["max_lag"] = READY_MAX_LAG
    body["ready"] = bool(projections) and all(p["lag"] <= READY_MAX_LAG for p in projections)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def _bounded(check: Callable[[], T]) -> T:
    """``check()`` in a worker thread; TimeoutError after ``READY_TIMEOUT_SECONDS`` (the thread
    is left to finish on its own)."""
    with anyio.fail_after(READY_TIMEOUT_SECONDS):
        return await anyio.to_thread.run_sync(check, abandon_on_cancel=True)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    return Response(render(runtime), media_type=CONTENT_TYPE)
