"""The application service: every write goes through here, as commands on aggregates.

A command loads what it needs, lets the aggregate check and record, and saves all the new
events of the request in one ``save()`` (one atomic write). Concurrent requests share
transactions through :class:`~ledger.store.groupcommit.GroupCommitRecorder`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.persistence import EventStore, IntegrityError, Recording

from ledger import __version__
from ledger.domain.aggregate import ChainedAggregate
from ledger.domain.batch import Batch
from ledger.domain.definition import (
    WorkflowDefinition,
    ensure_json_compatible,
    parse_definition,
    resolve_parameters,
    upstream_of,
)
from ledger.domain.idempotency import IdempotencyKey, idempotency_stream
from ledger.domain.openlineage import (
    OPENLINEAGE_DEFINITION,
    OPENLINEAGE_DEFINITION_HASH,
    OPENLINEAGE_VERSION,
    LineageRecorded,
    RunEvent,
    lineage_facts,
)
from ledger.domain.reports import Report, TaskFinishedReport, TaskReusedReport, TaskStartedReport
from ledger.domain.run import Run, RunStatus
from ledger.domain.workflow import (
    DefinitionIndex,
    Workflow,
    WorkflowVersion,
    definition_stream,
    workflow_stream,
)
from ledger.errors import Conflict, InvalidRequest, LedgerError, NotFound
from ledger.hashing import definition_hash as compute_definition_hash
from ledger.hashing import format_timestamp
from ledger.service.runcache import RunCache, TriggeredHere
from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from ledger.store.groupcommit import GroupCommitRecorder, with_expect
from ledger.store.reader import EventReader
from ledger.store.recorders import StaleRead
from ledger.store.setup import (
    APPLICATION_NAME,
    eventsourcing_env,
    install_immutability_guard,
    prepare_database,
    setup_lock,
)

Clock = Callable[[], datetime]
#: Parsed workflow definitions kept per definition hash.
DEFINITION_CACHE_SIZE = 256


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Registration:
    name: str
    version: int
    definition_hash: str
    created: bool


@dataclass(frozen=True)
class Triggered:
    run_id: str
    definition_hash: str
    created: bool


@dataclass(frozen=True)
class BatchTriggered:
    batch_id: str
    run_ids: list[str]


class Ledger(Application[str]):
    """runledger's write side on the ``eventsourcing`` library."""

    name = APPLICATION_NAME

    def __init__(self, settings: Settings, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        with setup_lock(settings.database):
            prepare_database(settings.database)
            super().__init__(env=eventsourcing_env(settings))
            install_immutability_guard(self.recorder, settings.database)
        self.reader = EventReader(self.recorder, settings.database)
        self._definitions: dict[str, WorkflowDefinition] = {}
        self._definitions_lock = threading.Lock()
        self.run_cache = RunCache(settings.aggregate_cache_size)
        self.triggered_here = TriggeredHere()

    def construct_event_store(self) -> EventStore[str]:
        self.group_commit = GroupCommitRecorder(self.recorder)
        return self.factory.event_store(mapper=self.mapper, recorder=self.group_commit)  # type: ignore[arg-type]

    # ---- helpers ----------------------------------------------------------------------------
    def _get(self, stream: str, *, copy: bool = True) -> Any:
        """The stream's aggregate, or None. From the repository's cache when it holds it
        (brought up to date from the store first); without ``copy`` the cached object
        itself, which the caller must only read."""
        try:
            return self.repository.get(stream, deepcopy_from_cache=copy)
        except AggregateNotFoundError:
            return None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[str]]:
        """The library's ``save`` for our aggregates without its runtime ``Protocol``
        checks (``isinstance`` against a runtime-checkable protocol costs more than the
        rest of collecting). Anything else takes the library's own path."""
        if not all(isinstance(obj, ChainedAggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[str] = ProcessingEvent()
        processing_event.saved_kwargs.update(kwargs)
        for aggregate in objs:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _save(self, *aggregates: ChainedAggregate, expect: Mapping[str, int] | None = None) -> None:
        try:
            self.save(*aggregates, **with_expect(expect, {}))
        except StaleRead:
            raise
        except IntegrityError as exc:
            raise Conflict("another request changed the same stream first; retry") from exc

    def _command(self, run_id: str, command: Callable[[Run], None]) -> Run:
        """Apply ``command`` to the run and store what it recorded, in one write.

        First on the copy this process saved last (:mod:`ledger.service.runcache`), without asking
        the store for newer events; if that copy was stale the save conflicts or the command
        refuses, and the command runs again on the run read from the store, whose outcome
        (saved, refused, or ``Conflict`` with a concurrent writer) is the answer."""
        cached = self.run_cache.copy_of(run_id)
        if cached is not None:
            try:
                command(cached)
                if cached.pending_events:
                    self.save(cached)
                    self.run_cache.saved(cached)
                    return cached
            except (LedgerError, IntegrityError):
                self.run_cache.forget(run_id)
        run = self.get_run(run_id)
        command(run)
        self._save(run)
        self.run_cache.saved(run)
        return run

    def get_run(self, run_id: str) -> Run:
        run = self._get(run_id) if _looks_like_run_id(run_id) else None
        if not isinstance(run, Run):
            raise NotFound(f"no run {run_id!r}")
        return run

    def get_workflow(self, name: str) -> Workflow:
        """The workflow, to read (registering a version goes through ``_get``)."""
        workflow = self._get(workflow_stream(name), copy=False)
        if not isinstance(workflow, Workflow):
            raise NotFound(f"no workflow {name!r}")
        return workflow

    def stream_events(self, stream: str) -> list[EventRecord]:
        return self.reader.stream(stream)

    # ---- workflows --------------------------------------------------------------------------
    def register_workflow(self, raw: Mapping[str, Any], *, principal: str) -> Registration:
        ensure_json_compatible(dict(raw))
        definition = parse_definition(raw)
        raw_dict = dict(raw)
        digest = compute_definition_hash(raw_dict)
        at = self.clock()
        existing = self._get(workflow_stream(definition.name))
        if isinstance(existing, Workflow):
            known = existing.version_with_hash(digest)
            if known is not None:
                return Registration(existing.name, known.version, digest, created=False)
            existing.add_version(definition=raw_dict, definition_hash=digest, principal=principal, at=at)
            workflow = existing
        else:
            workflow = Workflow.register(
                name=definition.name, definition=raw_dict, definition_hash=digest, principal=principal, at=at
            )
        index = DefinitionIndex.index(
            definition_hash=digest, workflow=definition.name, version=workflow.active.version, at=at
        )
        try:
            self.save(workflow, index)
        except IntegrityError:
            # A concurrent registration of the same name won; answer from what it stored.
            again = self.get_workflow(definition.name)
            known = again.version_with_hash(digest)
            if known is None:
                raise Conflict(f"workflow {definition.name!r} changed concurrently; retry") from None
            return Registration(again.name, known.version, digest, created=False)
        return Registration(workflow.name, workflow.active.version, digest, created=True)

    def definition_by_hash(self, definition_hash: str) -> tuple[str, int, dict[str, Any]]:
        index = self._get(definition_stream(definition_hash))
        if not isinstance(index, DefinitionIndex):
            raise NotFound(f"no workflow definition with hash {definition_hash!r}")
        workflow = self.get_workflow(index.workflow)
        version = workflow.versions[index.workflow_version - 1]
        return workflow.name, version.version, version.definition

    # ---- triggering -------------------------------------------------------------------------
    def trigger(
        self,
        *,
        workflow: str | None = None,
        definition_hash: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        principal: str,
        idempotency_key: str | None = None,
    ) -> Triggered:
        if (workflow is None) == (definition_hash is None):
            raise InvalidRequest("trigger by exactly one of workflow name or definition hash")
        if definition_hash is not None:
            name, version, raw = self.definition_by_hash(definition_hash)
            return self._trigger(
                name=name,
                version=version,
                raw=raw,
                digest=definition_hash,
                supplied=parameters or {},
                principal=principal,
                kind="hash",
                idempotency_key=idempotency_key,
            )
        assert workflow is not None
        cached = self._cached_workflow(workflow)
        if cached is not None:
            # The workflow as last read here, checked inside the write: a version registered
            # since (by any process) fails the write, and the trigger reads it again.
            stream_version, active = cached
            try:
                return self._trigger(
                    name=workflow,
                    version=active.version,
                    raw=active.definition,
                    digest=active.definition_hash,
                    supplied=parameters or {},
                    principal=principal,
                    kind="name",
                    idempotency_key=idempotency_key,
                    expect={workflow_stream(workflow): stream_version},
                )
            except StaleRead:
                pass
        active = self.get_workflow(workflow).active
        return self._trigger(
            name=workflow,
            version=active.version,
            raw=active.definition,
            digest=active.definition_hash,
            supplied=parameters or {},
            principal=principal,
            kind="name",
            idempotency_key=idempotency_key,
        )

    def _cached_workflow(self, name: str) -> tuple[int, WorkflowVersion] | None:
        """The cached workflow's stream version and active version, without a query."""
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            workflow = cache.get(workflow_stream(name))
        except KeyError:
            return None
        if not isinstance(workflow, Workflow):
            return None
        # The version first: the library applies an event before it sets the version, so a
        # fast-forward running meanwhile can only make the expectation older, never newer.
        stream_version = workflow.version
        return stream_version, workflow.active

    def _new_run(
        self,
        *,
        name: str,
        version: int,
        raw: dict[str, Any],
        digest: str,
        parameters: dict[str, Any],
        principal: str,
        kind: str,
        at: datetime,
        replay_of: str | None = None,
        resume_of: str | None = None,
        resume_from_task: str | None = None,
        batch_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        return Run.trigger(
            run_id=str(uuid.uuid4()),
            at=at,
            workflow=name,
            version=version,
            definition_hash=digest,
            definition=raw,
            engine_version=__version__,
            triggered_by=principal,
            trigger_kind=kind,
            parameters=parameters,
            replay_of=replay_of,
            resume_of=resume_of,
            resume_from_task=resume_from_task,
            batch_id=batch_id,
            idempotency_key=idempotency_key,
        )

    def _definition(self, digest: str, raw: dict[str, Any]) -> WorkflowDefinition:
        """``raw`` parsed, once per definition hash (content-addressed: the same hash is the
        same definition, and a parsed definition is immutable)."""
        with self._definitions_lock:
            found = self._definitions.get(digest)
        if found is not None:
            return found
        found = parse_definition(raw)
        with self._definitions_lock:
            if len(self._definitions) >= DEFINITION_CACHE_SIZE:
                self._definitions.pop(next(iter(self._definitions)))
            self._definitions[digest] = found
        return found

    def _trigger(
        self,
        *,
        name: str,
        version: int,
        raw: dict[str, Any],
        digest: str,
        supplied: Mapping[str, Any],
        principal: str,
        kind: str,
        idempotency_key: str | None = None,
        expect: Mapping[str, int] | None = None,
        **links: Any,
    ) -> Triggered:
        definition = self._definition(digest, raw)
        parameters = resolve_parameters(definition, supplied)
        if idempotency_key is not None:
            existing = self._get(idempotency_stream(name, idempotency_key))
            if isinstance(existing, IdempotencyKey):
                first = self.get_run(existing.run_id)
                return Triggered(first.id, first.definition_hash, created=False)
        at = self.clock()
        run = self._new_run(
            name=name,
            version=version,
            raw=raw,
            digest=digest,
            parameters=parameters,
            principal=principal,
            kind=kind,
            at=at,
            idempotency_key=idempotency_key,
            **links,
        )
        if idempotency_key is None:
            self._save(run, expect=expect)
            self._triggered(run, links)
            return Triggered(run.id, digest, created=True)
        key = IdempotencyKey.claim(workflow=name, key=idempotency_key, run_id=run.id, at=at)
        try:
            self.save(run, key, **with_expect(expect, {}))
        except StaleRead:
            raise
        except IntegrityError:
            winner = self._get(idempotency_stream(name, idempotency_key))
            if not isinstance(winner, IdempotencyKey):
                raise Conflict("concurrent trigger; retry") from None
            first = self.get_run(winner.run_id)
            return Triggered(first.id, first.definition_hash, created=False)
        self._triggered(run, links)
        return Triggered(run.id, digest, created=True)

    def _triggered(self, run: Run, links: Mapping[str, Any]) -> None:
        """A new pending run: kept for the next command on it, and offered to claims."""
        self.run_cache.saved(run)
        if links.get("batch_id") is None:
            self.triggered_here.add(run.id)

    def trigger_batch(
        self,
        *,
        workflow: str | None = None,
        definition_hash: str | None = None,
        items: Sequence[Any],
        input_param: str,
        parallelism: int,
        parameters: Mapping[str, Any] | None = None,
        principal: str,
    ) -> BatchTriggered:
        if definition_hash is not None:
            name, version, raw = self.definition_by_hash(definition_hash)
            digest = definition_hash
        elif workflow is not None:
            active = self.get_workflow(workflow).active
            name, version, raw, digest = workflow, active.version, active.definition, active.definition_hash
        else:
            raise InvalidRequest("trigger by exactly one of workflow name or definition hash")
        if not items:
            raise InvalidRequest("a batch needs at least one item")
        if parallelism < 1:
            raise InvalidRequest("batch parallelism must be at least 1")
        definition = self._definition(digest, raw)
        if input_param not in definition.params:
            raise InvalidRequest(f"input_param {input_param!r} is not a parameter of {name!r}")
        base = dict(parameters or {})
        resolved = [resolve_parameters(definition, base | {input_param: item}) for item in items]
        at = self.clock()
        batch_id = str(uuid.uuid4())
        runs = [
            self._new_run(
                name=name,
                version=version,
                raw=raw,
                digest=digest,
                parameters=params,
                principal=principal,
                kind="batch",
                at=at,
                batch_id=batch_id,
            )
            for params in resolved
        ]
        batch = Batch.create(
            batch_id=f"batch:{batch_id}",
            at=at,
            workflow=name,
            items=list(items),
            input_param=input_param,
            parallelism=parallelism,
            run_ids=[r.id for r in runs],
            triggered_by=principal,
        )
        self._save(batch, *runs)
        return BatchTriggered(batch_id, [r.id for r in runs])

    def get_batch(self, batch_id: str) -> Batch:
        batch = self._get(f"batch:{batch_id}")
        if not isinstance(batch, Batch):
            raise NotFound(f"no batch {batch_id!r}")
        return batch

    def _original_trigger(self, run_id: str) -> EventRecord:
        """Re-read a run's trigger event: the first event of its stream, as stored."""
        events = self.reader.stream(run_id) if _looks_like_run_id(run_id) else []
        if not events or events[0].type != "Run.Triggered":
            raise NotFound(f"no run {run_id!r}")
        return events[0]

    def replay(self, run_id: str, *, overrides: Mapping[str, Any] | None = None, principal: str) -> Triggered:
        trigger = self._original_trigger(run_id).data
        return self._trigger(
            name=trigger["workflow"],
            version=trigger["version"],
            raw=trigger["definition"],
            digest=trigger["definition_hash"],
            supplied=_without_none(trigger["parameters"]) | dict(overrides or {}),
            principal=principal,
            kind="replay",
            replay_of=run_id,
        )

    def resume(
        self, run_id: str, *, from_task: str, overrides: Mapping[str, Any] | None = None, principal: str
    ) -> Triggered:
        trigger = self._original_trigger(run_id).data
        definition = parse_definition(trigger["definition"])
        if from_task not in {t.name for t in definition.tasks}:
            raise InvalidRequest(f"workflow {trigger['workflow']!r} has no task {from_task!r}")
        original = self.get_run(run_id)
        for task in sorted(upstream_of(definition, from_task)):
            state = original.tasks.get(task)
            if state is None or state.status not in {"success", "reused"}:
                raise InvalidRequest(
                    f"cannot resume from {from_task!r}: upstream task {task!r} did not succeed "
                    f"in run {run_id}"
                )
        return self._trigger(
            name=trigger["workflow"],
            version=trigger["version"],
            raw=trigger["definition"],
            digest=trigger["definition_hash"],
            supplied=_without_none(trigger["parameters"]) | dict(overrides or {}),
            principal=principal,
            kind="resume",
            resume_of=run_id,
            resume_from_task=from_task,
        )

    # ---- workers ----------------------------------------------------------------------------
    def lease_expiry(self, at: datetime) -> str:
        return format_timestamp(at + timedelta(seconds=self.settings.lease_seconds))

    def claim(self, run_id: str, *, worker_id: str) -> Run | None:
        """Start ``run_id`` for ``worker_id``; None when another worker claimed it first."""
        known = self.run_cache.status_of(run_id)
        if known is not None and known != RunStatus.PENDING:
            self.triggered_here.discard(run_id)
            return None  # no transition leads back to pending: no need to ask the store

        def claim(run: Run) -> None:
            if run.status != RunStatus.PENDING or run.trigger_kind == "openlineage":
                # (an OpenLineage run is executed elsewhere: never claimed)
                raise Conflict(f"run {run.id} is not pending")
            at = self.clock()
            run.claim(worker_id=worker_id, lease_expires_at=self.lease_expiry(at), at=at)

        try:
            return self._command(run_id, claim)
        except (NotFound, Conflict):
            return None
        finally:
            self.triggered_here.discard(run_id)

    def claim_first(self, candidates: Sequence[str], *, worker_id: str) -> Run | None:
        """Claim the first of ``candidates`` still pending, then of the runs this process
        triggered that the candidates (from a read model, a little behind) do not list yet."""
        listed = set(candidates)
        extra = [r for r in self.triggered_here.oldest(len(listed) + 50) if r not in listed]
        for run_id in [*candidates, *extra]:
            run = self.claim(run_id, worker_id=worker_id)
            if run is not None:
                return run
        return None

    def renew_lease(self, run_id: str, *, worker_id: str) -> Run:
        def renew(run: Run) -> None:
            at = self.clock()
            run.renew_lease(worker_id=worker_id, lease_expires_at=self.lease_expiry(at), at=at)

        return self._command(run_id, renew)

    def report(self, run_id: str, *, worker_id: str, reports: Sequence[Report]) -> Run:
        """Append a worker's task and state events to its run in one atomic write."""

        def apply(run: Run) -> None:
            at = self.clock()
            lease_expires_at = self.lease_expiry(at)
            for report in reports:
                apply_report(run, report, worker_id=worker_id, at=at, lease_expires_at=lease_expires_at)

        return self._command(run_id, apply)

    def expire_lease(self, run_id: str) -> bool:
        """Fail a running run whose worker's lease lapsed, with error ``worker_lost``."""
        run = self.get_run(run_id)
        at = self.clock()
        if not run.lease_lapsed(format_timestamp(at)):
            return False
        run.fail(error="worker_lost", by="system:lease-monitor", at=at)
        try:
            self.save(run)
        except IntegrityError:
            return False
        return True

    # ---- operators --------------------------------------------------------------------------
    def cancel(self, run_id: str, *, principal: str, reason: str | None = None) -> Run:
        run = self.get_run(run_id)
        run.kill(by=principal, reason=reason, at=self.clock())
        self._save(run)
        return run

    def fail_run(self, run_id: str, *, error: str, by: str, worker_id: str | None = None) -> Run:
        run = self.get_run(run_id)
        run.fail(error=error, by=by, worker_id=worker_id, at=self.clock())
        self._save(run)
        return run

    # ---- OpenLineage (issue 7) --------------------------------------------------------------
    def record_openlineage(self, event: RunEvent, *, principal: str) -> LineageRecorded:
        """Record one OpenLineage RunEvent, creating its run on the first event seen.

        A repeated event (same runId, eventType and eventTime) records nothing. When two
        requests create the same run at once, the loser retries against the stored run.
        """
        facts = lineage_facts(event)
        for _ in range(16):  # each round at least one concurrent writer of the run succeeds
            at = self.clock()
            run = self._get(event.run_id)
            if run is None:
                run = Run.trigger(
                    run_id=event.run_id,
                    at=at,
                    workflow=event.workflow,
                    version=OPENLINEAGE_VERSION,
                    definition_hash=OPENLINEAGE_DEFINITION_HASH,
                    definition=dict(OPENLINEAGE_DEFINITION),
                    engine_version=__version__,
                    triggered_by=principal,
                    trigger_kind="openlineage",
                    parameters={},
                    replay_of=None,
                    resume_of=None,
                    resume_from_task=None,
                    batch_id=None,
                    idempotency_key=None,
                )
            elif not isinstance(run, Run):
                raise Conflict(f"{event.run_id!r} names a stream that is not a run")
            elif run.workflow != event.workflow:
                raise Conflict(f"run {run.id} is of workflow {run.workflow!r}, not {event.workflow!r}")
            if not run.record_lineage(at=at, **facts):
                return LineageRecorded(run.id, run.status.value, recorded=False)
            try:
                self.save(run)
            except IntegrityError:
                continue
            return LineageRecorded(run.id, run.status.value, recorded=True)
        raise Conflict(f"run {event.run_id} is being written concurrently; retry")


def apply_report(run: Run, report: Report, *, worker_id: str, at: datetime, lease_expires_at: str) -> None:
    if isinstance(report, TaskStartedReport):
        run.start_task(
            worker_id=worker_id,
            task=report.task,
            attempt=report.attempt,
            command=report.command,
            host=report.host,
            started_at=report.started_at or format_timestamp(at),
            at=at,
        )
    elif isinstance(report, TaskFinishedReport):
        run.finish_task(worker_id=worker_id, at=at, **report.evidence(at))
    elif isinstance(report, TaskReusedReport):
        run.reuse_task(
            worker_id=worker_id,
            task=report.task,
            source_run_id=report.source_run_id,
            outputs=[o.model_dump() for o in report.outputs],
            output_vars=report.output_vars,
            at=at,
        )
    elif report.type == "run_succeeded":
        run.succeed(worker_id=worker_id, at=at)
    elif report.type == "run_failed":
        run.fail(error=report.error or "failed", by=worker_id, worker_id=worker_id, at=at)
    elif report.type == "lease_renewed":
        run.renew_lease(worker_id=worker_id, lease_expires_at=lease_expires_at, at=at)
    else:  # pragma: no cover - the Report union is closed
        raise InvalidRequest(f"unknown report type {report.type!r}")


def _without_none(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if v is not None}


def _looks_like_run_id(run_id: str) -> bool:
    return bool(run_id) and ":" not in run_id and len(run_id) <= 200
