"""The public response models of the HTTP API (SPEC sections 2 and 6), named by purpose.

One definition for both sides: ``api.models`` imports these as the routes' response models and
the client (``runledger.Client``) parses responses with them, so the two cannot drift. This
module imports nothing of the server. Response models allow extra fields (the SPEC permits
them).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONDict = dict[str, Any]
#: An RFC 3339 UTC timestamp (``2026-01-02T03:04:05.000000Z``), typed so in the OpenAPI schema.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Public(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- workflows -------------------------------------------------------------------------------
class WorkflowRegistered(Public):
    name: str
    version: int
    definition_hash: str


class WorkflowVersionPublic(Public):
    version: int
    definition_hash: str
    registered_at: Timestamp
    registered_by: str


class WorkflowSummary(Public):
    name: str
    active_version: int
    definition_hash: str
    registered_at: Timestamp
    versions: int


class WorkflowsPublic(Public):
    workflows: list[WorkflowSummary]


class WorkflowPublic(Public):
    name: str
    active_version: int
    version: int
    definition_hash: str
    definition: JSONDict
    versions: list[WorkflowVersionPublic]


class RunTriggered(Public):
    run_id: str
    status: str
    definition_hash: str


class BatchTriggered(Public):
    batch_id: str
    run_ids: list[str]


# ---- runs ------------------------------------------------------------------------------------
class RunPublic(Public):
    run_id: str
    workflow: str
    version: int | None = None
    definition_hash: str | None = None
    engine_version: str | None = None
    status: str
    triggered_by: str | None = None
    trigger_kind: str | None = None
    parameters: JSONDict = {}
    created_at: Timestamp | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    duration_seconds: float | None = None
    tasks_total: int | None = None
    tasks_succeeded: int | None = None
    tasks_failed: int | None = None
    retry_count: int | None = None
    error: str | None = None
    outputs: dict[str, JSONDict] = {}
    replay_of: str | None = None
    resume_of: str | None = None
    batch_id: str | None = None
    late_events: list[JSONDict] = []
    #: (SPEC 9) the run's workspace
    workspace: str = "default"
    labels: dict[str, str] = {}
    #: A legal hold is on: retention skips the run and expunging it answers 409.
    held: bool = False
    #: Expunged (SPEC section 11): sensitive values read ``"[erased]"``, logs and files 410.
    expunged: bool = False


class RunLabelled(Public):
    """The answer to ``POST /api/runs/{run_id}/labels``: the run's labels after the change."""

    run_id: str
    labels: dict[str, str]


class RunsPublic(Public):
    runs: list[RunPublic]
    next_cursor: str | None


class ExpungePublic(Public):
    """What an expunge did; ``recorded`` is False when the run was expunged already (the
    answer then repeats what the first expunge did, and nothing new is written)."""

    run_id: str
    expunged: bool = True
    recorded: bool
    files_deleted: list[str]
    key_destroyed: bool


class HoldPublic(Public):
    run_id: str
    held: bool
    #: False when the hold was already on (placing) or already off (releasing).
    recorded: bool


class AttemptPublic(Public):
    attempt: int
    status: str
    exit_code: int | None = None
    #: The signal that ended the attempt (``SIGTERM``), when it was ended by one.
    signal: str | None = None
    command: list[str] | None = None


class TaskPublic(Public):
    name: str
    status: str
    attempts: list[AttemptPublic]
    source_run_id: str | None = None
    #: The run is expunged (SPEC section 11): sensitive values in commands read ``"[erased]"``.
    expunged: bool = False


class TasksPublic(Public):
    tasks: list[TaskPublic]
    #: The run is expunged (SPEC section 11): sensitive values in commands read ``"[erased]"``.
    expunged: bool = False


class FilePublic(Public):
    path: str | None
    sha256: str
    size: int | None
    role: Literal["input", "output"]
    task: str | None


class FilesPublic(Public):
    files: list[FilePublic]


class FileStored(Public):
    sha256: str
    size: int


class LineagePublic(Public):
    nodes: list[JSONDict]
    edges: list[JSONDict]


class AuditEntry(Public):
    at: Timestamp
    actor: str | None
    action: str
    from_status: str | None = None
    to_status: str | None = None
    detail: Any = None
    #: Why (SPEC 10): the reason a cancel, replay, resume, label, hold or expunge was given.
    reason: str | None = None


class AuditPublic(Public):
    entries: list[AuditEntry]


class RunCreated(Public):
    run_id: str


class RunAccepted(Public):
    run_id: str
    status: str


class ComparePublic(Public):
    a: str
    b: str
    definition_hash_equal: bool
    parameters: dict[str, JSONDict]
    tasks: list[JSONDict]


# ---- stats, batches, projections -------------------------------------------------------------
class StatsPublic(Public):
    total_runs: int
    by_status: dict[str, int]
    avg_duration_seconds: float | None
    p50_duration_seconds: float | None
    p95_duration_seconds: float | None
    per_workflow: list[JSONDict]


class BatchProgress(Public):
    total_items: int
    processed_items: int
    failed_items: int


class BatchItemPublic(Public):
    item: Any
    run_id: str
    status: str


class BatchPublic(Public):
    batch_id: str
    status: str
    progress: BatchProgress
    run_ids: list[str]
    items: list[BatchItemPublic]


class ProjectionPublic(Public):
    name: str
    schema_version: int | str
    position: int
    lag: int
    state: str


class ProjectionsPublic(Public):
    projections: list[ProjectionPublic]


# ---- workers ---------------------------------------------------------------------------------
class ClaimedRun(Public):
    run_id: str
    worker_id: str
    lease_expires_at: Timestamp | None
    workflow: str
    version: int
    definition_hash: str
    definition: JSONDict
    parameters: JSONDict


class ReportAccepted(Public):
    run_id: str
    status: str
    events_appended: int


class Health(Public):
    status: str
    version: str


# ---- tokens ----------------------------------------------------------------------------------
class TokenPublic(Public):
    id: str
    name: str
    role: str
    created_at: Timestamp
    revoked_at: Timestamp | None
    #: (SPEC 9) the workspaces the token covers, or ``["*"]`` for all
    workspaces: list[str] = ["*"]


class TokenCreated(TokenPublic):
    token: str


class TokensPublic(Public):
    tokens: list[TokenPublic]


# ---- workspaces (SPEC 9) --------------------------------------------------------------------
class WorkspacePublic(Public):
    name: str
    #: None for ``default``, which exists without an event
    created_at: Timestamp | None = None
    created_by: str | None = None


class WorkspacesPublic(Public):
    workspaces: list[WorkspacePublic]


# ---- events, ledger --------------------------------------------------------------------------
class EventPublic(Public):
    """One event as SPEC section 1 shows it."""

    stream: str
    sequence: int
    position: int
    type: str
    timestamp: str
    data: JSONDict
    hash: str
    prev_hash: str | None


class EventsPublic(Public):
    events: list[EventPublic]


class DigestPublic(Public):
    tree_size: int
    root_hash: str
    at: str | None = None


class InclusionProofPublic(Public):
    leaf_index: int
    tree_size: int
    audit_path: list[str]


class ConsistencyProofPublic(Public):
    first: int
    second: int
    proof: list[str]


class VerifyReportPublic(Public):
    ok: bool
    events_checked: int
    problems: list[Any]


# ---- signatures and the ledger-wide audit trail (SPEC section 10) ----------------------------
class SigningKeyPublic(Public):
    fingerprint: str
    principal: str
    public_key: str
    registered_at: Timestamp
    revoked_at: Timestamp | None = None


class SigningKeysPublic(Public):
    keys: list[SigningKeyPublic]


class SignaturePublic(Public):
    #: The signer's printed name (their token's name).
    signer: str
    role: str
    meaning: str
    reason: str | None = None
    #: When the signer signed (UTC); ``recorded_at`` is when the ledger recorded it.
    signed_at: Timestamp
    recorded_at: Timestamp
    head_hash: str
    key_fingerprint: str
    signature: str
    hash: str
    position: int
    #: The signature checks out against the registered key, the run and the head it names.
    valid: bool
    problem: str | None = None


class SignaturesPublic(Public):
    signatures: list[SignaturePublic]


class LedgerAuditEntry(Public):
    at: Timestamp
    actor: str | None
    action: str
    workspace: str | None = None
    run_id: str | None = None
    detail: Any = None
    reason: str | None = None
    position: int


class LedgerAuditPublic(Public):
    entries: list[LedgerAuditEntry]
    next_cursor: str | None = None
