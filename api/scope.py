"""Workspace confinement (SPEC 9): which workspace a request acts in, and the run lookup every
``{run_id}`` route takes.

* :data:`WorkspaceDep` — the request's workspace: the ``Runledger-Workspace`` header or the
  ``workspace`` query parameter, else the token's only workspace (``default`` for a token of
  every workspace, ``*``); 422 when a token of several names none; 404 when the token does not
  cover the one named, or it does not exist (never 403: existence is not disclosed).
* :data:`ScopedRunId` — a ``{run_id}`` path parameter whose run is in a workspace the token
  covers (and the named one, when the request names one); 404 otherwise, the same answer as
  for a run that does not exist.

A new route is confined by taking one of them: a listing or a query takes ``WorkspaceDep``
and passes it to the read model; a route on one run takes ``ScopedRunId`` instead of ``RunId``.
``tests/e2e/test_workspaces_boundary.py`` tries every route of ``/openapi.json`` across the
boundary and fails for one it does not know how to call.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, Header, Query

from api.auth import Principal
from api.deps import Authenticated, RuntimeDep
from api.params import RunId
from api.runtime import Runtime
from ledger.domain.workspace import DEFAULT_WORKSPACE, WORKSPACE_PATTERN
from ledger.errors import InvalidRequest, NotFound

WORKSPACE_HEADER = "Runledger-Workspace"

NamedInHeader = Annotated[
    str | None,
    Header(
        alias=WORKSPACE_HEADER,
        pattern=WORKSPACE_PATTERN,
        description="the workspace the request acts in (or the `workspace` query parameter)",
    ),
]
NamedInQuery = Annotated[
    str | None,
    Query(
        alias="workspace",
        pattern=WORKSPACE_PATTERN,
        description="the workspace the request acts in (or the `Runledger-Workspace` header)",
    ),
]


async def named_workspace(header: NamedInHeader = None, query: NamedInQuery = None) -> str | None:
    """The workspace the request names, if it names one (404 for two different ones)."""
    if header is not None and query is not None and header != query:
        # Two workspaces named: the request is in neither (404, like one it does not cover).
        raise NotFound(f"the {WORKSPACE_HEADER} header and the workspace parameter name different workspaces")
    return header if header is not None else query


NamedWorkspace = Annotated[str | None, Depends(named_workspace)]


def resolve_workspace(runtime: Runtime, principal: Principal, named: str | None) -> str:
    """The workspace a request of ``principal`` naming ``named`` acts in (see the module)."""
    if named is None:
        if principal.every_workspace:
            return DEFAULT_WORKSPACE
        if len(principal.workspaces) > 1:
            raise InvalidRequest(
                f"this token covers several workspaces ({', '.join(principal.workspaces)}): name one "
                f"with the {WORKSPACE_HEADER} header or the workspace query parameter"
            )
        return principal.workspaces[0]
    if not principal.covers(named) or not runtime.ledger.workspace_exists(named):
        raise NotFound(f"no workspace {named!r}")
    return named


async def current_workspace(runtime: RuntimeDep, principal: Authenticated, named: NamedWorkspace) -> str:
    """``async``: a thread hop only when the named workspace needs a query."""
    if named is None or runtime.ledger.known_workspace(named):
        return resolve_workspace(runtime, principal, named)
    return await anyio.to_thread.run_sync(resolve_workspace, runtime, principal, named)


WorkspaceDep = Annotated[str, Depends(current_workspace)]


def check_run_in_scope(runtime: Runtime, principal: Principal, named: str | None, run_id: str) -> str:
    """``run_id`` when its run is in a workspace ``principal`` covers (and is ``named``, when a
    workspace is named); NotFound otherwise, as for a run that does not exist."""
    return require_in_scope(principal, named, run_id, runtime.ledger.run_workspace(run_id))


def require_in_scope(principal: Principal, named: str | None, run_id: str, workspace: str | None) -> str:
    """The check of :func:`check_run_in_scope` on a run whose ``workspace`` the caller read
    already (None: no such run)."""
    if workspace is None or not principal.covers(workspace) or named not in (None, workspace):
        raise NotFound(f"no run {run_id!r}")
    return run_id


async def run_in_scope(
    run_id: RunId, runtime: RuntimeDep, principal: Authenticated, named: NamedWorkspace
) -> str:
    return await anyio.to_thread.run_sync(check_run_in_scope, runtime, principal, named, run_id)


ScopedRunId = Annotated[str, Depends(run_in_scope)]
