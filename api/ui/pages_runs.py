"""``/runs`` (the list) and ``/runs/{id}`` (one run: summary, timeline, evidence, logs, files,
audit trail, signatures, events with hashes, lineage), read the way the API reads them. An
expunged run (SPEC section 11) is marked so, its sensitive values read ``[erased]``, and its
logs and file downloads answer 410, as the API's."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RuntimeDep
from api.params import Status, TaskName, iso_timestamp
from api.reads import read_file_checked, refuse_expunged
from api.ui import graph, wiring
from api.ui.render import UiRoute, Viewer, page
from api.ui.scope import ScopedRun, Workspace
from api.ui.timeline import timeline
from ledger.domain.status import TERMINAL
from ledger.errors import InvalidRequest, NotFound
from projections.views.rundetail import files_of, find_task, log_ref, run_events, tasks_of
from projections.views.summaries_fold import summary_from_events

router = APIRouter(route_class=UiRoute, include_in_schema=False)
PAGE_SIZE = 50
STATUSES: tuple[str, ...] = get_args(Status)
#: Log lines shown on the page (a longer log is downloaded whole).
MAX_LOG_LINES = 5000


@router.get("/", response_class=HTMLResponse)
def home(_: Viewer) -> Response:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    status: Annotated[str | None, Query(max_length=20)] = None,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    triggered_by: Annotated[str | None, Query(max_length=200)] = None,
    created_after: Annotated[str | None, Query(max_length=64)] = None,
    created_before: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=2000)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    if status and status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    filters = {
        "status": status or None,
        "workflow": workflow or None,
        "triggered_by": triggered_by or None,
        "created_after": iso_timestamp(created_after or None, "created_after"),
        "created_before": iso_timestamp(created_before or None, "created_before"),
    }
    runs, next_cursor = wiring.list_runs(
        runtime, q=q, filters=filters, limit=PAGE_SIZE, cursor=cursor, workspace=workspace.name
    )
    shown = {k: v for k, v in {**filters, "q": q}.items() if v}
    live = [r["run_id"] for r in runs if r["status"] not in {s.value for s in TERMINAL}]
    return page(
        request,
        session,
        "runs.html",
        runs=runs,
        filters=shown,
        form={
            "status": status or "",
            "workflow": workflow or "",
            "triggered_by": triggered_by or "",
            "created_after": created_after or "",
            "created_before": created_before or "",
            "q": q or "",
        },
        statuses=STATUSES,
        next_cursor=next_cursor,
        paged=cursor is not None,
        live=live,
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request,
    run_id: ScopedRun,
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    depth: Annotated[int, Query(ge=0, le=10)] = 1,
) -> Response:
    events = run_events(runtime.ledger, run_id)
    run = dict(summary_from_events(events) or {})  # read-your-writes, as GET /api/runs/{id}
    tasks = tasks_of(events)
    rows, span = timeline(tasks, run, time.time())
    lineage = runtime.views.lineage(run_id, depth=depth, workspace=workspace.name) or {
        "nodes": [],
        "edges": [],
    }
    drawing = graph.draw(lineage["nodes"], lineage["edges"], focus=f"run:{run_id}")
    return page(
        request,
        session,
        "run.html",
        run=run,
        trigger=events[0].data,
        tasks=tasks,
        rows=rows,
        span=span,
        files=files_of(events, size_of=runtime.files.size),
        audit=runtime.views.audit(run_id),
        events=events,
        depth=depth,
        drawing=drawing,
        too_big=len(lineage["nodes"]) > graph.MAX_DRAWN,
        lineage=lineage,
        signatures=wiring.signatures_of(runtime, events),
        labels=dict(sorted((run.get("labels") or {}).items())),
        terminal=run["status"] in {s.value for s in TERMINAL},
        task_names=[t["name"] for t in tasks],
    )


@router.get("/runs/{run_id}/tasks/{task_name}/logs", response_class=HTMLResponse)
def log_page(
    request: Request,
    run_id: ScopedRun,
    task_name: TaskName,
    runtime: RuntimeDep,
    session: Viewer,
    stream: Literal["stdout", "stderr"] = "stdout",
    attempt: Annotated[int | None, Query(ge=1, le=1000)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """One attempt's stdout or stderr; ``q`` keeps the lines that contain it (case-insensitive)."""
    events = run_events(runtime.ledger, run_id)
    refuse_expunged(events)  # 410, as the API's logs (a log another run shares may be stored still)
    task = find_task(events, task_name)
    ref = log_ref(task, stream, attempt)
    text = read_file_checked(runtime, str(ref["sha256"])).decode("utf-8", errors="replace")
    lines = list(enumerate(text.splitlines(), start=1))
    if q:
        needle = q.casefold()
        lines = [(n, line) for n, line in lines if needle in line.casefold()]
    return page(
        request,
        session,
        "log.html",
        run_id=run_id,
        task=task,
        stream=stream,
        attempt=attempt or (task["attempts"][-1]["attempt"] if task["attempts"] else None),
        sha256=ref["sha256"],
        lines=lines[:MAX_LOG_LINES],
        cut=len(lines) > MAX_LOG_LINES,
        q=q or "",
        empty=not text,
    )


@router.get("/runs/{run_id}/files/{sha256}")
def download(run_id: ScopedRun, sha256: str, runtime: RuntimeDep, _: Viewer) -> Response:
    """A file of the run, under its recorded name; the bytes are re-hashed before they go."""
    events = run_events(runtime.ledger, run_id)
    refuse_expunged(events)  # 410: the run's files are erased (a shared one is the API's /api/files)
    files: list[dict[str, Any]] = files_of(events)
    found = next((f for f in files if f["sha256"] == sha256), None)
    if found is None:
        raise NotFound(f"run {run_id} has no file {sha256[:64]!r}")
    name = str(found["path"] or sha256).rsplit("/", 1)[-1] or sha256
    return Response(
        read_file_checked(runtime, sha256),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "ETag": f'"{sha256}"',
            "X-Content-SHA256": sha256,
        },
    )
