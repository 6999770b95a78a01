"""OpenLineage ingestion (issue 7): :class:`LineageCommands` records RunEvents another engine
reports as the events of a run of ours.
"""

from __future__ import annotations

from eventsourcing.persistence import IntegrityError

from ledger import __version__
from ledger.domain.openlineage import (
    OPENLINEAGE_DEFINITION,
    OPENLINEAGE_DEFINITION_HASH,
    OPENLINEAGE_VERSION,
    LineageRecorded,
    RunEvent,
    lineage_facts,
)
from ledger.domain.run import Run
from ledger.errors import Conflict
from ledger.service.base import LedgerBase


class LineageCommands(LedgerBase):
    """The command behind the API's OpenLineage endpoint."""

    def record_openlineage(self, event: RunEvent, *, principal: str) -> LineageRecorded:
        """Record one OpenLineage RunEvent, creating its run on the first event seen.

        An event identical to one already recorded records nothing; any other is recorded. When two
        requests create the same run at once, the loser retries against the stored run.
        """
        facts = lineage_facts(event)
        for _ in range(16):  # each round at least one concurrent writer of the run succeeds
            at = self.clock()
            run = self._get(event.run_id)
            if run is None:
                run = Run.trigger(
                    run_id=event.run_id,
                    at=at,
                    workflow=event.workflow,
                    version=OPENLINEAGE_VERSION,
                    definition_hash=OPENLINEAGE_DEFINITION_HASH,
                    definition=dict(OPENLINEAGE_DEFINITION),
                    engine_version=__version__,
                    triggered_by=principal,
                    trigger_kind="openlineage",
                    parameters={},
                    replay_of=None,
                    resume_of=None,
                    resume_from_task=None,
                    batch_id=None,
                    idempotency_key=None,
                )
            elif not isinstance(run, Run):
                raise Conflict(f"{event.run_id!r} names a stream that is not a run")
            elif run.workflow != event.workflow:
                raise Conflict(f"run {run.id} is of workflow {run.workflow!r}, not {event.workflow!r}")
            if not run.record_lineage(at=at, **facts):
                return LineageRecorded(run.id, run.status.value, recorded=False)
            try:
                self.save(run)
            except IntegrityError:
                continue
            return LineageRecorded(run.id, run.status.value, recorded=True)
        raise Conflict(f"run {event.run_id} is being written concurrently; retry")
