"""The workspace a UI request acts in (SPEC 9), and the run lookup every run page and action
takes: the same rules as the API's (:mod:`api.scope`), with a browser's way of naming one.

* The workspace is the ``workspace`` query parameter, else the ``rl_workspace`` cookie the
  switcher sets (a preference, not a secret), else the token's first workspace (``default``
  for a token of every workspace). One the token does not cover, or that does not exist, is
  404 when the parameter names it; a stale cookie falls back to the token's first.
* :data:`ScopedRun` is a ``{run_id}`` whose run is in that workspace: 404 otherwise, the same
  page as for a run that does not exist, before anything is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import Principal
from api.deps import RuntimeDep
from api.params import RunId
from api.runtime import Runtime
from api.scope import check_run_in_scope, resolve_workspace
from api.ui.render import UiRoute, Viewer
from ledger.domain.workspace import DEFAULT_WORKSPACE, WORKSPACE_PATTERN
from ledger.errors import NotFound

COOKIE = "rl_workspace"
NamedInQuery = Annotated[str | None, Query(alias="workspace", pattern=WORKSPACE_PATTERN)]


@dataclass(frozen=True)
class UiWorkspace:
    name: str
    #: Whether the request (its parameter or the switcher's cookie) chose it.
    chosen: bool


def first_workspace(principal: Principal) -> str:
    if principal.every_workspace or not principal.workspaces:
        return DEFAULT_WORKSPACE
    return principal.workspaces[0]


def choose(runtime: Runtime, principal: Principal, named: str | None, cookie: str | None) -> UiWorkspace:
    """The workspace of a request naming ``named`` (parameter) with switcher cookie ``cookie``."""
    if named is not None:
        return UiWorkspace(resolve_workspace(runtime, principal, named), chosen=True)
    if cookie:
        try:
            return UiWorkspace(resolve_workspace(runtime, principal, cookie), chosen=True)
        except NotFound:
            pass
    return UiWorkspace(first_workspace(principal), chosen=False)


def ui_workspace(
    request: Request, runtime: RuntimeDep, session: Viewer, workspace: NamedInQuery = None
) -> UiWorkspace:
    chosen = choose(runtime, session.principal, workspace, request.cookies.get(COOKIE))
    request.state.ui_workspace = chosen.name  # the layout's switcher shows it
    return chosen


Workspace = Annotated[UiWorkspace, Depends(ui_workspace)]


def scoped_run(run_id: RunId, runtime: RuntimeDep, session: Viewer, workspace: Workspace) -> str:
    return check_run_in_scope(runtime, session.principal, workspace.name, run_id)


ScopedRun = Annotated[str, Depends(scoped_run)]


router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/workspace")
def switch(
    runtime: RuntimeDep,
    session: Viewer,
    name: Annotated[str, Query(pattern=WORKSPACE_PATTERN)],
    next: Annotated[str, Query(max_length=2000)] = "/runs",
) -> Response:
    """The switcher: remember ``name`` in a cookie (404 when the token does not cover it) and go
    back to the section the page was in (its list: a run of one workspace is not in another)."""
    chosen = resolve_workspace(runtime, session.principal, name)
    section = next.split("?", 1)[0].strip("/").split("/", 1)[0]
    target = f"/{section}" if section in SECTIONS else "/runs"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, chosen, httponly=True, samesite="lax", path="/")
    return response


SECTIONS = frozenset({"runs", "compare", "workflows", "lineage", "stats", "ledger", "audit"})
