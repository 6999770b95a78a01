"""The other pages: compare, workflows and their versions with a diff, stats with charts, the
lineage graph from a dataset or job, and the audit trail (the ledger page is
:mod:`api.ui.pages_ledger`)."""

from __future__ import annotations

import difflib
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import RuntimeDep
from api.params import MAX_POSITION, TimeQuery, iso_timestamp
from api.scope import check_run_in_scope
from api.ui import graph, wiring
from api.ui.render import UiRoute, Viewer, page
from api.ui.scope import Workspace
from ledger.domain.workflow import workflow_stream
from ledger.errors import InvalidRequest, NotFound
from ledger.hashing import format_timestamp, parse_timestamp
from projections.views import marquez_graph
from projections.views.compare import compare
from projections.views.rundetail import run_events

router = APIRouter(route_class=UiRoute, include_in_schema=False)
WorkflowName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")]
RunRef = Annotated[str | None, Query(max_length=200)]


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    a: RunRef = None,
    b: RunRef = None,
) -> Response:
    for run_id in (a, b):
        if run_id:
            check_run_in_scope(runtime, session.principal, workspace.name, run_id)
    result = compare(run_events(runtime.ledger, a), run_events(runtime.ledger, b)) if a and b else None
    return page(request, session, "compare.html", a=a or "", b=b or "", result=result)


@router.get("/workflows", response_class=HTMLResponse)
def workflows_page(request: Request, runtime: RuntimeDep, session: Viewer, workspace: Workspace) -> Response:
    """The workspace's workflows, listed the way ``GET /api/workflows`` lists them."""
    prefix = workflow_stream("", workspace.name)
    names = [n[len(prefix) :] for n in runtime.ledger.reader.stream_ids(prefix)]
    workflows = [runtime.ledger.get_workflow(name, workspace.name) for name in names if "/" not in name]
    return page(request, session, "workflows.html", workflows=workflows)


def _yaml(definition: Any) -> str:
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)


@router.get("/workflows/{name}", response_class=HTMLResponse)
def workflow_page(
    request: Request,
    name: WorkflowName,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    version: Annotated[int | None, Query(ge=1)] = None,
    diff_from: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """One workflow: its versions, one version's definition, and a diff between two versions."""
    workflow = runtime.ledger.get_workflow(name, workspace.name)
    by_number = {v.version: v for v in workflow.versions}
    shown = by_number.get(version or workflow.active.version)
    if shown is None:
        raise NotFound(f"workflow {name!r} has no version {version}")
    diff: list[str] | None = None
    if diff_from is not None:
        base = by_number.get(diff_from)
        if base is None:
            raise NotFound(f"workflow {name!r} has no version {diff_from}")
        diff = list(
            difflib.unified_diff(
                _yaml(base.definition).splitlines(),
                _yaml(shown.definition).splitlines(),
                f"version {base.version}",
                f"version {shown.version}",
                lineterm="",
            )
        )
    return page(
        request,
        session,
        "workflow.html",
        workflow=workflow,
        shown=shown,
        definition=_yaml(shown.definition),
        diff=diff,
        diff_from=diff_from,
    )


@router.get("/stats", response_class=HTMLResponse)
def stats_page(
    request: Request,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    stats = runtime.views.stats(workflow=workflow or None, workspace=workspace.name)
    by_status = sorted(stats["by_status"].items(), key=lambda kv: -kv[1])
    per_workflow = sorted(stats["per_workflow"], key=lambda w: -int(w.get("total_runs") or 0))[:20]
    return page(
        request,
        session,
        "stats.html",
        stats=stats,
        by_status=by_status,
        status_max=max((n for _, n in by_status), default=0),
        per_workflow=per_workflow,
        workflow_max=max((int(w.get("total_runs") or 0) for w in per_workflow), default=0),
        duration_max=max((float(w.get("p95_duration_seconds") or 0) for w in per_workflow), default=0.0),
        workflow=workflow or "",
    )


@router.get("/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    node_id: Annotated[str | None, Query(max_length=2000)] = None,
    depth: Annotated[int, Query(ge=0, le=10)] = 2,
) -> Response:
    """The lineage graph centred on a run (``run:<id>``, one of the workspace's), a dataset or
    a job (Marquez ids, of the workspace's OpenLineage lineage)."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    if node_id and node_id.startswith("run:"):
        run_id = check_run_in_scope(runtime, session.principal, workspace.name, node_id.removeprefix("run:"))
        found = runtime.views.lineage(run_id, depth=depth, workspace=workspace.name)
        if found is None:
            raise NotFound(f"no run {node_id.removeprefix('run:')!r} in the lineage view")
        nodes, edges = found["nodes"], found["edges"]
    elif node_id:
        ws = workspace.name
        marquez = runtime.views.marquez(lambda c, t: marquez_graph.lineage(c, t, ws, node_id, depth))
        if marquez is None:
            raise NotFound(f"no dataset or job {node_id!r} (ids look like dataset:<namespace>:<name>)")
        nodes, edges = graph.from_marquez(marquez["graph"])
    return page(
        request,
        session,
        "lineage.html",
        node_id=node_id or "",
        depth=depth,
        drawing=graph.draw(nodes, edges, focus=node_id),
        too_big=len(nodes) > graph.MAX_DRAWN,
        nodes=nodes,
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    run_id: Annotated[str | None, Query(max_length=200)] = None,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
    cursor: Annotated[str | None, Query(max_length=30)] = None,
) -> Response:
    """The ledger-wide audit trail (SPEC 10), oldest first, filtered and paged like ``GET
    /api/audit``: a token of every workspace that has chosen none sees the whole ledger; any
    other session, its workspace's entries only. Each run's own trail is on its page."""
    scope = None if session.principal.every_workspace and not workspace.chosen else workspace.name
    if cursor is not None and not (cursor.isdigit() and int(cursor) <= MAX_POSITION):
        raise InvalidRequest("cursor: not a cursor of this listing")
    after = -1 if cursor is None else int(cursor)
    filters = {
        "actor": actor or None,
        "action": action or None,
        "run_id": run_id or None,
        "created_after": _utc(iso_timestamp(created_after or None, "created_after")),
        "created_before": _utc(iso_timestamp(created_before or None, "created_before")),
    }
    entries, next_cursor = wiring.ledger_audit(
        runtime, limit=100, after_position=after, workspace=scope, **filters
    )
    shown = {
        k: v
        for k, v in {
            "actor": actor,
            "action": action,
            "run_id": run_id,
            "created_after": created_after,
            "created_before": created_before,
        }.items()
        if v
    }
    return page(
        request,
        session,
        "audit.html",
        entries=entries,
        next_cursor=next_cursor,
        next_query={**shown, "cursor": next_cursor or ""},
        filters=shown,
        scope=scope,
    )


def _utc(value: str | None) -> str | None:
    """A time bound in the audit entries' own form, as ``GET /api/audit`` compares them."""
    return None if value is None else format_timestamp(parse_timestamp(value))
