"""The Run aggregate: one execution of one workflow version, its own event stream.

Run states and their legal transitions are SPEC section 1's, in :mod:`ledger.domain.status`,
which every event's ``apply`` asks; a command checks first, then records, so an illegal
request raises and leaves nothing pending.

Past 300 lines on purpose: the stored event classes are nested in :class:`Run` (their
topics and their ``TYPE``, which every event hash covers, name them ``Run.<Event>``), so they
cannot move to modules of their own; the commands stay beside the events they record.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.domain.access import role_at_least
from ledger.domain.aggregate import ChainedAggregate, StreamCreated, StreamEvent
from ledger.domain.labels import apply_labels, changed_labels
from ledger.domain.lineage_identity import LINEAGE_FIELDS, job_key, lineage_digest
from ledger.domain.status import (
    LEGAL_TRANSITIONS,
    TERMINAL,
    RunStatus,
    TaskStatus,
    error_after,
    status_after,
    task_status_after,
)
from ledger.domain.workspace import DEFAULT_WORKSPACE
from ledger.errors import Conflict, IllegalTransition, InvalidRequest

TRIGGER_KINDS = frozenset({"name", "hash", "replay", "resume", "batch", "openlineage"})


@dataclass
class TaskState:
    status: str = TaskStatus.PENDING  # pending | running | success | failed | reused | killed
    attempts: int = 0
    output_vars: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)


class Run(ChainedAggregate):
    """A run's life: triggered, started by a worker, its tasks, and how it ended."""

    def __init__(
        self,
        workflow: str,
        version: int,
        definition_hash: str,
        definition: dict[str, Any],
        engine_version: str,
        triggered_by: str,
        trigger_kind: str,
        parameters: dict[str, Any],
        replay_of: str | None,
        resume_of: str | None,
        resume_from_task: str | None,
        batch_id: str | None,
        idempotency_key: str | None,
        workspace: str = DEFAULT_WORKSPACE,
        reason: str | None = None,
    ) -> None:
        self.workflow = workflow
        self.workspace = workspace
        self.workflow_version = version
        self.definition_hash = definition_hash
        self.definition = definition
        self.triggered_by = triggered_by
        self.trigger_kind = trigger_kind
        self.parameters = parameters
        self.replay_of = replay_of
        self.resume_of = resume_of
        self.resume_from_task = resume_from_task
        self.batch_id = batch_id
        self.status = RunStatus.PENDING
        self.worker_id: str | None = None
        self.lease_expires_at: str | None = None
        self.tasks: dict[str, TaskState] = {}
        self.error: str | None = None
        #: The OpenLineage job ``(namespace, name)`` of the run's first event (None: not one).
        self.lineage_job: tuple[str, str] | None = None
        #: Its labels (SPEC section 8), as ``Run.Labelled`` events left them.
        self.labels: dict[str, str] = {}
        #: The approval gate the run waits at, its ``approval`` and the signatures since.
        self.gate: str | None = None
        self.gate_approval: dict[str, Any] = {}
        self.gate_signatures: list[dict[str, Any]] = []

    #: Set by the trigger and never changed after: copies share them.
    _SHARED_ON_COPY = frozenset({"definition", "parameters"})
    _IMMUTABLE = (str, int, float, bool, type(None), datetime, RunStatus)

    def __deepcopy__(self, memo: dict[int, Any]) -> Run:
        """Commands work on copies of cached runs. The definition and parameters are the
        same for the run's whole life, and a task's outputs and output variables are
        replaced, never changed in place, so copies share them; a task's state is copied,
        and anything else is deep-copied."""
        clone = object.__new__(type(self))
        for name, value in self.__dict__.items():
            if name in self._SHARED_ON_COPY or isinstance(value, self._IMMUTABLE):
                clone.__dict__[name] = value
            elif name == "tasks":
                clone.__dict__[name] = {task: copy.copy(state) for task, state in value.items()}
            else:
                clone.__dict__[name] = copy.deepcopy(value, memo)
        clone._frozen = False  # a copy takes commands again
        return clone

    # ---- events ---------------------------------------------------------------------------
    class Triggered(StreamCreated):
        workflow: str
        version: int
        definition_hash: str
        definition: dict[str, Any]
        engine_version: str
        triggered_by: str
        trigger_kind: str
        parameters: dict[str, Any]
        replay_of: str | None
        resume_of: str | None
        resume_from_task: str | None
        batch_id: str | None
        idempotency_key: str | None
        #: The run's workspace (SPEC 9); absent from events written before: ``default``.
        workspace: str = DEFAULT_WORKSPACE
        #: Why an operator replayed or resumed a run (SPEC 10); None in events before it.
        reason: str | None = None

    class Started(StreamEvent):
        """A worker claimed the run and holds its lease."""

        worker_id: str
        lease_expires_at: str

        def apply(self, run: Run) -> None:
            _move(run, self)
            run.worker_id = self.worker_id
            run.lease_expires_at = self.lease_expires_at

    class LeaseRenewed(StreamEvent):
        worker_id: str
        lease_expires_at: str

        def apply(self, run: Run) -> None:
            run.lease_expires_at = self.lease_expires_at

    class TaskStarted(StreamEvent):
        task: str
        attempt: int
        command: list[str] | None
        host: str | None
        started_at: str

        def apply(self, run: Run) -> None:
            _move_task(run, self).attempts = self.attempt

    class TaskFinished(StreamEvent):
        """The evidence of one task attempt (SPEC section 1)."""

        task: str
        attempt: int
        status: str
        exit_code: int | None
        command: list[str] | None
        image: str | None
        image_hash: str | None
        executable: str | None
        executable_sha256: str | None
        inputs: list[dict[str, Any]]
        outputs: list[dict[str, Any]]
        output_vars: dict[str, Any]
        stdout: dict[str, Any] | None
        stderr: dict[str, Any] | None
        started_at: str
        ended_at: str
        duration_seconds: float
        host: str | None
        error: str | None

        def apply(self, run: Run) -> None:
            state = _move_task(run, self)
            state.attempts = self.attempt
            if state.status == TaskStatus.SUCCESS:
                state.output_vars = dict(self.output_vars)
                state.outputs = list(self.outputs)

    class TaskReused(StreamEvent):
        """A task not executed again: its recorded outputs restored from ``source_run_id``."""

        task: str
        source_run_id: str
        outputs: list[dict[str, Any]]
        output_vars: dict[str, Any]
        #: The worker that recorded it (the run's holder); None in events stored before 0.x.
        by: str | None = None

        def apply(self, run: Run) -> None:
            state = _move_task(run, self)
            state.output_vars = dict(self.output_vars)
            state.outputs = list(self.outputs)

    class Succeeded(StreamEvent):
        by: str

        def apply(self, run: Run) -> None:
            _move(run, self)

    class Failed(StreamEvent):
        error: str
        by: str

        def apply(self, run: Run) -> None:
            _move(run, self)

    class Killed(StreamEvent):
        by: str
        reason: str | None

        def apply(self, run: Run) -> None:
            _move(run, self)

    # ---- commands -------------------------------------------------------------------------
    @classmethod
    def trigger(cls, *, run_id: str, at: datetime, **facts: Any) -> Run:
        if facts["trigger_kind"] not in TRIGGER_KINDS:
            raise InvalidRequest(f"unknown trigger kind {facts['trigger_kind']!r}")
        # every field is hashed as stored: a defaulted one must be in the data too
        facts.setdefault("reason", None)
        return cls.create_stream(cls.Triggered, stream=run_id, at=at, **facts)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def _check_transition(self, to: RunStatus) -> None:
        if (self.status, to) not in LEGAL_TRANSITIONS:
            raise IllegalTransition(f"run {self.id} is {self.status.value}; it cannot become {to.value}")

    def _check_worker(self, worker_id: str) -> None:
        if self.status != RunStatus.RUNNING:
            raise Conflict(f"run {self.id} is {self.status.value}, not running")
        if self.worker_id != worker_id:
            raise Conflict(f"run {self.id} is held by another worker")

    def claim(self, *, worker_id: str, lease_expires_at: str, at: datetime) -> None:
        if self.status != RunStatus.PENDING:
            raise Conflict(f"run {self.id} is {self.status.value}; it cannot be claimed")
        self.record(self.Started, at=at, worker_id=worker_id, lease_expires_at=lease_expires_at)

    def renew_lease(self, *, worker_id: str, lease_expires_at: str, at: datetime) -> None:
        self._check_worker(worker_id)
        self.record(self.LeaseRenewed, at=at, worker_id=worker_id, lease_expires_at=lease_expires_at)

    def _check_task_name(self, task: str) -> None:
        names = {t["name"] for t in self.definition.get("tasks", [])}
        if names and task not in names:
            raise InvalidRequest(f"workflow {self.workflow!r} has no task {task!r}")

    def start_task(
        self,
        *,
        worker_id: str,
        task: str,
        attempt: int,
        command: list[str] | None,
        host: str | None,
        started_at: str,
        at: datetime,
    ) -> None:
        self._check_worker(worker_id)
        self._check_task_name(task)
        state = self.tasks.get(task, TaskState())
        if state.status in {TaskStatus.RUNNING, TaskStatus.SUCCESS, TaskStatus.REUSED}:
            raise IllegalTransition(f"task {task!r} is already {state.status}")
        if attempt != state.attempts + 1:
            raise IllegalTransition(
                f"task {task!r}: attempt {attempt} does not follow attempt {state.attempts}"
            )
        self.record(
            self.TaskStarted,
            at=at,
            task=task,
            attempt=attempt,
            command=command,
            host=host,
            started_at=started_at,
        )

    def finish_task(self, *, worker_id: str, at: datetime, **evidence: Any) -> None:
        """Close a running attempt with its evidence. Once an operator has cancelled the run,
        the worker that held it may still close its attempts, as ``killed`` only (SPEC
        section 5: a killed attempt is closed with the evidence gathered so far)."""
        if self.status == RunStatus.KILLED and evidence["status"] == TaskStatus.KILLED:
            if self.worker_id != worker_id:
                raise Conflict(f"run {self.id} is held by another worker")
        else:
            self._check_worker(worker_id)
        task = evidence["task"]
        state = self.tasks.get(task)
        if state is None or state.status != TaskStatus.RUNNING:
            raise IllegalTransition(f"task {task!r} was not started")
        if evidence["attempt"] != state.attempts:
            raise IllegalTransition(
                f"task {task!r}: attempt {evidence['attempt']} is not the running attempt"
            )
        if evidence["status"] not in {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.KILLED}:
            raise InvalidRequest("a finished task's status is success, failed or killed")
        self.record(self.TaskFinished, at=at, **evidence)

    def reuse_task(
        self,
        *,
        worker_id: str,
        task: str,
        source_run_id: str,
        outputs: list[dict[str, Any]],
        output_vars: dict[str, Any],
        at: datetime,
    ) -> None:
        self._check_worker(worker_id)
        self._check_task_name(task)
        if task in self.tasks:
            raise IllegalTransition(f"task {task!r} has already started")
        self.record(
            self.TaskReused,
            at=at,
            task=task,
            source_run_id=source_run_id,
            outputs=outputs,
            output_vars=output_vars,
            by=worker_id,
        )

    def succeed(self, *, worker_id: str, at: datetime) -> None:
        self._check_worker(worker_id)
        running = [name for name, state in self.tasks.items() if state.status == TaskStatus.RUNNING]
        if running:
            raise IllegalTransition(f"tasks still running: {', '.join(sorted(running))}")
        self._check_transition(RunStatus.SUCCESS)
        self.record(self.Succeeded, at=at, by=worker_id)

    def fail(self, *, error: str, by: str, at: datetime, worker_id: str | None = None) -> None:
        if worker_id is not None:
            self._check_worker(worker_id)
        self._check_transition(RunStatus.FAILED)
        self.record(self.Failed, at=at, error=error, by=by)

    def cancel(self, *, by: str, reason: str | None, at: datetime) -> None:
        """An operator's cancel: the run ends ``killed`` (the event keeps its stored name)."""
        self._check_transition(RunStatus.KILLED)
        self.record(self.Killed, at=at, by=by, reason=reason)

    # ---- labels (SPEC section 8) ---------------------------------------------------------
    class Labelled(StreamEvent):
        """Labels set or removed, at trigger (``by`` the triggering principal) or later."""

        set: dict[str, str]
        remove: list[str]
        by: str
        reason: str | None

        def apply(self, run: Run) -> None:
            run.labels = apply_labels(run.labels, self.set, self.remove)

    def label(
        self, *, set_: dict[str, Any], remove: list[Any], by: str, reason: str | None, at: datetime
    ) -> None:
        """Set and remove labels; any run, terminal or not, may be labelled."""
        to_set, to_remove = changed_labels(self.labels, set_, remove)
        self.record(self.Labelled, at=at, set=to_set, remove=to_remove, by=by, reason=reason)

    def lease_lapsed(self, now_iso: str) -> bool:
        return (
            self.status == RunStatus.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at < now_iso
        )

    # ---- signatures and approval gates (SPEC section 10) -----------------------------------
    class Signed(StreamEvent):
        """An electronic signature (21 CFR 11.50): the signer's printed name, role, the
        meaning, the reason, the time, and the Ed25519 signature over the run's head."""

        signer: str
        role: str
        meaning: str
        reason: str | None
        signed_at: str
        head_hash: str
        key_fingerprint: str
        signature: str

        def apply(self, run: Run) -> None:
            if run.status == RunStatus.WAITING:
                run.gate_signatures = [
                    *run.gate_signatures,
                    {"signer": self.signer, "role": self.role, "meaning": self.meaning},
                ]

    class GateReached(StreamEvent):
        """The worker reached an approval gate and let the run go until it is signed."""

        task: str
        approval: dict[str, Any]
        by: str

        def apply(self, run: Run) -> None:
            _move(run, self)
            _move_task(run, self)
            run.gate, run.gate_approval, run.gate_signatures = self.task, dict(self.approval), []
            run.worker_id = None

    class GateApproved(StreamEvent):
        """Enough signatures: the gate's task succeeded and the run may be claimed again."""

        task: str
        signers: list[str]

        def apply(self, run: Run) -> None:
            _move(run, self)
            _move_task(run, self)
            run.gate = None

    class GateRejected(StreamEvent):
        """A ``rejected`` signature at the gate (the run's ``Run.Failed`` follows)."""

        task: str
        by: str
        reason: str | None

        def apply(self, run: Run) -> None:
            _move_task(run, self)
            run.gate = None

    def sign(
        self,
        *,
        signer: str,
        role: str,
        meaning: str,
        reason: str | None,
        signed_at: str,
        head_hash: str,
        key_fingerprint: str,
        signature: str,
        at: datetime,
    ) -> None:
        """Record a signature made over the run's head (409 when ``head_hash`` is not the hash
        of its last event). At a waiting gate, a ``rejected`` from a principal of the gate's
        role fails the run naming the signer, and the last signature needed opens the gate."""
        if head_hash != self.last_hash:
            raise Conflict(
                f"run {self.id} has moved on: head_hash {head_hash} is not the hash of its last "
                f"event ({self.last_hash}); read the run again and sign what it is now"
            )
        self.record(
            self.Signed,
            at=at,
            signer=signer,
            role=role,
            meaning=meaning,
            reason=reason,
            signed_at=signed_at,
            head_hash=head_hash,
            key_fingerprint=key_fingerprint,
            signature=signature,
        )
        gate, approval = self.gate, self.gate_approval
        if self.status != RunStatus.WAITING or gate is None:
            return
        required_role = str(approval.get("role", "operator"))
        if meaning == "rejected" and role_at_least(role, required_role):
            self.record(self.GateRejected, at=at, task=gate, by=signer, reason=reason)
            error = f"rejected at approval gate {gate!r} by {signer}" + (f": {reason}" if reason else "")
            self.fail(error=error, by=signer, at=at)
            return
        signers = sorted(
            {
                s["signer"]
                for s in self.gate_signatures
                if s["meaning"] == approval.get("meaning", "approved")
                and role_at_least(s["role"], required_role)
            }
        )
        if len(signers) >= int(approval.get("signatures", 1)):
            self.record(self.GateApproved, at=at, task=gate, signers=signers)

    def reach_gate(self, *, worker_id: str, task: str, approval: dict[str, Any], at: datetime) -> None:
        """The worker holding the run reached approval gate ``task`` and lets the run go."""
        self._check_worker(worker_id)
        self._check_task_name(task)
        if task in self.tasks:
            raise IllegalTransition(f"approval gate {task!r} was already reached")
        running = [name for name, state in self.tasks.items() if state.status == TaskStatus.RUNNING]
        if running:
            raise IllegalTransition(f"tasks still running: {', '.join(sorted(running))}")
        self._check_transition(RunStatus.WAITING)
        self.record(self.GateReached, at=at, task=task, approval=approval, by=worker_id)

    # ---- OpenLineage (issue 7) ------------------------------------------------------------
    class LineageReported(StreamEvent):
        """One OpenLineage RunEvent from an outside engine, facets verbatim."""

        event_type: str
        event_time: str
        producer: str
        schema_url: str
        job: dict[str, Any]
        run_facets: dict[str, Any]
        inputs: list[dict[str, Any]]
        outputs: list[dict[str, Any]]
        parent: dict[str, Any] | None

        def apply(self, run: Run) -> None:
            facts = {name: getattr(self, name) for name in LINEAGE_FIELDS}
            run.lineage_digests().add(lineage_digest(facts))
            run.lineage_job = run.lineage_job or job_key(self.job)
            _move(run, self)

    def lineage_digests(self) -> set[str]:
        """The canonical SHA-256 of every RunEvent recorded, to drop exact repeats only."""
        digests: set[str] = self.__dict__.setdefault("_lineage_digests", set())
        return digests

    def record_lineage(self, *, at: datetime, **facts: Any) -> bool:
        """Record one OpenLineage RunEvent; False (nothing recorded) when an identical event
        (same canonical JSON, :func:`~ledger.domain.openlineage.lineage_digest`) was recorded.

        OpenLineage runs have no worker: the only rule is that a terminal run stays terminal
        (the event is still recorded, its status change is not applied). The run's job is
        its namespace and name as two values: an event of another job is refused.
        """
        if self.trigger_kind != "openlineage":
            raise Conflict(f"run {self.id} is not an OpenLineage run")
        job = job_key(facts["job"])
        if self.lineage_job is not None and self.lineage_job != job:
            raise Conflict(f"run {self.id} is of job {self.lineage_job!r}, not {job!r}")
        if lineage_digest(facts) in self.lineage_digests():
            return False
        self.record(self.LineageReported, at=at, **facts)
        return True

    # ---- holds and expunge (SPEC section 11) ------------------------------------------------
    #: A legal hold is on (retention skips the run, expunge refuses it); set by ``HoldPlaced``.
    held: bool = False
    #: The run's key is destroyed and its files deleted (``Expunged``); events stay as they are.
    expunged: bool = False

    class HoldPlaced(StreamEvent):
        by: str
        reason: str | None

        def apply(self, run: Run) -> None:
            run.held = True

    class HoldReleased(StreamEvent):
        by: str
        reason: str | None

        def apply(self, run: Run) -> None:
            run.held = False

    class Expunged(StreamEvent):
        """The run erased: its key destroyed, the sha256 of the stored files deleted with it."""

        by: str
        reason: str | None
        files_deleted: list[str]
        key_destroyed: bool

        def apply(self, run: Run) -> None:
            run.expunged = True

    def place_hold(self, *, by: str, reason: str | None, at: datetime) -> bool:
        """Put a legal hold on the run; False (nothing recorded) when one is already on."""
        if self.expunged:
            raise Conflict(f"run {self.id} is expunged; there is nothing left to hold")
        if self.held:
            return False
        self.record(self.HoldPlaced, at=at, by=by, reason=reason)
        return True

    def release_hold(self, *, by: str, reason: str | None, at: datetime) -> bool:
        """Take the hold off; False (nothing recorded) when there is none."""
        if not self.held:
            return False
        self.record(self.HoldReleased, at=at, by=by, reason=reason)
        return True

    def expunge(
        self, *, by: str, reason: str | None, files_deleted: list[str], key_destroyed: bool, at: datetime
    ) -> bool:
        """Record the expunge; False (nothing recorded) when the run is expunged already.
        A held run, or one not finished yet, is refused."""
        if self.expunged:
            return False
        if self.held:
            raise Conflict(f"run {self.id} is under a legal hold; release it before expunging")
        if not self.is_terminal:
            raise Conflict(f"run {self.id} is {self.status.value}; cancel it before expunging")
        self.record(
            self.Expunged,
            at=at,
            by=by,
            reason=reason,
            files_deleted=sorted(files_deleted),
            key_destroyed=key_destroyed,
        )
        return True


def _move(run: Run, event: StreamEvent) -> None:
    """Move ``run`` as the status rules say ``event`` does; one that ends it sets its error."""
    facts = vars(event)  # the event's fields by name, as status_after reads ``data``
    status = status_after(run.status, event.TYPE, facts)
    if status != run.status:
        run.status = status
        if status in TERMINAL:
            run.error = error_after(event.TYPE, facts)


def _move_task(run: Run, event: StreamEvent) -> TaskState:
    """The state of the event's task, moved as the status rules say ``event`` moves it."""
    facts = vars(event)
    state = run.tasks.setdefault(facts["task"], TaskState())
    state.status = task_status_after(event.TYPE, facts) or state.status
    return state
