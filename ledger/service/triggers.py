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
from ledger.domain.run import Run
from ledger.domain.workflow import Workflow, WorkflowVersion, workflow_stream
from ledger.errors import Conflict, IdempotencyKeyReused, InvalidRequest, NotFound
from ledger.reasons import check_reason
from ledger.service.base import LedgerBase, looks_like_run_id
from ledger.store.event_record import EventRecord
from ledger.store.groupcommit import with_expect
from ledger.store.recorders import StaleRead


@dataclass(frozen=True)
class Triggered:
    run_id: str
    definition_hash: str
    created: bool


class TriggerCommands(LedgerBase):
    """The commands that start new runs, for the API and ``runledger``."""

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
        self._check_files_stored(definition, parameters)
        if idempotency_key is not None:
            existing = self._get(idempotency_stream(name, idempotency_key))
            if isinstance(existing, IdempotencyKey):
                return self._first_run(existing.run_id, idempotency_key, parameters)
        at = self.clock()
        run = new_run(
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
            return self._first_run(winner.run_id, idempotency_key, parameters)
        self._triggered(run, links)
        return Triggered(run.id, digest, created=True)

    def _first_run(self, run_id: str, key: str, parameters: Mapping[str, Any]) -> Triggered:
        """The run an idempotency key first triggered, when asked again with the same
        (resolved) parameters; :class:`IdempotencyKeyReused` naming it for other ones."""
        first = self.get_run(run_id)
        if dict(first.parameters) != dict(parameters):
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
            name=trigger["workflow"],
            version=trigger["version"],
            raw=trigger["definition"],
            digest=trigger["definition_hash"],
            supplied=_without_none(trigger["parameters"]) | dict(overrides or {}),
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
            name=trigger["workflow"],
            version=trigger["version"],
            raw=trigger["definition"],
            digest=trigger["definition_hash"],
            supplied=_without_none(trigger["parameters"]) | dict(overrides or {}),
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
    reason: str | None = None,
) -> Run:
    """A pending run of version ``version`` of workflow ``name``, with a new run id."""
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
        reason=reason,
    )


def _without_none(parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if v is not None}
