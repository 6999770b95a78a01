"""The ledger page: the Merkle digest, verify with the place of each problem, and proofs to
download (SPEC 7), confined to the session's workspaces (SPEC 9).

The tree is one tree over the whole ledger, so its digest, the verify verdict and counts, and
consistency proofs (tree sizes only) are the same for everyone. What names a stream does not
leave its workspaces: a session whose token does not cover every workspace sees the problems
of its own runs and workflows only (the others are counted, not shown), and gets the inclusion
proof of an event of theirs only (404 otherwise, as for a position that holds no event).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import Principal
from api.deps import RuntimeDep
from api.params import MAX_POSITION
from api.routes.ledger import merkle_store
from api.runtime import Runtime
from api.ui.render import UiRoute, Viewer, check_form, page
from ledger.domain.workspace import DEFAULT_WORKSPACE
from ledger.errors import InvalidRequest, NotFound
from ledger.integrity.verify import verify_ledger

router = APIRouter(route_class=UiRoute, include_in_schema=False)
#: Streams keyed by their workspace (``workflow:<ws>/<name>``; ``default``'s unqualified).
WORKSPACE_KEYED = ("workflow:", "definition:")


def stream_workspace(runtime: Runtime, stream: str) -> str | None:
    """The workspace a stream belongs to: a run's, or a workflow's or definition's (from its
    id); None for the ledger-wide streams (tokens, keys, exports, workspaces, ...)."""
    for prefix in WORKSPACE_KEYED:
        if stream.startswith(prefix):
            name = stream.removeprefix(prefix)
            return name.split("/", 1)[0] if "/" in name else DEFAULT_WORKSPACE
    return runtime.ledger.run_workspace(stream) if ":" not in stream else None


def visible(runtime: Runtime, principal: Principal, stream: str) -> str | None:
    """``stream``'s workspace when the principal may see the stream (a ``*`` token sees every
    stream, ``""`` standing for the ledger-wide ones); None when not."""
    workspace = stream_workspace(runtime, stream)
    if principal.every_workspace:
        return workspace or ""
    return workspace if workspace is not None and principal.covers(workspace) else None


def confined_report(runtime: Runtime, principal: Principal, report: dict[str, Any]) -> dict[str, Any]:
    """The verify report with the problems the principal may see, each with its stream's
    workspace (for the link to the run), and how many others there are (``hidden``)."""
    shown, hidden = [], 0
    for problem in report["problems"]:
        stream = problem.get("stream")
        if not stream:  # a place in the tree, no stream's: the same for everyone
            shown.append({**problem, "workspace": None})
            continue
        workspace = visible(runtime, principal, str(stream))
        if workspace is None:
            hidden += 1
        else:
            shown.append({**problem, "workspace": workspace or None})
    unlisted = report["problem_count"] - len(report["problems"])
    return {**report, "problems": shown, "hidden": hidden, "unlisted": unlisted}


@router.get("/ledger", response_class=HTMLResponse)
def ledger_page(request: Request, runtime: RuntimeDep, session: Viewer) -> Response:
    digest = merkle_store(request, runtime).digest()
    return page(request, session, "ledger.html", digest=digest, report=None)


@router.post("/ledger/verify", response_class=HTMLResponse)
def verify_page(
    request: Request, runtime: RuntimeDep, session: Viewer, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """Every event, chain, sequence, position and the Merkle root rechecked; each problem the
    session may see shown with the stream, sequence and position it was found at."""
    check_form(request, runtime, session, csrf)
    report = confined_report(runtime, session.principal, verify_ledger(runtime.settings, workers=1).to_json())
    digest = merkle_store(request, runtime).digest()
    return page(request, session, "ledger.html", digest=digest, report=report)


def _attachment(body: dict[str, Any], name: str) -> Response:
    return Response(
        json.dumps(body, indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/ledger/proofs/inclusion")
def inclusion_download(
    request: Request,
    runtime: RuntimeDep,
    session: Viewer,
    position: Annotated[int, Query(ge=0, le=MAX_POSITION)],
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
) -> Response:
    """The RFC 9162 inclusion proof of the event at ``position``, if the session may see it."""
    missing = NotFound(f"no event at position {position} in the ledger's tree")
    if not session.principal.every_workspace:
        found = runtime.ledger.reader.after(position - 1, limit=1, upto=position)
        if not found or visible(runtime, session.principal, found[0].stream) is None:
            raise missing
    store = merkle_store(request, runtime)
    try:
        proof = store.inclusion(position, tree_size)
    except KeyError:
        raise missing from None
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    body = {"position": position, "root_hash": store.digest()["root_hash"], **proof}
    return _attachment(body, f"inclusion-{position}-{proof['tree_size']}.json")


@router.get("/ledger/proofs/consistency")
def consistency_download(
    request: Request,
    runtime: RuntimeDep,
    _: Viewer,
    first: Annotated[int, Query(ge=1, le=MAX_POSITION)],
    second: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
) -> Response:
    try:
        proof = merkle_store(request, runtime).consistency(first, second)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return _attachment(proof, f"consistency-{proof['first']}-{proof['second']}.json")
