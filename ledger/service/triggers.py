"""Triggering runs: :class:`TriggerCommands` (by workflow name or definition hash, with an
idempotency key, and the replay or resume of a stored run) and the :class:`Triggered` it
answers; :func:`new_run`, the one place a triggered run is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger import __version__
from ledger.domain.definition import parse_definition, resolve_parameters, upstream_of
from ledger.domain.idempotency import IdempotencyKey, idempotency_stream
from ledger.domain.labels import check_labels
from ledger.domain.run import Run
from ledger.domain.workflow import Workflow, WorkflowVersion, workflow_stream
from ledger.domain.workspace import DEFAULT_WORKSPACE, workspace_of
from ledger.errors import Conflict, IdempotencyKeyReused, InvalidRequest, NotFound
from ledger.reasons import check_reason
from ledger.service.base import looks_like_run_id
from ledger.service.sealing import SealingBase
from ledger.store.event_record import EventRecord
from ledger.store.groupcommit import with_expect
from ledger.store.recorders import StaleRead


@dataclass(frozen=True)
class Triggered:
    run_id: str
    definition_hash: str
    created: bool


class TriggerCommands(SealingBase):
    """The commands that start new runs, for the API and ``runledger``."""

    def trigger(
        self,
        *,
        workflow: str | None = None,
        definition_hash: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        principal: str,
        idempotency_key: str | None = None,
        workspace: str = DEFAULT_WORKSPACE,
        labels: Mapping[str, Any] | None = None,
    ) -> Triggered:
        if (workflow is None) == (definition_hash is None):
            raise InvalidRequest("trigger by exactly one of workflow name or definition hash")
        if labels:
            return self._trigger_labelled(
                workflow,
                definition_hash,
                parameters,
                principal,
                idempotency_key,
                check_labels(labels),
                workspace,
            )
        if definition_hash is not None:
            name, version, raw = self.definition_by_hash(definition_hash, workspace)
            return self._trigger(
                workspace=workspace,
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
        cached = self._cached_workflow(workflow, workspace)
        if cached is not None:
            # The workflow as last read here, checked inside the write: a version registered
            # since (by any process) fails the write, and the trigger reads it again.
            stream_version, active = cached
            try:
                return self._trigger(
                    workspace=workspace,
                    name=workflow,
                    version=active.version,
                    raw=active.definition,
                    digest=active.definition_hash,
                    supplied=parameters or {},
                    principal=principal,
                    kind="name",
                    idempotency_key=idempotency_key,
                    expect={workflow_stream(workflow, workspace): stream_version},
                )
            except StaleRead:
                pass
        active = self.get_workflow(workflow, workspace).active
        return self._trigger(
            workspace=workspace,
            name=workflow,
            version=active.version,
            raw=active.definition,
            digest=active.definition_hash,
            supplied=parameters or {},
            principal=principal,
            kind="name",
            idempotency_key=idempotency_key,
        )

    def _trigger_labelled(
        self,
        workflow: str | None,
        definition_hash: str | None,
        parameters: Mapping[str, Any] | None,
        principal: str,
        idempotency_key: str | None,
        labels: dict[str, str],
        workspace: str = DEFAULT_WORKSPACE,
    ) -> Triggered:
        """A trigger with labels: the run's ``Run.Triggered`` and a ``Run.Labelled`` by the
        same principal, saved together (a repeated idempotency key answers the first run)."""
        if definition_hash is not None:
            name, version, raw = self.definition_by_hash(definition_hash, workspace)
            kind, digest = "hash", definition_hash
        else:
            assert workflow is not None
            active = self.get_workflow(workflow, workspace).active
            name, version, raw, digest, kind = (
                workflow,
                active.version,
                active.definition,
                active.definition_hash,
                "name",
            )
        return self._trigger(
            workspace=workspace,
            name=name,
            version=version,
            raw=raw,
            digest=digest,
            supplied=parameters or {},
            principal=principal,
            kind=kind,
            idempotency_key=idempotency_key,
            labels=labels,
        )

    def _cached_workflow(self, name: str, workspace: str) -> tuple[int, WorkflowVersion] | None:
        """The cached workflow's stream version and active version, without a query."""
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            workflow = cache.get(workflow_stream(name, workspace))
        except KeyError:
            return None
        if not isinstance(workflow, Workflow):
            return None
        # The version first: the library applies an event before it sets the version, so a
        # fast-forward running meanwhile can only make the expectation older, never newer.
        stream_version = workflow.version
        return stream_version, workflow.active

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
        workspace: str = DEFAULT_WORKSPACE,
        labels: dict[str, str] | None = None,
        **links: Any,
    ) -> Triggered:
        definition = self._definition(digest, raw)
        parameters = resolve_parameters(definition, supplied)
        self._check_files_stored(definition, parameters)
        if idempotency_key is not None:
            existing = self._get(idempotency_stream(name, idempotency_key, workspace))
            if isinstance(existing, IdempotencyKey):
                return self._first_run(existing.run_id, idempotency_key, parameters)
        at = self.clock()
        run_id = str(uuid.uuid4())
        run = new_run(
            run_id=run_id,
            name=name,
            version=version,
            raw=raw,
            digest=digest,
            parameters=self.seal_for_new_run(definition, run_id, parameters),
            principal=principal,
            kind=kind,
            at=at,
            idempotency_key=idempotency_key,
            workspace=workspace,
            **links,
        )
        if labels:
            run.label(set_=labels, remove=[], by=principal, reason=None, at=at)
        if idempotency_key is None:
            self._save(run, expect=expect)
            self._triggered(run, links)
            return Triggered(run.id, digest, created=True)
        key = IdempotencyKey.claim(
            workflow=name, key=idempotency_key, run_id=run.id, at=at, workspace=workspace
        )
        try:
            self.save(run, key, **with_expect(expect, {}))
        except StaleRead:
            raise
        except IntegrityError:
            winner = self._get(idempotency_stream(name, idempotency_key, workspace))
            if not isinstance(winner, IdempotencyKey):
                raise Conflict("concurrent trigger; retry") from None
            return self._first_run(winner.run_id, idempotency_key, parameters)
        self._triggered(run, links)
        return Triggered(run.id, digest, created=True)

    def _first_run(self, run_id: str, key: str, parameters: Mapping[str, Any]) -> Triggered:
        """The run an idempotency key first triggered, when asked again with the same
        (resolved) parameters; :class:`IdempotencyKeyReused` naming it for other ones."""
        first = self.get_run(run_id)
        if self.run_parameters(first) != dict(parameters):
            raise IdempotencyKeyReused(key=key, run_id=first.id)
        return Triggered(first.id, first.definition_hash, created=False)

    def _triggered(self, run: Run, links: Mapping[str, Any]) -> None:
        """A new pending run: kept for the next command on it, and offered to claims."""
        self.run_cache.saved(run)
        if links.get("batch_id") is None:
            self.triggered_here.add(run.id)

    # ---- new runs from a stored run ---------------------------------------------------------
    def _original_trigger(self, run_id: str) -> EventRecord:
        """Re-read a run's trigger event: the first event of its stream, as stored."""
        events = self.reader.stream(run_id) if looks_like_run_id(run_id) else []
        if not events or events[0].type != "Run.Triggered":
            raise NotFound(f"no run {run_id!r}")
        return events[0]

    def replay(
        self,
        run_id: str,
        *,
        overrides: Mapping[str, Any] | None = None,
        principal: str,
        reason: str | None = None,
    ) -> Triggered:
        reason = check_reason(reason, required=self.settings.require_reason, action="replay")
        trigger = self._original_trigger(run_id).data
        return self._trigger(
            workspace=workspace_of(trigger),
            name=trigger["workflow"],
            version=trigger["version"],
            raw=trigger["definition"],
            digest=trigger["definition_hash"],
            supplied=self.parameters_to_repeat(run_id, overrides or {}),
            principal=principal,
            kind="replay",
            replay_of=run_id,
            reason=reason,
        )

    def resume(
        self,
        run_id: str,
        *,
        from_task: str,
        overrides: Mapping[str, Any] | None = None,
        principal: str,
        reason: str | None = None,
    ) -> Triggered:
        reason = check_reason(reason, required=self.settings.require_reason, action="resume")
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
            workspace=workspace_of(trigger),
            name=trigger["workflow"],
            version=trigger["version"],
            raw=trigger["definition"],
            digest=trigger["definition_hash"],
            supplied=self.parameters_to_repeat(run_id, overrides or {}),
            principal=principal,
            kind="resume",
            resume_of=run_id,
            resume_from_task=from_task,
            reason=reason,
        )


def new_run(
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
    workspace: str = DEFAULT_WORKSPACE,
    run_id: str | None = None,
    reason: str | None = None,
) -> Run:
    """A pending run of version ``version`` of workflow ``name``, with a new run id (unless
    ``run_id`` names the one its sensitive parameters were sealed for)."""
    return Run.trigger(
        run_id=run_id or str(uuid.uuid4()),
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
        workspace=workspace,
        reason=reason,
    )
