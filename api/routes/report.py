"""``GET /api/runs/{id}/report?format=html|pdf`` (auditor): the run's human-readable true copy
(SPEC section 10), rendered by :mod:`api.report`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import Auditor, RuntimeDep
from api.report import gather, render_html, render_pdf
from api.routes.ledger import merkle_store
from api.routes.signatures import key_lookup
from api.scope import ScopedRunId

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.get(
    "/{run_id}/report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
async def run_report(
    run_id: ScopedRunId,
    request: Request,
    runtime: RuntimeDep,
    _: Auditor,
    format: Literal["html", "pdf"] = "html",
) -> Response:
    """Summary, parameters, task evidence, file hashes, audit trail, signatures, event hashes
    and an inclusion proof against the current digest; amended entries marked."""
    store = merkle_store(request, runtime)
    data = await run_in_threadpool(gather, runtime, store, run_id, key_lookup(runtime))
    if format == "pdf":
        pdf = await run_in_threadpool(render_pdf, data)
        headers = {"Content-Disposition": f'inline; filename="run-{run_id}.pdf"'}
        return Response(pdf, media_type="application/pdf", headers=headers)
    return Response(render_html(data), media_type="text/html; charset=utf-8")
