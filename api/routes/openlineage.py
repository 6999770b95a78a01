"""``POST /api/v1/lineage``: OpenLineage RunEvents, DatasetEvents and JobEvents from any
OpenLineage client (its HTTP transport posts here with ``Authorization: Bearer <token>``;
``Content-Encoding: gzip`` is accepted). Needs an ``operator`` (or ``admin``) token: an
OpenLineage run event creates a run, which is the operator's right (SPEC section 2: worker
tokens claim runs and report on them, nothing else). An outside engine that posts OpenLineage
uses an operator token.

Answers 201 ``{run_id, status, recorded: true}`` when the event was recorded, 200 with
``recorded: false`` for a repeat (identical to an event already recorded), 422 for a malformed
event (nothing written), 409 when the runId names a run of another job or a non-OpenLineage
run, 404 when it names a run of another workspace (as for a workspace the token does not
cover). The event is recorded in the request's workspace (SPEC 9). How it is stored is
described in ``ledger.domain.openlineage``.
"""

from __future__ import annotations

import zlib
from typing import Annotated, Any

import anyio
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Principal
from api.deps import RuntimeDep, require_role
from api.scope import NamedWorkspace, resolve_workspace
from ledger.domain.inputs import loads_json
from ledger.domain.openlineage import RunEvent, parse_lineage_event
from ledger.errors import InvalidRequest

router = APIRouter(prefix="/api/v1", tags=["openlineage"])
log = structlog.get_logger()


class LineageAccepted(BaseModel):
    """``run_id`` and ``status`` are None for a DatasetEvent or JobEvent (they name no run)."""

    run_id: str | None
    status: str | None
    recorded: bool


#: An operator or admin token (401 without a valid one, 403 for an auditor or a worker).
Reporter = Annotated[Principal, Depends(require_role("operator"))]


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
        return loads_json(body)
    except ValueError as exc:  # orjson.JSONDecodeError: malformed JSON or UTF-8
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
async def post_lineage(
    request: Request, runtime: RuntimeDep, principal: Reporter, named: NamedWorkspace
) -> JSONResponse:
    """Into the request's workspace (SPEC 9: the token's, or the one named): the run, the
    dataset or the job is that workspace's, and OpenLineage namespaces stay inside it."""
    workspace = await anyio.to_thread.run_sync(resolve_workspace, runtime, principal, named)
    raw = _decode(
        await request.body(),
        request.headers.get("content-encoding", "").lower(),
        runtime.settings.max_body_bytes,
    )
    event = parse_lineage_event(raw)
    if not isinstance(event, RunEvent):
        recorded = await anyio.to_thread.run_sync(
            lambda: runtime.ledger.record_static_lineage(event, workspace=workspace)
        )
        log.info(
            "openlineage_static_event_recorded" if recorded else "openlineage_static_event_repeated",
            kind=type(event).__name__,
            workspace=workspace,
        )
        return JSONResponse(
            {"run_id": None, "status": None, "recorded": recorded}, status_code=201 if recorded else 200
        )
    run_event = event
    result = await anyio.to_thread.run_sync(
        lambda: runtime.ledger.record_openlineage(run_event, principal=principal.name, workspace=workspace)
    )
    log.info(
        "openlineage_event_recorded" if result.recorded else "openlineage_event_repeated",
        run_id=result.run_id,
        event_type=run_event.event_type,
        status=result.status,
        workspace=workspace,
    )
    return JSONResponse(
        {"run_id": result.run_id, "status": result.status, "recorded": result.recorded},
        status_code=201 if result.recorded else 200,
    )
