"""History stats (``GET /api/stats``): counts by status, average, p50 and p95 duration, per
workflow, over a time window.

One narrow row per run (workflow, created_at, status, duration) indexed by time and by
workflow; the numbers are computed at query time so any window works. Percentiles are linear
interpolation between closest ranks (numpy's default, PostgreSQL's ``percentile_cont``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ledger.hashing import parse_timestamp
from ledger.records import EventRecord
from projections.db import Connection
from projections.summaries import LINEAGE_STATUS, TERMINAL
from projections.view import Tables, View

STATUSES = ("pending", "running", "success", "failed", "killed")


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks of an ascending list."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


class StatsView(View):
    name: ClassVar[str] = "stats"
    schema_version: ClassVar[int] = 1
    table_names: ClassVar[tuple[str, ...]] = ("runs",)

    def create(self, conn: Connection, t: Tables) -> None:
        runs = t("runs")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {runs} (run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, "
            "created_at TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT, "
            "duration_seconds DOUBLE PRECISION)"
        )
        conn.execute(f"CREATE INDEX IF NOT EXISTS {runs}_by_created ON {runs} (created_at)")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {runs}_by_workflow ON {runs} "
                     "(workflow, created_at)")

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        runs = t("runs")
        rows: dict[str, dict[str, Any]] = {}
        wanted = sorted({e.stream for e in events if e.type.startswith("Run.")
                         and e.type != "Run.Triggered"})
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in conn.all(f"SELECT * FROM {runs} WHERE run_id IN ({marks})", part):
                rows[row["run_id"]] = row
        for event in events:
            if event.type == "Run.Triggered":
                rows[event.stream] = {"run_id": event.stream, "workflow": event.data["workflow"],
                                      "created_at": event.timestamp, "status": "pending",
                                      "started_at": None, "duration_seconds": None}
                continue
            found = rows.get(event.stream)
            if found is None or found["status"] in TERMINAL:
                continue
            row = found
            to, at = _transition(event)
            if to is None:
                continue
            if to == "running":
                row["started_at"] = row["started_at"] or at
            else:
                begun = row["started_at"] or row["created_at"]
                if to in TERMINAL and at is not None:
                    seconds = (parse_timestamp(at) - parse_timestamp(begun)).total_seconds()
                    row["duration_seconds"] = max(0.0, seconds)
            row["status"] = to
        conn.executemany(
            f"INSERT INTO {runs} (run_id, workflow, created_at, status, started_at, "
            "duration_seconds) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
            "status = excluded.status, started_at = excluded.started_at, "
            "duration_seconds = excluded.duration_seconds",
            [(r["run_id"], r["workflow"], r["created_at"], r["status"], r["started_at"],
              r["duration_seconds"]) for r in rows.values()],
        )


def _transition(event: EventRecord) -> tuple[str | None, str | None]:
    kind = event.type[4:]
    if kind == "Started":
        return "running", event.timestamp
    if kind in {"Succeeded", "Failed", "Killed"}:
        return {"Succeeded": "success", "Failed": "failed", "Killed": "killed"}[kind], \
            event.timestamp
    if kind == "LineageReported":
        to = LINEAGE_STATUS.get(str(event.data.get("event_type")))
        return to, event.data.get("event_time") or event.timestamp
    return None, None


def query_stats(conn: Connection, t: Tables, *, workflow: str | None = None,
                created_after: str | None = None, created_before: str | None = None
                ) -> dict[str, Any]:
    where, params = ["1 = 1"], []
    if workflow is not None:
        where.append("workflow = ?")
        params.append(workflow)
    if created_after is not None:
        where.append("created_at >= ?")
        params.append(created_after)
    if created_before is not None:
        where.append("created_at < ?")
        params.append(created_before)
    rows = conn.all(f"SELECT workflow, status, duration_seconds FROM {t('runs')} "
                    f"WHERE {' AND '.join(where)}", params)
    overall = _summarise(rows)
    per_workflow = []
    for name in sorted({r["workflow"] for r in rows}):
        per_workflow.append({"workflow": name} | _summarise([r for r in rows
                                                            if r["workflow"] == name]))
    return overall | {"per_workflow": per_workflow}


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_status = dict.fromkeys(STATUSES, 0)
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    durations = sorted(float(r["duration_seconds"]) for r in rows
                       if r["duration_seconds"] is not None)
    return {
        "total_runs": len(rows),
        "by_status": by_status,
        "avg_duration_seconds": sum(durations) / len(durations) if durations else None,
        "p50_duration_seconds": percentile(durations, 0.5),
        "p95_duration_seconds": percentile(durations, 0.95),
    }
