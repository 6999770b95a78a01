"""Batches: :class:`BatchCommands` triggers one run per item in one write, and reads a batch
back; :class:`BatchTriggered` is its answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.domain.batch import Batch
from ledger.domain.definition import resolve_parameters
from ledger.domain.labels import check_labels
from ledger.domain.workspace import DEFAULT_WORKSPACE
from ledger.errors import InvalidRequest, NotFound
from ledger.service.sealing import SealingBase
from ledger.service.triggers import new_run


@dataclass(frozen=True)
class BatchTriggered:
    batch_id: str
    run_ids: list[str]


class BatchCommands(SealingBase):
    """A batch triggered through the API, and read back by the API and the executor."""

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
        workspace: str = DEFAULT_WORKSPACE,
        labels: Mapping[str, Any] | None = None,
    ) -> BatchTriggered:
        if definition_hash is not None:
            name, version, raw = self.definition_by_hash(definition_hash, workspace)
            digest = definition_hash
        elif workflow is not None:
            active = self.get_workflow(workflow, workspace).active
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
        for params in resolved:
            self._check_files_stored(definition, params)
        at = self.clock()
        batch_id = str(uuid.uuid4())
        run_ids = [str(uuid.uuid4()) for _ in resolved]
        runs = [
            new_run(
                run_id=run_id,
                name=name,
                version=version,
                raw=raw,
                digest=digest,
                parameters=self.seal_for_new_run(definition, run_id, params),
                principal=principal,
                kind="batch",
                at=at,
                batch_id=batch_id,
                workspace=workspace,
            )
            for run_id, params in zip(run_ids, resolved, strict=True)
        ]
        checked = check_labels(labels or {})
        for run in runs if checked else ():  # every run of the batch carries the labels
            run.label(set_=checked, remove=[], by=principal, reason=None, at=at)
        batch = Batch.create(
            batch_id=f"batch:{batch_id}",
            at=at,
            workflow=name,
            items=list(items),
            input_param=input_param,
            parallelism=parallelism,
            run_ids=[r.id for r in runs],
            triggered_by=principal,
            workspace=workspace,
        )
        self._save(batch, *runs)
        return BatchTriggered(batch_id, [r.id for r in runs])

    def get_batch(self, batch_id: str) -> Batch:
        batch = self._get(f"batch:{batch_id}")
        if not isinstance(batch, Batch):
            raise NotFound(f"no batch {batch_id!r}")
        return batch
