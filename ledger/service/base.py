"""The plumbing every command of the service stands on: :class:`LedgerBase`.

Construction (database setup, the group-commit event store, the caches), loading a stream's
aggregate, saving a request's new events in one write, the stale-read retry of a command on a
run, the clock, parsed definitions per hash, and the reads every caller shares (a run, a
workflow, a definition by hash, a stream's stored events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
)
from eventsourcing.persistence import EventStore, IntegrityError, Recording

from ledger.domain.aggregate import ChainedAggregate
from ledger.domain.definition import WorkflowDefinition, parse_definition
from ledger.domain.run import Run
from ledger.domain.workflow import DefinitionIndex, Workflow, definition_stream, workflow_stream
from ledger.domain.workspace import DEFAULT_WORKSPACE
from ledger.errors import Conflict, InvalidParameters, LedgerError, NotFound
from ledger.service.runcache import RunCache, TriggeredHere
from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from ledger.store.filestore import FileStore
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


def looks_like_run_id(run_id: str) -> bool:
    return bool(run_id) and ":" not in run_id and len(run_id) <= 200


class LedgerBase(Application[str]):
    """The ``eventsourcing`` application under every command class of the service."""

    # The library names each subclass after itself unless it sets ``name``; the name picks
    # the tables (``runledger_events`` on PostgreSQL), so every class that is instantiated
    # (``Ledger``) sets it again.
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
        self._files: FileStore | None = None

    def construct_event_store(self) -> EventStore[str]:
        self.group_commit = GroupCommitRecorder(self.recorder)
        return self.factory.event_store(mapper=self.mapper, recorder=self.group_commit)  # type: ignore[arg-type]

    # ---- loading and saving -----------------------------------------------------------------
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

    def _check_files_stored(self, definition: WorkflowDefinition, parameters: Mapping[str, Any]) -> None:
        """Refuse ``file`` parameters naming no stored file (SPEC 5: 422, nothing written)."""
        missing: list[dict[str, object]] = [
            {"loc": f"parameters.{name}", "msg": f"no stored file with sha256 {parameters[name]}"}
            for name, spec in definition.params.items()
            if spec.type == "file"
            and parameters.get(name) is not None
            and not self.files.exists(str(parameters[name]))
        ]
        if missing:
            summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in missing)
            raise InvalidParameters(
                f"parameters do not match the definition: {summary} (upload it with POST /api/files)",
                errors=missing,
            )

    @property
    def files(self) -> FileStore:
        """The content-addressed file store ``file`` parameters name."""
        if self._files is None:
            self._files = FileStore(self.settings.file_store_dir)
        return self._files

    # ---- shared reads -----------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        run = self._get(run_id) if looks_like_run_id(run_id) else None
        if not isinstance(run, Run):
            raise NotFound(f"no run {run_id!r}")
        return run

    def get_workflow(self, name: str, workspace: str = DEFAULT_WORKSPACE) -> Workflow:
        """The workflow, to read (registering a version goes through ``_get``)."""
        workflow = self._get(workflow_stream(name, workspace), copy=False)
        if not isinstance(workflow, Workflow):
            raise NotFound(f"no workflow {name!r}")
        return workflow

    def definition_by_hash(
        self, definition_hash: str, workspace: str = DEFAULT_WORKSPACE
    ) -> tuple[str, int, dict[str, Any]]:
        index = self._get(definition_stream(definition_hash, workspace))
        if not isinstance(index, DefinitionIndex):
            raise NotFound(f"no workflow definition with hash {definition_hash!r}")
        workflow = self.get_workflow(index.workflow, workspace)
        version = workflow.versions[index.workflow_version - 1]
        return workflow.name, version.version, version.definition

    def stream_events(self, stream: str) -> list[EventRecord]:
        return self.reader.stream(stream)
