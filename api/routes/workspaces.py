"""``/api/workspaces`` (SPEC 9): create a workspace (an admin of every workspace) and list the
ones the token covers (any token: what the UI's workspace switcher offers)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, HTTPException

from api.deps import Admin, Authenticated, RuntimeDep
from api.models import WorkspacePublic, WorkspaceRequest, WorkspacesPublic
from ledger.domain.workspace import DEFAULT_WORKSPACE, Workspace, workspace_stream
from ledger.hashing import format_timestamp

router = APIRouter(prefix="/api/workspaces", tags=["workspaces"])
log = structlog.get_logger()


@router.post("", status_code=201, response_model=WorkspacePublic)
def create_workspace(body: WorkspaceRequest, runtime: RuntimeDep, principal: Admin) -> WorkspacePublic:
    """A new workspace (a ``Workspace.Created`` event); 409 when it exists. Needs an admin
    token of every workspace (``*``): a workspace's own admin administers only its own."""
    if not principal.every_workspace:
        raise HTTPException(403, "creating a workspace needs an admin token of every workspace ('*')")
    workspace = runtime.ledger.create_workspace(body.name, principal=principal.name)
    log.info("workspace_created", workspace=workspace.name, by=principal.name)
    return _public(workspace)


@router.get("", response_model=WorkspacesPublic)
def list_workspaces(runtime: RuntimeDep, principal: Authenticated) -> dict[str, Any]:
    """The workspaces this token covers (every one for a ``*`` token), ``default`` first."""
    names = [n for n in runtime.ledger.workspace_names() if principal.covers(n)]
    found = []
    for name in names:
        stored = None if name == DEFAULT_WORKSPACE else runtime.ledger.stream_events(workspace_stream(name))
        if stored:
            found.append(
                {"name": name, "created_at": stored[0].timestamp, "created_by": stored[0].data["created_by"]}
            )
        elif name == DEFAULT_WORKSPACE:
            found.append({"name": name, "created_at": None, "created_by": None})
    return {"workspaces": found}


def _public(workspace: Workspace) -> WorkspacePublic:
    return WorkspacePublic(
        name=workspace.name,
        created_at=format_timestamp(workspace.created_on),
        created_by=workspace.created_by,
    )
