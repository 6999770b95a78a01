"""The Workflow aggregate: a named definition with numbered versions (stream ``workflow:<name>``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.aggregate import ChainedAggregate, StreamCreated, StreamEvent
from ledger.domain.workspace import DEFAULT_WORKSPACE, scoped
from ledger.hashing import format_timestamp


def workflow_stream(name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    """``workflow:<name>`` in ``default`` (as before workspaces), ``workflow:<ws>/<name>``."""
    return f"workflow:{scoped(workspace, name)}"


def definition_stream(definition_hash: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    return f"definition:{scoped(workspace, definition_hash)}"


@dataclass(frozen=True)
class WorkflowVersion:
    version: int
    definition: dict[str, Any]
    definition_hash: str
    registered_at: str
    registered_by: str


class Workflow(ChainedAggregate):
    """Every registration of a workflow name; the newest version is the active one."""

    def __init__(
        self,
        name: str,
        version: int,
        definition: dict[str, Any],
        definition_hash: str,
        registered_by: str,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        self.name = name
        self.workspace = workspace
        self.versions = [
            WorkflowVersion(
                version, definition, definition_hash, format_timestamp(self.created_on), registered_by
            )
        ]

    class Registered(StreamCreated):
        name: str
        version: int
        definition: dict[str, Any]
        definition_hash: str
        registered_by: str
        #: (absent from events written before workspaces: ``default``)
        workspace: str = DEFAULT_WORKSPACE

    class VersionRegistered(StreamEvent):
        version: int
        definition: dict[str, Any]
        definition_hash: str
        registered_by: str

        def apply(self, aggregate: Workflow) -> None:
            aggregate.versions.append(
                WorkflowVersion(
                    self.version,
                    self.definition,
                    self.definition_hash,
                    format_timestamp(self.timestamp),
                    self.registered_by,
                )
            )

    @classmethod
    def register(
        cls,
        *,
        name: str,
        definition: dict[str, Any],
        definition_hash: str,
        principal: str,
        at: datetime,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> Workflow:
        return cls.create_stream(
            cls.Registered,
            stream=workflow_stream(name, workspace),
            at=at,
            name=name,
            version=1,
            definition=definition,
            definition_hash=definition_hash,
            registered_by=principal,
            workspace=workspace,
        )

    @property
    def active(self) -> WorkflowVersion:
        return self.versions[-1]

    def version_with_hash(self, definition_hash: str) -> WorkflowVersion | None:
        for version in self.versions:
            if version.definition_hash == definition_hash:
                return version
        return None

    def add_version(
        self, *, definition: dict[str, Any], definition_hash: str, principal: str, at: datetime
    ) -> None:
        self.record(
            self.VersionRegistered,
            at=at,
            version=self.active.version + 1,
            definition=definition,
            definition_hash=definition_hash,
            registered_by=principal,
        )


class DefinitionIndex(ChainedAggregate):
    """Points a definition hash at the workflow version it registered (``definition:<hash>``)."""

    def __init__(self, workflow: str, workflow_version: int) -> None:
        self.workflow = workflow
        self.workflow_version = workflow_version

    class Indexed(StreamCreated):
        workflow: str
        workflow_version: int

    @classmethod
    def index(
        cls,
        *,
        definition_hash: str,
        workflow: str,
        version: int,
        at: datetime,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> DefinitionIndex:
        return cls.create_stream(
            cls.Indexed,
            stream=definition_stream(definition_hash, workspace),
            at=at,
            workflow=workflow,
            workflow_version=version,
        )
