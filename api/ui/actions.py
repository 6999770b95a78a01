"""The operator actions of the run page: cancel, replay with overrides, resume from a task,
labels. Each is a form with a CSRF token and a reason (``ledger.reasons.check_reason``), needs
the operator role, and calls the same ``Ledger`` command as the API route."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import RuntimeDep
from api.ui import wiring
from api.ui.render import UiRoute, Viewer, check_form, require_operator
from api.ui.scope import ScopedRun
from api.ui.session import Session
from ledger.domain.inputs import InputRefused, check_value, loads_json
from ledger.errors import InvalidRequest
from ledger.reasons import check_reason

router = APIRouter(route_class=UiRoute, include_in_schema=False)
log = structlog.get_logger()

Csrf = Annotated[str, Form(max_length=200)]
Reason = Annotated[str, Form(max_length=4000)]


def operator_form(request: Request, runtime: RuntimeDep, session: Viewer, csrf: Csrf = "") -> Session:
    """The form's CSRF token, then the operator role, then (the next dependency) the run's
    workspace: a forged form learns nothing, not even whether the run exists."""
    check_form(request, runtime, session, csrf)
    require_operator(session)
    return session


OperatorForm = Annotated[Session, Depends(operator_form)]


def parse_overrides(text: str) -> dict[str, Any]:
    """``name=value`` lines (a value that reads as JSON is taken as JSON: ``3``, ``true``,
    ``"x"``, ``[1]``; otherwise as text). Blank lines are skipped."""
    overrides: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, raw = line.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidRequest(f"override line {number} is not name=value: {line[:80]!r}")
        raw = raw.strip()
        try:
            value: Any = loads_json(raw, where=f"override {name}")
        except InputRefused:
            raise
        except ValueError:
            value = raw
        check_value(value, where=f"override {name}")
        overrides[name] = value
    return overrides


@router.post("/runs/{run_id}/cancel")
def cancel(
    session: OperatorForm,
    run_id: ScopedRun,
    runtime: RuntimeDep,
    reason: Reason = "",
) -> Response:
    why = check_reason(reason, required=runtime.settings.require_reason, action="cancel")
    runtime.ledger.cancel(run_id, principal=session.principal.name, reason=why)
    log.info("run_cancelled", run_id=run_id, by=session.principal.name, via="ui")
    return RedirectResponse(f"/runs/{run_id}#audit", status_code=303)


@router.post("/runs/{run_id}/replay")
def replay(
    session: OperatorForm,
    run_id: ScopedRun,
    runtime: RuntimeDep,
    reason: Reason = "",
    overrides: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    why = check_reason(reason, required=runtime.settings.require_reason, action="replay")
    values = parse_overrides(overrides)
    triggered = runtime.ledger.replay(run_id, overrides=values, principal=session.principal.name, reason=why)
    log.info("run_replayed", run_id=triggered.run_id, replay_of=run_id, via="ui")
    return RedirectResponse(f"/runs/{triggered.run_id}", status_code=303)


@router.post("/runs/{run_id}/resume")
def resume(
    session: OperatorForm,
    run_id: ScopedRun,
    runtime: RuntimeDep,
    reason: Reason = "",
    from_task: Annotated[str, Form(max_length=200)] = "",
    overrides: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    why = check_reason(reason, required=runtime.settings.require_reason, action="resume")
    if not from_task:
        raise InvalidRequest("resume needs the task to resume from")
    triggered = runtime.ledger.resume(
        run_id,
        from_task=from_task,
        overrides=parse_overrides(overrides),
        principal=session.principal.name,
        reason=why,
    )
    log.info("run_resumed", run_id=triggered.run_id, resume_of=run_id, from_task=from_task, via="ui")
    return RedirectResponse(f"/runs/{triggered.run_id}", status_code=303)


@router.post("/runs/{run_id}/labels")
def label(
    session: OperatorForm,
    run_id: ScopedRun,
    runtime: RuntimeDep,
    reason: Reason = "",
    labels: Annotated[str, Form(max_length=10_000)] = "",
    remove: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    why = check_reason(reason, required=runtime.settings.require_reason, action="labels")
    values = {str(k): str(v) for k, v in parse_overrides(labels).items()}
    keys = [line.strip() for line in remove.splitlines() if line.strip()]
    if not values and not keys:
        raise InvalidRequest("labels: set or remove at least one label")
    wiring.label_run(runtime, run_id, labels=values, remove=keys, reason=why, principal=session.principal)
    log.info(
        "run_labelled", run_id=run_id, by=session.principal.name, set=sorted(values), remove=keys, via="ui"
    )
    return RedirectResponse(f"/runs/{run_id}#labels", status_code=303)
