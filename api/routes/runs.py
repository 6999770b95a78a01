"""``/api/runs``: list, summary, tasks, logs, files, lineage, audit, compare, and the operator
actions cancel, replay and resume. (``/api/runs/{id}/events`` lives in ``stream.py``; claim and
report in ``workers.py``.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Query, Request, Response

from api.deps import Auditor, Operator, RuntimeDep
from api.models import (
    AuditPublic,
    CancelRequest,
    ComparePublic,
    FilesPublic,
    LabelRequest,
    LineagePublic,
    ReplayRequest,
    ResumeRequest,
    RunAccepted,
    RunCreated,
    RunLabelled,
    RunPublic,
    RunsPublic,
    TaskPublic,
    TasksPublic,
)
from api.params import RunId, Status, TaskName, TimeQuery, dynamic_query, iso_timestamp, prefixed
from api.reads import read_file_checked, refuse_expunged, run_summary, sensitive_values
from api.scope import NamedWorkspace, ScopedRunId, WorkspaceDep, check_run_in_scope, require_in_scope
from ledger.errors import InvalidRequest
from projections.views.compare import compare
from projections.views.prov import to_prov
from projections.views.rundetail import files_of, find_task, is_expunged, log_ref, run_events, tasks_of

router = APIRouter(prefix="/api/runs", tags=["runs"])
log = structlog.get_logger()


@router.get("", response_model=RunsPublic, openapi_extra=dynamic_query("param.", "label."))
def list_runs(
    request: Request,
    runtime: RuntimeDep,
    _: Auditor,
    workspace: WorkspaceDep,
    status: Annotated[list[Status] | None, Query(max_length=5)] = None,
    workflow: Annotated[list[Annotated[str, Query(max_length=200)]] | None, Query(max_length=50)] = None,
    triggered_by: Annotated[list[Annotated[str, Query(max_length=200)]] | None, Query(max_length=50)] = None,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
    q: Annotated[str | None, Query(max_length=4000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> RunsPublic:
    """Newest first. ``param.<name>=<value>`` and ``label.<key>=<value>`` filter by parameter
    and label; a repeated filter means any of its values, different filters combine with AND,
    and so does ``q``, the search expression of SPEC section 8 (see docs/api.md)."""
    try:
        runs, next_cursor = runtime.views.list_runs(
            status=status,
            workflow=workflow,
            triggered_by=triggered_by,
            created_after=iso_timestamp(created_after, "created_after"),
            created_before=iso_timestamp(created_before, "created_before"),
            params=prefixed(request, "param."),
            labels=prefixed(request, "label."),
            q=q,
            limit=limit,
            cursor=cursor,
            workspace=workspace,
        )
    except ValueError as exc:  # a cursor that is not one of ours
        raise InvalidRequest(str(exc)) from None
    return RunsPublic(runs=[RunPublic.model_validate(r) for r in runs], next_cursor=next_cursor)


@router.get("/compare", response_model=ComparePublic)
def compare_runs(
    runtime: RuntimeDep,
    principal: Auditor,
    named: NamedWorkspace,
    a: Annotated[str, Query(min_length=1, max_length=200)],
    b: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Parameter differences, definition hash equality and per-task differences (404 unless
    both runs are in the token's workspaces)."""
    for run_id in (a, b):
        check_run_in_scope(runtime, principal, named, run_id)
    return compare(run_events(runtime.ledger, a), run_events(runtime.ledger, b))


@router.get("/{run_id}", response_model=RunPublic)
def show_run(run_id: RunId, runtime: RuntimeDep, principal: Auditor, named: NamedWorkspace) -> dict[str, Any]:
    """Sensitive parameter values in the clear to operators and admins while the run's key
    exists; ``"[sensitive]"`` to auditors; ``"[erased]"`` to everyone once it is expunged."""
    # Confined as a ScopedRunId route, but by the workspace of the events the summary is
    # folded from: one read and one thread hand-off per request instead of two (the scope's
    # own lookup of the run's first event cost this read 5% of its server CPU on SQLite and
    # 30% on PostgreSQL: bench/workspaces_regression.py).
    summary = run_summary(runtime, run_id)
    require_in_scope(principal, named, run_id, summary["workspace"])
    if principal.has("operator") and not summary.get("expunged"):
        summary["parameters"] = sensitive_values(runtime, run_id)
    return summary


@router.get("/{run_id}/tasks", response_model=TasksPublic)
def list_tasks(run_id: ScopedRunId, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    """Every task with each attempt's evidence; ``expunged`` once the run is (SPEC 11)."""
    events = run_events(runtime.ledger, run_id)
    return {"tasks": tasks_of(events), "expunged": is_expunged(events)}


@router.get("/{run_id}/tasks/{task_name}", response_model=TaskPublic)
def show_task(run_id: ScopedRunId, task_name: TaskName, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    events = run_events(runtime.ledger, run_id)
    return find_task(events, task_name) | {"expunged": is_expunged(events)}


@router.get(
    "/{run_id}/tasks/{task_name}/logs",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def task_logs(
    run_id: ScopedRunId,
    task_name: TaskName,
    runtime: RuntimeDep,
    _: Auditor,
    stream: Literal["stdout", "stderr"] = "stdout",
    attempt: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> Response:
    """The text a task attempt wrote to stdout or stderr (the latest attempt by default)."""
    events = run_events(runtime.ledger, run_id)
    refuse_expunged(events)
    task = find_task(events, task_name)
    ref = log_ref(task, stream, attempt)
    data = read_file_checked(runtime, str(ref["sha256"]))
    return Response(data.decode("utf-8", errors="replace"), media_type="text/plain; charset=utf-8")


@router.get("/{run_id}/files", response_model=FilesPublic)
def list_files(run_id: ScopedRunId, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    return {"files": files_of(run_events(runtime.ledger, run_id), size_of=runtime.files.size)}


@router.get("/{run_id}/lineage", response_model=LineagePublic | dict[str, Any])
def lineage(
    run_id: RunId,
    runtime: RuntimeDep,
    principal: Auditor,
    named: NamedWorkspace,
    depth: Annotated[int, Query(ge=0, le=10)] = 1,
    format: Literal["json", "prov"] = "json",
) -> dict[str, Any]:
    """Runs, tasks, files and datasets linked by consumed/produced/part_of edges."""
    # Confined as a ScopedRunId route, but by the workspace the view's row of the run holds
    # (read by the walk's first statement, and the walk confined to it): no lookup and thread
    # hand-off of its own (bench/workspaces_regression.py, as show_run).
    found = runtime.views.run_lineage(run_id, depth=depth)
    if found is None:
        check_run_in_scope(runtime, principal, named, run_id)  # not in the view yet
        run_events(runtime.ledger, run_id)  # 404 for an unknown run
        graph: dict[str, Any] = {"nodes": [], "edges": []}
    else:
        require_in_scope(principal, named, run_id, found[0])
        graph = found[1]
    if format == "prov":
        return to_prov(graph)
    return dict(graph)


@router.get("/{run_id}/audit", response_model=AuditPublic)
def audit(run_id: ScopedRunId, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    """Every state transition and operator action on the run, in order."""
    entries = runtime.views.audit(run_id)
    if not entries:
        run_events(runtime.ledger, run_id)  # 404 for an unknown run
    return {"entries": entries or []}


@router.post("/{run_id}/cancel", status_code=202, response_model=RunAccepted)
def cancel(
    run_id: ScopedRunId, runtime: RuntimeDep, principal: Operator, body: CancelRequest | None = None
) -> RunAccepted:
    """``reason`` is recorded with the cancel (required with RUNLEDGER_REQUIRE_REASON=true)."""
    reason = body.reason if body is not None else None
    run = runtime.ledger.cancel(run_id, principal=principal.name, reason=reason)
    log.info("run_cancelled", run_id=run_id, by=principal.name)
    return RunAccepted(run_id=run_id, status=run.status.value)


@router.post("/{run_id}/replay", status_code=202, response_model=RunCreated)
def replay(
    run_id: ScopedRunId, runtime: RuntimeDep, principal: Operator, body: ReplayRequest | None = None
) -> RunCreated:
    overrides = body.param_overrides if body is not None else {}
    reason = body.reason if body is not None else None
    triggered = runtime.ledger.replay(run_id, overrides=overrides, principal=principal.name, reason=reason)
    log.info("run_replayed", run_id=triggered.run_id, replay_of=run_id)
    return RunCreated(run_id=triggered.run_id)


@router.post("/{run_id}/resume", status_code=202, response_model=RunCreated)
def resume(run_id: ScopedRunId, body: ResumeRequest, runtime: RuntimeDep, principal: Operator) -> RunCreated:
    triggered = runtime.ledger.resume(
        run_id,
        from_task=body.from_task,
        overrides=body.param_overrides,
        principal=principal.name,
        reason=body.reason,
    )
    log.info("run_resumed", run_id=triggered.run_id, resume_of=run_id, from_task=body.from_task)
    return RunCreated(run_id=triggered.run_id)


@router.post("/{run_id}/labels", response_model=RunLabelled)
def label(run_id: ScopedRunId, body: LabelRequest, runtime: RuntimeDep, principal: Operator) -> RunLabelled:
    """Set and remove labels (SPEC section 8): one ``Run.Labelled`` with its reason."""
    run = runtime.ledger.label(
        run_id, set_=body.set, remove=body.remove, principal=principal.name, reason=body.reason
    )
    log.info("run_labelled", run_id=run_id, by=principal.name, set=sorted(body.set), remove=body.remove)
    return RunLabelled(run_id=run_id, labels=run.labels)
