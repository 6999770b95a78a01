"""Request and response models of the HTTP API (SPEC section 2), named by purpose.

The response models live in :mod:`runledger.models` (the public client parses responses with
the same classes); the request models, which forbid unknown fields, live here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.domain.reports import Report
from ledger.domain.workspace import WORKSPACE_PATTERN
from runledger.models import (
    AttemptPublic,
    AuditEntry,
    AuditPublic,
    BatchProgress,
    BatchPublic,
    BatchTriggered,
    ClaimedRun,
    ComparePublic,
    ExpungePublic,
    FilePublic,
    FilesPublic,
    FileStored,
    Health,
    HoldPublic,
    JSONDict,
    LineagePublic,
    ProjectionPublic,
    ProjectionsPublic,
    Public,
    ReportAccepted,
    RunAccepted,
    RunCreated,
    RunLabelled,
    RunPublic,
    RunsPublic,
    RunTriggered,
    StatsPublic,
    TaskPublic,
    TasksPublic,
    TokenCreated,
    TokenPublic,
    TokensPublic,
    WorkflowPublic,
    WorkflowRegistered,
    WorkflowsPublic,
    WorkflowSummary,
    WorkflowVersionPublic,
    WorkspacePublic,
    WorkspacesPublic,
)

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- workflows -------------------------------------------------------------------------------
class RegisterWorkflow(Request):
    definition: JSONDict


class BatchSpec(Request):
    items: Annotated[list[Any], Field(min_length=1, max_length=10000)]
    input_param: Annotated[str, Field(min_length=1, max_length=100)]
    parallelism: Annotated[int, Field(ge=1, le=1000)] = 5


#: A label value as a request carries it; keys and counts are checked by the ledger
#: (``ledger.domain.labels``), so the API and the Python callers get the same answers.
LabelValue = Annotated[str, Field(max_length=256)]


class TriggerRequest(Request):
    parameters: JSONDict = {}
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    batch: BatchSpec | None = None
    labels: Annotated[dict[str, LabelValue], Field(max_length=64)] = {}


class LabelRequest(Request):
    """``POST /api/runs/{run_id}/labels``: keys to set and keys to remove, and why."""

    set: Annotated[dict[str, LabelValue], Field(max_length=64)] = {}
    remove: Annotated[list[Annotated[str, Field(max_length=63)]], Field(max_length=64)] = []
    reason: Annotated[str, Field(max_length=2000)] | None = None


# ---- runs ------------------------------------------------------------------------------------
#: Why an operator acts (SPEC 10); checked by ``ledger.reasons.check_reason``.
Reason = Annotated[str, Field(max_length=2000)] | None


class CancelRequest(Request):
    reason: Reason = None


class ReplayRequest(Request):
    param_overrides: JSONDict = {}
    reason: Reason = None


class ExpungeRequest(Request):
    reason: Annotated[str, Field(max_length=2000)] | None = None


class HoldRequest(Request):
    reason: Annotated[str, Field(max_length=2000)] | None = None


class ResumeRequest(Request):
    from_task: Annotated[str, Field(min_length=1, max_length=100)]
    param_overrides: JSONDict = {}
    reason: Reason = None


# ---- workers ---------------------------------------------------------------------------------
class ClaimRequest(Request):
    worker_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")] | None = (
        None
    )


class ReportRequest(Request):
    events: Annotated[list[Report], Field(min_length=1, max_length=1000)]
    worker_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")] | None = (
        None
    )


# ---- tokens ----------------------------------------------------------------------------------
class TokenRequest(Request):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Literal["auditor", "operator", "admin", "worker"]
    #: (SPEC 9) the workspaces it covers, or ``["*"]`` (every workspace, the default)
    workspaces: Annotated[
        list[Annotated[str, Field(pattern=r"^([a-z0-9_.-]{1,63}|\*)$")]], Field(min_length=1, max_length=100)
    ] = ["*"]


class WorkspaceRequest(Request):
    name: Annotated[str, Field(pattern=WORKSPACE_PATTERN)]


__all__ = [
    "AttemptPublic",
    "AuditEntry",
    "AuditPublic",
    "BatchProgress",
    "BatchPublic",
    "BatchSpec",
    "BatchTriggered",
    "ClaimRequest",
    "ClaimedRun",
    "ComparePublic",
    "ExpungePublic",
    "ExpungeRequest",
    "FilePublic",
    "FileStored",
    "FilesPublic",
    "Health",
    "HoldPublic",
    "HoldRequest",
    "JSONDict",
    "LabelRequest",
    "LineagePublic",
    "ProjectionPublic",
    "ProjectionsPublic",
    "Public",
    "RegisterWorkflow",
    "ReplayRequest",
    "ReportAccepted",
    "ReportRequest",
    "Request",
    "ResumeRequest",
    "RunAccepted",
    "RunCreated",
    "RunLabelled",
    "RunPublic",
    "RunTriggered",
    "RunsPublic",
    "Sha256",
    "StatsPublic",
    "TaskPublic",
    "TasksPublic",
    "TokenCreated",
    "TokenPublic",
    "TokenRequest",
    "TokensPublic",
    "TriggerRequest",
    "WorkflowPublic",
    "WorkflowRegistered",
    "WorkflowSummary",
    "WorkflowVersionPublic",
    "WorkflowsPublic",
    "WorkspacePublic",
    "WorkspaceRequest",
    "WorkspacesPublic",
]


# ---- signatures (SPEC section 10) ------------------------------------------------------------
class SigningKeyRequest(Request):
    public_key: Annotated[str, Field(min_length=1, max_length=2000)]


class SignatureRequestBody(Request):
    meaning: Literal["reviewed", "approved", "rejected", "responsibility", "authorship"]
    reason: Reason = None
    #: UTC ISO 8601 with microseconds and a ``Z``, exactly as signed.
    signed_at: Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"format": "date-time"})]
    head_hash: Sha256
    key_fingerprint: Sha256
    signature: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]


__all__ += ["CancelRequest", "SignatureRequestBody", "SigningKeyRequest"]
