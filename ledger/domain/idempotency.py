"""Idempotency keys: a small stream written in the same save as the run it names."""

from __future__ import annotations

import hashlib
from datetime import datetime

from ledger.domain.aggregate import ChainedAggregate, StreamCreated
from ledger.domain.workspace import DEFAULT_WORKSPACE, scoped


def idempotency_stream(workflow: str, key: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    digest = hashlib.sha256(f"{scoped(workspace, workflow)}\x00{key}".encode()).hexdigest()
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
    def claim(
        cls, *, workflow: str, key: str, run_id: str, at: datetime, workspace: str = DEFAULT_WORKSPACE
    ) -> IdempotencyKey:
        return cls.create_stream(
            cls.Claimed,
            stream=idempotency_stream(workflow, key, workspace),
            at=at,
            workflow=workflow,
            key=key,
            run_id=run_id,
        )
