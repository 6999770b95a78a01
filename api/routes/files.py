"""``/api/files``: store raw bytes (operator) and serve stored files after re-checking them."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Auditor, Operator, RuntimeDep
from api.models import FileStored
from api.reads import read_file_checked
from api.scope import WorkspaceDep
from ledger.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/api/files", tags=["files"])
log = structlog.get_logger()

Sha256Path = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("", status_code=201, response_model=FileStored, openapi_extra=_RAW_BODY)
async def upload_file(request: Request, runtime: RuntimeDep, principal: Operator) -> FileStored:
    """Store the raw body (at least one byte; 422 for an empty one); a ``file`` parameter can
    then name it by its sha256."""
    data = await request.body()
    if not data:
        raise InvalidRequest("the body is empty: send the file's bytes")
    sha256, size = await run_in_threadpool(runtime.files.put_bytes, data)
    log.info("file_stored", sha256=sha256, size=size, by=principal.name)
    return FileStored(sha256=sha256, size=size)


@router.get(
    "/{sha256}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
def download_file(
    sha256: Sha256Path, runtime: RuntimeDep, principal: Auditor, workspace: WorkspaceDep
) -> Response:
    """The stored bytes; the hash is checked again before they are served. A token of some
    workspaces only gets a file a run of the request's workspace consumed or produced (404
    otherwise: files are shared by content across workspaces)."""
    if not principal.every_workspace and not runtime.views.file_in_workspace(sha256, workspace):
        raise NotFound(f"no stored file {sha256}")
    return Response(
        read_file_checked(runtime, sha256),
        media_type="application/octet-stream",
        headers={"ETag": f'"{sha256}"'},
    )
