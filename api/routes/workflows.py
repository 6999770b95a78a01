"""``/api/workflows``: register, list, show and trigger workflows."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import Auditor, Operator, RuntimeDep
from api.errors import problem
from api.models import (
    BatchTriggered,
    RegisterWorkflow,
    RunTriggered,
    TriggerRequest,
    WorkflowPublic,
    WorkflowRegistered,
    WorkflowsPublic,
    WorkflowSummary,
    WorkflowVersionPublic,
)
from api.runtime import Runtime
from api.scope import WorkspaceDep
from ledger.domain.definition import load_definition_text
from ledger.domain.inputs import loads_json
from ledger.domain.workflow import Workflow, workflow_stream
from ledger.errors import InvalidDefinition, InvalidRequest, NotFound

router = APIRouter(prefix="/api/workflows", tags=["workflows"])
log = structlog.get_logger()

WorkflowName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")]
DefinitionHash = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}

_REGISTER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["definition"],
                    "additionalProperties": False,
                    "properties": {"definition": {"type": "object"}},
                }
            },
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


def _parse_registration(body: bytes, content_type: str) -> dict[str, Any]:
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDefinition("the body is not UTF-8 text") from None
    if media in YAML_TYPES:
        return load_definition_text(text)
    try:
        payload = loads_json(text)
    except ValueError as exc:  # orjson.JSONDecodeError
        raise InvalidDefinition(f"the body is not valid JSON: {exc}") from None
    try:
        request = RegisterWorkflow.model_validate(payload)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False), body=payload) from None
    return dict(request.definition)  # checked as JSON by the ledger; no YAML round trip


@router.post(
    "",
    status_code=201,
    response_model=WorkflowRegistered,
    openapi_extra=_REGISTER_BODY,
    responses={200: {"model": WorkflowRegistered, "description": "identical to an existing version"}},
)
async def register_workflow(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    principal: Operator,
    workspace: WorkspaceDep,
) -> WorkflowRegistered | Response:
    """Register a definition (JSON ``{"definition": {...}}`` or YAML text); 200 when identical."""
    media = request.headers.get("content-type", "application/json")
    if media.split(";", 1)[0].strip().lower() not in YAML_TYPES | {"application/json"}:
        return problem(415, "send application/json or application/yaml")
    body = await request.body()
    raw = _parse_registration(body, media)
    registration = await run_in_threadpool(
        partial(runtime.ledger.register_workflow, raw, principal=principal.name, workspace=workspace)
    )
    response.status_code = 201 if registration.created else 200
    log.info(
        "workflow_registered",
        workflow=registration.name,
        version=registration.version,
        created=registration.created,
    )
    return WorkflowRegistered(
        name=registration.name, version=registration.version, definition_hash=registration.definition_hash
    )


def _summary(workflow: Workflow) -> WorkflowSummary:
    active = workflow.active
    return WorkflowSummary(
        name=workflow.name,
        active_version=active.version,
        definition_hash=active.definition_hash,
        registered_at=active.registered_at,
        versions=len(workflow.versions),
    )


@router.get("", response_model=WorkflowsPublic)
def list_workflows(runtime: RuntimeDep, _: Auditor, workspace: WorkspaceDep) -> WorkflowsPublic:
    """The workspace's workflows (``workflow:<name>`` in ``default``, ``workflow:<ws>/<name>``
    in another: no workflow name holds a ``/``)."""
    prefix = workflow_stream("", workspace)
    names = [n[len(prefix) :] for n in runtime.ledger.reader.stream_ids(prefix)]
    workflows = [runtime.ledger.get_workflow(name, workspace) for name in names if "/" not in name]
    return WorkflowsPublic(workflows=[_summary(w) for w in workflows])


@router.get("/{name}", response_model=WorkflowPublic)
def show_workflow(
    name: WorkflowName,
    runtime: RuntimeDep,
    _: Auditor,
    workspace: WorkspaceDep,
    version: Annotated[int | None, Query(ge=1, description="a version other than the active one")] = None,
) -> WorkflowPublic:
    workflow = runtime.ledger.get_workflow(name, workspace)
    active = workflow.active
    if version is not None:
        found = [v for v in workflow.versions if v.version == version]
        if not found:
            raise NotFound(f"workflow {name!r} has no version {version}")
        active = found[0]
    return WorkflowPublic(
        name=workflow.name,
        active_version=workflow.active.version,
        version=active.version,
        definition_hash=active.definition_hash,
        definition=active.definition,
        registered_at=active.registered_at,
        registered_by=active.registered_by,
        versions=[
            WorkflowVersionPublic(
                version=v.version,
                definition_hash=v.definition_hash,
                registered_at=v.registered_at,
                registered_by=v.registered_by,
            )
            for v in workflow.versions
        ],
    )


_TRIGGER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": RunTriggered, "description": "a repeated idempotency_key: the first run"},
}


def _trigger(
    runtime: Runtime,
    response: Response,
    body: TriggerRequest,
    principal: Principal,
    workspace: str,
    *,
    workflow: str | None = None,
    definition_hash: str | None = None,
) -> RunTriggered | BatchTriggered:
    ledger = runtime.ledger
    if body.batch is not None:
        if body.idempotency_key is not None:
            raise InvalidRequest("idempotency_key is not supported for batch triggers")
        batch = ledger.trigger_batch(
            workflow=workflow,
            definition_hash=definition_hash,
            items=body.batch.items,
            input_param=body.batch.input_param,
            parallelism=body.batch.parallelism,
            parameters=body.parameters,
            principal=principal.name,
            workspace=workspace,
            labels=body.labels,
        )
        response.status_code = 202
        log.info("batch_triggered", batch_id=batch.batch_id, runs=len(batch.run_ids))
        return BatchTriggered(batch_id=batch.batch_id, run_ids=batch.run_ids)
    triggered = ledger.trigger(
        workflow=workflow,
        definition_hash=definition_hash,
        parameters=body.parameters,
        principal=principal.name,
        idempotency_key=body.idempotency_key,
        workspace=workspace,
        labels=body.labels,
    )
    status = "pending"
    if not triggered.created:
        status = ledger.get_run(triggered.run_id).status.value
    response.status_code = 202 if triggered.created else 200
    log.info("run_triggered", run_id=triggered.run_id, created=triggered.created)
    return RunTriggered(run_id=triggered.run_id, status=status, definition_hash=triggered.definition_hash)


@router.post(
    "/by-hash/{definition_hash}/trigger",
    status_code=202,
    response_model=RunTriggered | BatchTriggered,
    responses=_TRIGGER_RESPONSES,
)
def trigger_by_hash(
    definition_hash: DefinitionHash,
    body: TriggerRequest,
    response: Response,
    runtime: RuntimeDep,
    principal: Operator,
    workspace: WorkspaceDep,
) -> RunTriggered | BatchTriggered:
    """Trigger the exact definition with this hash, even after newer versions exist."""
    return _trigger(runtime, response, body, principal, workspace, definition_hash=definition_hash)


@router.post(
    "/{name}/trigger",
    status_code=202,
    response_model=RunTriggered | BatchTriggered,
    responses=_TRIGGER_RESPONSES,
)
def trigger_workflow(
    name: WorkflowName,
    body: TriggerRequest,
    response: Response,
    runtime: RuntimeDep,
    principal: Operator,
    workspace: WorkspaceDep,
) -> RunTriggered | BatchTriggered:
    """Trigger the active version: 202 with the new run (or batch), 200 for a repeated key."""
    return _trigger(runtime, response, body, principal, workspace, workflow=name)
