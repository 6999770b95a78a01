"""Batches: one trigger that fanned out into one run per item, written in the same save as
its runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.domain.aggregate import ChainedAggregate, StreamCreated
from ledger.domain.workspace import DEFAULT_WORKSPACE


class Batch(ChainedAggregate):
    """One trigger that fanned out into one run per item (stream ``batch:<id>``)."""

    def __init__(
        self,
        workflow: str,
        items: list[Any],
        input_param: str,
        parallelism: int,
        run_ids: list[str],
        triggered_by: str,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        self.workflow = workflow
        self.workspace = workspace
        self.items = items
        self.input_param = input_param
        self.parallelism = parallelism
        self.run_ids = run_ids
        self.triggered_by = triggered_by

    class Created(StreamCreated):
        workflow: str
        items: list[Any]
        input_param: str
        parallelism: int
        run_ids: list[str]
        triggered_by: str
        #: (absent from events written before workspaces: ``default``)
        workspace: str = DEFAULT_WORKSPACE

    @classmethod
    def create(cls, *, batch_id: str, at: datetime, **facts: Any) -> Batch:
        return cls.create_stream(cls.Created, stream=batch_id, at=at, **facts)
