"""``GET /api/export``: a signed compliance bundle (see :mod:`ledger.integrity.bundle`), streamed.

The bundle is written to a temporary file as the events are read, then streamed from it in
chunks and deleted, so memory stays flat however many events it holds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import Auditor, RuntimeDep
from api.params import TimeQuery
from api.scope import WorkspaceDep
from ledger.integrity.bundle import ExportFilters, parse_time_filter, write_bundle
from projections.views.summaries_fold import summary_from_events

router = APIRouter(prefix="/api/export", tags=["export"])

CHUNK = 1 << 20


def _stream_and_remove(path: Path, directory: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@router.get("", response_class=StreamingResponse, responses={200: {"content": {"application/x-tar": {}}}})
def export(
    runtime: RuntimeDep,
    principal: Auditor,
    workspace: WorkspaceDep,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """The runs triggered in the window (and of the workflow), all their events, summaries,
    inclusion proofs, and a manifest signed with the ledger's Ed25519 key (a tar file)."""
    filters = ExportFilters(
        created_after=parse_time_filter(created_after, "created_after"),
        created_before=parse_time_filter(created_before, "created_before"),
        workflow=workflow,
        workspace=workspace,
    )
    directory = Path(
        tempfile.mkdtemp(
            prefix="runledger-export-",
            dir=runtime.settings.state_dir if runtime.settings.state_dir.is_dir() else None,
        )
    )
    try:
        result = write_bundle(
            runtime.settings,
            directory / "bundle.tar",
            filters=filters,
            summarise=summary_from_events,
            confined=not principal.every_workspace,
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    runtime.ledger.record_export(result.manifest, by=principal.name)
    name = f"runledger-export-{result.manifest['created_at'].replace(':', '')}.tar"
    return StreamingResponse(
        _stream_and_remove(result.path, directory),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(result.path.stat().st_size),
        },
    )
