"""Pending and lapsed runs read straight from the events table.

The usual source of candidates is the run views of :mod:`projections` (indexed, batch-aware);
this is the fallback for a worker that runs without a projection runner (``runledger worker
--scan-events``) and for tests of the executor alone. It scans the events table, so it suits
small ledgers.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.status import ENDING_EVENTS, RunStatus
from ledger.service import Ledger
from ledger.store.setup import events_table

_PENDING = (
    "SELECT e.originator_id AS run_id FROM {t} e "
    "WHERE e.originator_version = 1 AND e.topic LIKE '%:Run.Triggered' "
    "AND NOT EXISTS (SELECT 1 FROM {t} f WHERE f.originator_id = e.originator_id "
    "AND f.originator_version = 2) ORDER BY e.{pos} LIMIT {limit}"
)
#: An event ``f`` that ends its run (any of ``ENDING_EVENTS``), matched by topic.
_ENDS = " OR ".join(f"f.topic LIKE '%:{name}'" for name in ENDING_EVENTS)
_STARTED = (
    "SELECT s.originator_id AS run_id FROM {t} s WHERE s.topic LIKE '%:Run.Started' "
    "AND NOT EXISTS (SELECT 1 FROM {t} f WHERE f.originator_id = s.originator_id "
    f"AND ({_ENDS}))"
)


class EventScan:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        db = ledger.settings.database
        name = events_table(ledger.recorder)
        if db.kind == "sqlite":
            self._table, self._pos, self._param = name, "rowid", "?"
        else:
            # The schema name is validated by parse_database_url ([A-Za-z0-9_]).
            self._table = f'"{db.schema or "public"}"."{name}"'
            self._pos, self._param = "notification_id", "%s"

    def _query(self, template: str, args: tuple[Any, ...] = ()) -> list[str]:
        query = template.format(t=self._table, pos=self._pos, limit=self._param)
        if self._param == "%s":
            query = query.replace("%:", "%%:")
            query = query.replace("LIMIT %%s", "LIMIT %s")
        datastore = self.ledger.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(query, args)
            return [str(row["run_id"]) for row in cursor.fetchall()]

    def pending_run_ids(self, limit: int = 50) -> list[str]:
        """Runs that have only their ``Run.Triggered`` event, oldest first."""
        return self._query(_PENDING, (limit,))

    def lapsed_run_ids(self, now_iso: str) -> list[str]:
        """Running runs whose lease expired before ``now_iso``."""
        lapsed = []
        for run_id in self._query(_STARTED):
            run = self.ledger.get_run(run_id)
            if run.status == RunStatus.RUNNING and run.lease_lapsed(now_iso):
                lapsed.append(run_id)
        return lapsed
