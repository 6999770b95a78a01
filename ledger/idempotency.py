"""Idempotency keys and batches: small streams written in the same save as the runs they name."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from ledger.aggregate import ChainedAggregate, StreamCreated


def idempotency_stream(workflow: str, key: str) -> str:
    digest = hashlib.sha256(f"{workflow}\x00{key}".encode()).hexdigest()
    return f"idempotency:{digest}"


class IdempotencyKey(ChainedAggregate):
    """The first run triggered with a key for a workflow; a second trigger returns it."""

    def __init__(self, workflow: str, key: str, run_id: str) -> None:
        self.workflow = workflow
        self.key = key
        self.run_id = run_id

    class Claimed(StreamCreated):
        workflow: str
        key: str
        run_id: str

    @classmethod
    def claim(cls, *, workflow: str, key: str, run_id: str, at: datetime) -> IdempotencyKey:
        return cls.start(
            cls.Claimed,
            stream=idempotency_stream(workflow, key),
            at=at,
            workflow=workflow,
            key=key,
            run_id=run_id,
        )


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
    ) -> None:
        self.workflow = workflow
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

    @classmethod
    def create(cls, *, batch_id: str, at: datetime, **facts: Any) -> Batch:
        return cls.start(cls.Created, stream=batch_id, at=at, **facts)
