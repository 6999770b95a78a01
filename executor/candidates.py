"""Pending and lapsed runs read straight from the events table.

The usual source of candidates is the run views of :mod:`projections` (indexed, batch-aware);
this is the fallback for a worker that runs without a projection runner (``runledger worker
--scan-events``) and for tests of the executor alone. It scans the events table (through the
ledger's :class:`~ledger.store.reader.EventReader`), so it suits small ledgers.
"""

from __future__ import annotations

from ledger.domain.status import ENDING_EVENTS, RunStatus
from ledger.service import Ledger


class EventScan:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def pending_run_ids(self, limit: int = 50) -> list[str]:
        """Runs that have only their ``Run.Triggered`` event, oldest first, then runs pending
        again after their approval gate was signed (SPEC 10)."""
        found = self.ledger.reader.lone_streams("Run.Triggered", limit=limit)
        for run_id in self.ledger.reader.streams_with("Run.GateApproved", without=ENDING_EVENTS):
            if len(found) < limit and self.ledger.get_run(run_id).status == RunStatus.PENDING:
                found.append(run_id)
        return found

    def lapsed_run_ids(self, now_iso: str) -> list[str]:
        """Running runs whose lease expired before ``now_iso``."""
        lapsed = []
        for run_id in self.ledger.reader.streams_with("Run.Started", without=ENDING_EVENTS):
            run = self.ledger.get_run(run_id)
            if run.status == RunStatus.RUNNING and run.lease_lapsed(now_iso):
                lapsed.append(run_id)
        return lapsed
