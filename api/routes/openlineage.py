"""``POST /api/v1/lineage``: OpenLineage RunEvents, DatasetEvents and JobEvents from any
OpenLineage client (its HTTP transport posts here with ``Authorization: Bearer <token>``;
``Content-Encoding: gzip`` is accepted). Needs an ``operator`` (or ``admin``) or a ``worker``
token: outside engines report like workers do, operators may backfill.

Answers 201 ``{run_id, status, recorded: true}`` when the event was recorded, 200 with
``recorded: false`` for a repeat (identical to an event already recorded), 422 for a malformed
event (nothing written), 409 when the runId names a run of another job or a non-OpenLineage
run. How the event is stored is described in ``ledger.domain.openlineage``.
"""

from __future__ import annotations

import json
import zlib
from typing import Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Principal
from api.deps import RuntimeDep, require_role
from ledger.domain.openlineage import RunEvent, parse_lineage_event
from ledger.errors import InvalidRequest

router = APIRouter(prefix="/api/v1", tags=["openlineage"])
log = structlog.get_logger()


class LineageAccepted(BaseModel):
    """``run_id`` and ``status`` are None for a DatasetEvent or JobEvent (they name no run)."""

    run_id: str | None
    status: str | None
    recorded: bool


#: An operator, admin or worker token (401 without a valid one, 403 for an auditor).
Reporter = Annotated[Principal, Depends(require_role("operator", "worker"))]


def _decode(body: bytes, encoding: str, limit: int) -> Any:
    if encoding in {"gzip", "deflate"}:
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise InvalidRequest(f"the body is not valid {encoding} data") from None
        if len(body) > limit:
            raise HTTPException(413, f"decompressed body exceeds the limit of {limit} bytes")
    elif encoding not in {"", "identity"}:
        raise HTTPException(415, f"unsupported Content-Encoding {encoding!r}")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}") from None


@router.post(
    "/lineage",
    status_code=201,
    response_model=LineageAccepted,
    responses={
        200: {
            "model": LineageAccepted,
            "description": "An event identical to one recorded: nothing recorded",
        }
    },
    summary="Record an OpenLineage RunEvent (spec 2-0-2)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object", "description": "An OpenLineage RunEvent"}}
            },
        }
    },
)
async def post_lineage(request: Request, runtime: RuntimeDep, principal: Reporter) -> JSONResponse:
    raw = _decode(
        await request.body(),
        request.headers.get("content-encoding", "").lower(),
        runtime.settings.max_body_bytes,
    )
    event = parse_lineage_event(raw)
    if not isinstance(event, RunEvent):
        recorded = await anyio.to_thread.run_sync(lambda: runtime.ledger.record_static_lineage(event))
        log.info(
            "openlineage_static_event_recorded" if recorded else "openlineage_static_event_repeated",
            kind=type(event).__name__,
        )
        return JSONResponse(
            {"run_id": None, "status": None, "recorded": recorded}, status_code=201 if recorded else 200
        )
    run_event = event
    result = await anyio.to_thread.run_sync(
        lambda: runtime.ledger.record_openlineage(run_event, principal=principal.name)
    )
    log.info(
        "openlineage_event_recorded" if result.recorded else "openlineage_event_repeated",
        run_id=result.run_id,
        event_type=run_event.event_type,
        status=result.status,
    )
    return JSONResponse(
        {"run_id": result.run_id, "status": result.status, "recorded": result.recorded},
        status_code=201 if result.recorded else 200,
    )
