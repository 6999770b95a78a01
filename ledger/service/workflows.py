"""Registering workflows: :class:`WorkflowCommands` and the :class:`Registration` it answers.

A workflow's definition is stored once per content hash, as a new version of the workflow
and an index from the hash back to that version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger.domain.definition import ensure_json_compatible, parse_definition
from ledger.domain.workflow import DefinitionIndex, Workflow, workflow_stream
from ledger.domain.workspace import DEFAULT_WORKSPACE
from ledger.errors import Conflict
from ledger.hashing import definition_hash as compute_definition_hash
from ledger.service.base import LedgerBase


@dataclass(frozen=True)
class Registration:
    name: str
    version: int
    definition_hash: str
    created: bool


class WorkflowCommands(LedgerBase):
    """The commands of whoever registers workflows (the API and ``runledger workflows``)."""

    def register_workflow(
        self, raw: Mapping[str, Any], *, principal: str, workspace: str = DEFAULT_WORKSPACE
    ) -> Registration:
        ensure_json_compatible(dict(raw))
        definition = parse_definition(raw)
        raw_dict = dict(raw)
        digest = compute_definition_hash(raw_dict)
        at = self.clock()
        existing = self._get(workflow_stream(definition.name, workspace))
        if isinstance(existing, Workflow):
            known = existing.version_with_hash(digest)
            if known is not None:
                return Registration(existing.name, known.version, digest, created=False)
            existing.add_version(definition=raw_dict, definition_hash=digest, principal=principal, at=at)
            workflow = existing
        else:
            workflow = Workflow.register(
                name=definition.name,
                definition=raw_dict,
                definition_hash=digest,
                principal=principal,
                at=at,
                workspace=workspace,
            )
        index = DefinitionIndex.index(
            definition_hash=digest,
            workflow=definition.name,
            version=workflow.active.version,
            at=at,
            workspace=workspace,
        )
        try:
            self.save(workflow, index)
        except IntegrityError:
            # A concurrent registration of the same name won; answer from what it stored.
            again = self.get_workflow(definition.name, workspace)
            known = again.version_with_hash(digest)
            if known is None:
                raise Conflict(f"workflow {definition.name!r} changed concurrently; retry") from None
            return Registration(again.name, known.version, digest, created=False)
        return Registration(workflow.name, workflow.active.version, digest, created=True)
