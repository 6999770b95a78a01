"""The audit trail (``GET /api/runs/{id}/audit``): every state transition and every operator
action on a run, with actor and time, in ledger order.

Entries are appended, one per event, keyed by the event's position: applying an event twice
would be refused by the key rather than silently doubling the trail.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from ledger.store.event_record import EventRecord
from projections.db import Connection
from projections.view import (
    CarryingRebuilder,
    Rebuilder,
    Tables,
    View,
    chunks,
    dumps,
    loads,
    placeholders,
    runs_to_read,
)
from projections.views.summaries import LINEAGE_STATUS, TERMINAL

_ENDINGS = {
    "Run.Succeeded": ("succeeded", "success"),
    "Run.Failed": ("failed", "failed"),
    "Run.Killed": ("killed", "killed"),
}


#: Runs whose status a rebuild keeps in memory between batches.
CARRY_RUNS = 200_000


class AuditView(View):
    name: ClassVar[str] = "audit"
    schema_version: ClassVar[int] = 2  # v2: keys compared byte by byte on PostgreSQL
    table_names: ClassVar[tuple[str, ...]] = ("entries", "status")

    def create(self, conn: Connection, t: Tables) -> None:
        key = conn.key_text
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t('entries')} (position BIGINT PRIMARY KEY, "
            f"run_id {key} NOT NULL, at TEXT NOT NULL, actor TEXT, action TEXT NOT NULL, "
            "from_status TEXT, to_status TEXT, detail TEXT NOT NULL)"
        )
        conn.execute(f"CREATE INDEX IF NOT EXISTS {t('entries')}_by_run ON {t('entries')} (run_id, position)")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t('status')} (run_id {key} PRIMARY KEY, status TEXT NOT NULL)"
        )

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        self.fold(conn, t, events, {})

    def rebuilder(self) -> Rebuilder:
        return CarryingRebuilder(self, partial(self.fold, write=False), self.write_statuses, CARRY_RUNS)

    def fold(
        self,
        conn: Connection,
        t: Tables,
        events: list[EventRecord],
        known: dict[str, str],
        *,
        write: bool = True,
    ) -> dict[str, str]:
        """Fold ``events`` into the tables (without ``write``, the status rows are left to the
        caller); ``known`` holds run statuses already read (and current). Returns the
        statuses of the runs this batch saw."""
        streams = runs_to_read(events)
        statuses = {run_id: known[run_id] for run_id in streams if run_id in known}
        wanted = sorted(streams - statuses.keys())
        for part in chunks(wanted):
            for row in conn.all(
                f"SELECT run_id, status FROM {t('status')} WHERE run_id IN ({placeholders(len(part))})", part
            ):
                statuses[row["run_id"]] = row["status"]
        entries: list[tuple[Any, ...]] = []
        changed: set[str] = set()
        for event in events:
            entry = _entry(event, statuses.get(event.stream))
            if entry is None:
                continue
            actor, action, to, detail = entry
            before = statuses.get(event.stream)
            if to is not None:
                statuses[event.stream] = to
                changed.add(event.stream)
            entries.append(
                (
                    event.position,
                    event.stream,
                    event.timestamp,
                    actor,
                    action,
                    before if to is not None else None,
                    to,
                    dumps(detail),
                )
            )
        conn.executemany(
            f"INSERT INTO {t('entries')} (position, run_id, at, actor, action, "
            "from_status, to_status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            entries,
        )
        if write:
            self.write_statuses(conn, t, {run_id: statuses[run_id] for run_id in sorted(changed)})
        return statuses

    @staticmethod
    def write_statuses(conn: Connection, t: Tables, statuses: dict[str, str]) -> None:
        """Insert or update the status rows of these runs."""
        conn.executemany(
            f"INSERT INTO {t('status')} (run_id, status) VALUES (?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status",
            list(statuses.items()),
        )


def _entry(
    event: EventRecord, status: str | None
) -> tuple[str | None, str, str | None, dict[str, Any]] | None:
    """(actor, action, new status or None, detail) for an event worth auditing."""
    d = event.data
    if event.type == "Run.Triggered":
        detail = {
            k: d.get(k)
            for k in (
                "workflow",
                "version",
                "definition_hash",
                "trigger_kind",
                "parameters",
                "replay_of",
                "resume_of",
                "resume_from_task",
                "batch_id",
                "idempotency_key",
            )
        }
        return d.get("triggered_by"), "triggered", "pending", detail
    if status is None:
        return None
    if event.type == "Run.Started":
        return (d.get("worker_id"), "started", "running", {"lease_expires_at": d.get("lease_expires_at")})
    if event.type in _ENDINGS:
        action, to = _ENDINGS[event.type]
        if event.type == "Run.Failed" and d.get("error") == "worker_lost":
            action = "worker_lost"
        detail = {k: d[k] for k in ("error", "reason") if k in d}
        return d.get("by"), action, to, detail
    if event.type == "Run.TaskReused":
        return None, "task_reused", None, {"task": d.get("task"), "source_run_id": d.get("source_run_id")}
    if event.type == "Run.LineageReported":
        moved: str | None = LINEAGE_STATUS.get(str(d.get("event_type")))
        if moved == status or status in TERMINAL:
            moved = None
        return (
            d.get("producer"),
            "openlineage_" + str(d.get("event_type", "OTHER")).lower(),
            moved,
            {"event_time": d.get("event_time"), "job": d.get("job")},
        )
    return None


def query_audit(conn: Connection, t: Tables, run_id: str) -> list[dict[str, Any]]:
    rows = conn.all(
        f"SELECT at, actor, action, from_status, to_status, detail FROM "
        f"{t('entries')} WHERE run_id = ? ORDER BY position",
        (run_id,),
    )
    return [row | {"detail": loads(row["detail"])} for row in rows]
