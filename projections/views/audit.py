"""The audit trail (``GET /api/runs/{id}/audit``): every state transition and every operator
action on a run, with actor and time, in ledger order.

Entries are appended, one per event, keyed by the event's position: applying an event twice
would be refused by the key rather than silently doubling the trail.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from ledger.domain.status import TERMINAL, RunStatus, ends_run, status_after
from ledger.sensitive import ERASED, HIDDEN, masked
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

#: Runs whose status a rebuild keeps in memory between batches.
CARRY_RUNS = 200_000


class AuditView(View):
    name: ClassVar[str] = "audit"
    # v2: keys compared byte by byte on PostgreSQL. v3: late terminal events say so ("late").
    schema_version: ClassVar[int] = 3
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


Entry = tuple[str | None, str, str | None, dict[str, Any]]

_TRIGGER_FACTS = (
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


def _entry(event: EventRecord, status: str | None) -> Entry | None:
    """(actor, action, new status or None, detail) for an event worth auditing; ``status`` is
    the run's status before it (None before its trigger: nothing but the trigger counts)."""
    d = event.data
    match event.type:
        case "Run.Triggered":
            return (
                d.get("triggered_by"),
                "triggered",
                _moved(event, status),
                {k: d.get(k) for k in _TRIGGER_FACTS}
                | {"parameters": masked(d.get("parameters") or {}, erased=False)},
            )
        case _ if status is None:
            return None
        case "Run.Started":
            detail = {"lease_expires_at": d.get("lease_expires_at")}
            return d.get("worker_id"), "started", _moved(event, status), detail
        case "Run.Succeeded":
            return _ended(event, status, "succeeded")
        case "Run.Failed":
            return _ended(event, status, "worker_lost" if d.get("error") == "worker_lost" else "failed")
        case "Run.Killed":
            return _ended(event, status, "killed")
        case "Run.TaskReused":
            return (
                d.get("by"),
                "task_reused",
                None,
                {"task": d.get("task"), "source_run_id": d.get("source_run_id")},
            )
        case "Run.Labelled":
            detail = {"set": d.get("set") or {}, "remove": d.get("remove") or [], "reason": d.get("reason")}
            return d.get("by"), "labelled", None, detail
        case "Run.HoldPlaced" | "Run.HoldReleased":
            action = "hold_placed" if event.type == "Run.HoldPlaced" else "hold_released"
            return d.get("by"), action, None, {"reason": d.get("reason")}
        case "Run.Expunged":
            detail = {k: d.get(k) for k in ("reason", "files_deleted", "key_destroyed")}
            return d.get("by"), "expunged", None, detail
        case "Run.LineageReported":
            return (
                d.get("producer"),
                "openlineage_" + str(d.get("event_type", "OTHER")).lower(),
                _moved(event, status),
                {"event_time": d.get("event_time"), "job": d.get("job")} | _late(event, status),
            )
        case _:
            return None


def _late(event: EventRecord, status: str) -> dict[str, Any]:
    """``{"late": True}`` for a terminal event after the run's end (recorded, moving nothing)."""
    late = RunStatus(status) in TERMINAL and ends_run(event.type, event.data)
    return {"late": True} if late else {}


def _moved(event: EventRecord, status: str | None) -> str | None:
    """The status the rules move the run to, or None when the event leaves it as it was."""
    after = status_after(status, event.type, event.data)
    return None if after is None or after == status else after.value


def _ended(event: EventRecord, status: str, action: str) -> Entry:
    detail: dict[str, Any] = {k: event.data[k] for k in ("error", "reason") if k in event.data}
    return event.data.get("by"), action, _moved(event, status), detail


def query_audit(conn: Connection, t: Tables, run_id: str) -> list[dict[str, Any]]:
    rows = conn.all(
        f"SELECT at, actor, action, from_status, to_status, detail FROM "
        f"{t('entries')} WHERE run_id = ? ORDER BY position",
        (run_id,),
    )
    entries = [row | {"detail": loads(row["detail"])} for row in rows]
    return erased_after_expunge(entries)


def erased_after_expunge(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Once a run is expunged, its trigger's sensitive values read ``[erased]``."""
    if not any(entry["action"] == "expunged" for entry in entries):
        return entries
    for entry in entries:
        if entry["action"] == "triggered":
            params = entry["detail"].get("parameters") or {}
            entry["detail"]["parameters"] = {k: ERASED if v == HIDDEN else v for k, v in params.items()}
    return entries
