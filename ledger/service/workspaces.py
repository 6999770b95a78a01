"""Workspaces (SPEC 9): :class:`WorkspaceCommands` creates them (an admin's command) and says
which exist. ``default`` always exists, without an event."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger.domain.workspace import (
    DEFAULT_WORKSPACE,
    Workspace,
    check_workspace_name,
    workspace_of,
    workspace_stream,
)
from ledger.errors import Conflict
from ledger.service.base import LedgerBase, looks_like_run_id

#: How many runs' workspaces a process remembers (a few MB).
RUN_WORKSPACES_KEPT = 50_000


class WorkspaceCommands(LedgerBase):
    """Creating workspaces and asking whether one exists (the API's scope check asks on every
    request that names one: a workspace is never removed, so this process keeps the names it
    has seen)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known_workspaces: set[str] = set()
        self._known_lock = threading.Lock()
        #: the position up to which :meth:`workspace_names` has read the events, and its lock
        self._names_upto = -1
        self._names_lock = threading.Lock()
        #: run id -> workspace, for the runs looked up lately (a run never changes workspace)
        self._run_workspaces: OrderedDict[str, str] = OrderedDict()

    def known_run_workspace(self, run_id: str) -> str | None:
        """The workspace of run ``run_id`` if this process knows it without a query."""
        found = self.run_cache.workspace_of(run_id)
        if found is not None:
            return found
        with self._known_lock:
            return self._run_workspaces.get(run_id)

    def known_workspace(self, name: str) -> bool:
        """Whether this process knows, without a query, that workspace ``name`` exists."""
        with self._known_lock:
            return name == DEFAULT_WORKSPACE or name in self._known_workspaces

    def run_workspace(self, run_id: str) -> str | None:
        """The workspace of run ``run_id`` (None: no such run): from the run this process
        saved last, or looked up lately, else from the run's first event alone."""
        found = self.known_run_workspace(run_id)
        if found is not None:
            return found
        first = self.reader.first(run_id) if looks_like_run_id(run_id) else None
        if first is None or first.type != "Run.Triggered":
            return None
        found = workspace_of(first.data)
        with self._known_lock:
            self._run_workspaces[run_id] = found
            if len(self._run_workspaces) > RUN_WORKSPACES_KEPT:
                self._run_workspaces.popitem(last=False)
        return found

    def create_workspace(self, name: str, *, principal: str) -> Workspace:
        """A new workspace; Conflict when it exists (``default`` always does)."""
        check_workspace_name(name)
        if self.workspace_exists(name):
            raise Conflict(f"workspace {name!r} exists")
        workspace = Workspace.create(name=name, principal=principal, at=self.clock())
        try:
            self.save(workspace)
        except IntegrityError:
            raise Conflict(f"workspace {name!r} exists") from None
        self._remember_workspace(name)
        return workspace

    def workspace_exists(self, name: str) -> bool:
        with self._known_lock:
            if name == DEFAULT_WORKSPACE or name in self._known_workspaces:
                return True
        if self.reader.stream(workspace_stream(name)):
            self._remember_workspace(name)
            return True
        return False

    def workspace_names(self) -> list[str]:
        """Every workspace, ``default`` first, then by name. A workspace is never removed and
        positions commit in order, so each call reads only the events stored since the last
        one (by the position index: the first call reads the whole ledger's, once a process)."""
        with self._names_lock:
            upto = self.reader.max_position()
            if upto > self._names_upto:
                found = self.reader.stream_ids_begun("workspace:", after=self._names_upto, upto=upto)
                with self._known_lock:
                    self._known_workspaces.update(s.split(":", 1)[1] for s in found)
                self._names_upto = upto
        with self._known_lock:
            names = set(self._known_workspaces)
        return [DEFAULT_WORKSPACE, *sorted(names - {DEFAULT_WORKSPACE})]

    def _remember_workspace(self, name: str) -> None:
        with self._known_lock:
            self._known_workspaces.add(name)
