"""History stats (``GET /api/stats``): counts by status, average, p50 and p95 duration, per
workflow, over a time window.

One narrow row per run (workflow, created_at, status, duration) indexed by time and by
workflow; the numbers are computed at query time so any window works. Percentiles are linear
interpolation between closest ranks (numpy's default, PostgreSQL's ``percentile_cont``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

from ledger.domain.status import TERMINAL, RunStatus, status_after, transition_time
from ledger.domain.workspace import workspace_of
from ledger.hashing import parse_timestamp
from ledger.store.event_record import EventRecord
from projections.db import Connection
from projections.view import CarryingRebuilder, Rebuilder, Tables, View, runs_to_read

STATUSES = tuple(status.value for status in RunStatus)


#: Runs whose row a rebuild keeps in memory between batches.
CARRY_RUNS = 50_000


class StatsView(View):
    name: ClassVar[str] = "stats"
    # v2: covering indexes for SQL-side stats. v3: keys compared byte by byte on PostgreSQL.
    # v4: workspace (SPEC 9), leading every index.
    schema_version: ClassVar[int] = 4
    table_names: ClassVar[tuple[str, ...]] = ("runs",)

    def create(self, conn: Connection, t: Tables) -> None:
        runs = t("runs")
        key = conn.key_text
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {runs} (run_id {key} PRIMARY KEY, "
            f"workflow {key} NOT NULL, created_at {key} NOT NULL, status {key} NOT NULL, "
            f"started_at TEXT, duration_seconds DOUBLE PRECISION, workspace {key} NOT NULL)"
        )
        for name, columns in {
            "created": "created_at",
            "workflow": "workflow, created_at",
            "status": "workflow, status, duration_seconds",
            "duration": "duration_seconds",
            "workflow_duration": "workflow, duration_seconds",
        }.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {runs}_by_{name} ON {runs} (workspace, {columns})")

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        self.fold(conn, t, events, {})

    def rebuilder(self) -> Rebuilder:
        return CarryingRebuilder(self, partial(self.fold, write=False), self.write_runs, CARRY_RUNS)

    def fold(
        self,
        conn: Connection,
        t: Tables,
        events: list[EventRecord],
        known: dict[str, dict[str, Any]],
        *,
        write: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """Fold ``events`` into the table (without ``write``: leave that to the caller);
        ``known`` holds rows already read (and current). Returns the rows of the runs this
        batch touched."""
        runs = t("runs")
        streams = runs_to_read(events)
        rows = {run_id: known[run_id] for run_id in streams if run_id in known}
        wanted = sorted(streams - rows.keys())
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in conn.all(f"SELECT * FROM {runs} WHERE run_id IN ({marks})", part):
                rows[row["run_id"]] = row
        for event in events:
            match event.type:
                case "Run.Triggered":
                    rows[event.stream] = {
                        "run_id": event.stream,
                        "workflow": event.data["workflow"],
                        "created_at": event.timestamp,
                        "status": RunStatus.PENDING.value,
                        "started_at": None,
                        "duration_seconds": None,
                        "workspace": workspace_of(event.data),
                    }
                case (
                    "Run.Started"
                    | "Run.Succeeded"
                    | "Run.Failed"
                    | "Run.Killed"
                    | "Run.LineageReported"
                    | "Run.GateReached"
                    | "Run.GateApproved"
                ):
                    if event.stream in rows:
                        _move(rows[event.stream], event)
                case _:
                    pass
        if write:
            self.write_runs(conn, t, rows)
        return rows

    @staticmethod
    def write_runs(conn: Connection, t: Tables, rows: dict[str, dict[str, Any]]) -> None:
        """Insert or update the rows of these runs."""
        conn.executemany(
            f"INSERT INTO {t('runs')} (run_id, workflow, created_at, status, started_at, "
            "duration_seconds, workspace) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
            "status = excluded.status, started_at = excluded.started_at, "
            "duration_seconds = excluded.duration_seconds",
            [
                (
                    r["run_id"],
                    r["workflow"],
                    r["created_at"],
                    r["status"],
                    r["started_at"],
                    r["duration_seconds"],
                    r["workspace"],
                )
                for r in rows.values()
            ],
        )


def _move(row: dict[str, Any], event: EventRecord) -> None:
    """The status rules applied to a run's row: when it started, and how long it took."""
    status = status_after(row["status"], event.type, event.data)
    if status == row["status"]:
        return
    at = transition_time(event.type, event.data, event.timestamp)
    if status == RunStatus.RUNNING:
        row["started_at"] = row["started_at"] or at
    elif status in TERMINAL:
        begun = row["started_at"] or row["created_at"]
        row["duration_seconds"] = max(0.0, (parse_timestamp(at) - parse_timestamp(begun)).total_seconds())
    row["status"] = status.value


def query_stats(
    conn: Connection,
    t: Tables,
    *,
    workflow: str | Sequence[str] | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """Counts and averages by ``GROUP BY`` over a covering index; each percentile is two rows
    picked by rank (``ORDER BY duration LIMIT 2 OFFSET k``), so no run rows reach Python.

    Several ``workflow`` values mean any. Only runs of ``workspace`` (None: every workspace;
    the indexes lead with it). With ``q``, the run summaries answer instead
    (:func:`projections.views.summaries_queries.search_stats`, through :func:`figures`)."""
    runs = t("runs")
    where, params = ["1 = 1"], []
    if workspace is not None:
        where.append("workspace = ?")
        params.append(workspace)
    workflows = [workflow] if isinstance(workflow, str) else list(dict.fromkeys(workflow or []))
    if workflows:
        where.append(f"workflow IN ({', '.join('?' * len(workflows))})")
        params += workflows
    return _query(conn, runs, where, params, created_after, created_before)


def figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The same figures as :func:`query_stats` from the selected runs' rows (``workflow``,
    ``status``, duration ``d``), in one pass: for a ``q`` selection, a semi-join the 20-odd
    rank queries would each repeat."""
    per: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        per.setdefault(row["workflow"], []).append(row)
    return _figures(rows) | {
        "per_workflow": [{"workflow": name} | _figures(per[name]) for name in sorted(per)]
    }


def _figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    by_status = dict.fromkeys(STATUSES, 0)
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    durations = sorted(float(r["d"]) for r in rows if r["d"] is not None)
    return {
        "total_runs": len(rows),
        "by_status": by_status,
        "avg_duration_seconds": sum(durations) / len(durations) if durations else None,
        "p50_duration_seconds": _interpolated(durations, 0.5),
        "p95_duration_seconds": _interpolated(durations, 0.95),
    }


def _interpolated(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as :func:`_percentile` reads them."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q
    low = int(rank)
    if low + 1 >= len(ordered):
        return ordered[low]
    return ordered[low] + (ordered[low + 1] - ordered[low]) * (rank - low)


def _query(
    conn: Connection,
    runs: str,
    where: list[str],
    params: list[Any],
    created_after: str | None,
    created_before: str | None,
) -> dict[str, Any]:
    if created_after is not None:
        where.append("created_at >= ?")
        params.append(created_after)
    if created_before is not None:
        where.append("created_at < ?")
        params.append(created_before)
    condition = " AND ".join(where)
    groups = conn.all(
        f"SELECT workflow, status, COUNT(*) AS n, SUM(duration_seconds) AS total, "
        f"COUNT(duration_seconds) AS timed FROM {runs} WHERE {condition} "
        "GROUP BY workflow, status",
        params,
    )
    names = sorted({g["workflow"] for g in groups})
    overall = _summarise(conn, runs, condition, params, groups)
    per_workflow = [
        {"workflow": name}
        | _summarise(
            conn,
            runs,
            f"{condition} AND workflow = ?",
            [*params, name],
            [g for g in groups if g["workflow"] == name],
        )
        for name in names
    ]
    return overall | {"per_workflow": per_workflow}


def _summarise(
    conn: Connection, runs: str, condition: str, params: list[Any], groups: list[dict[str, Any]]
) -> dict[str, Any]:
    by_status = dict.fromkeys(STATUSES, 0)
    for group in groups:
        by_status[group["status"]] = by_status.get(group["status"], 0) + int(group["n"])
    timed = sum(int(g["timed"]) for g in groups)
    total = sum(float(g["total"]) for g in groups if g["total"] is not None)
    return {
        "total_runs": sum(int(g["n"]) for g in groups),
        "by_status": by_status,
        "avg_duration_seconds": total / timed if timed else None,
        "p50_duration_seconds": _percentile(conn, runs, condition, params, timed, 0.5),
        "p95_duration_seconds": _percentile(conn, runs, condition, params, timed, 0.95),
    }


def _percentile(
    conn: Connection, runs: str, condition: str, params: list[Any], count: int, q: float
) -> float | None:
    """Linear interpolation between closest ranks, reading just the two ranks it needs."""
    if count == 0:
        return None
    rank = (count - 1) * q
    low = int(rank)
    need = 2 if low + 1 < count else 1
    top = count - low - need  # offset of the higher needed rank, counted from the largest
    base = (
        f"SELECT duration_seconds AS d FROM {runs} WHERE {condition} AND "
        "duration_seconds IS NOT NULL ORDER BY duration_seconds"
    )
    if top < low:  # nearer the top: walk the index from that end
        rows = conn.all(f"{base} DESC LIMIT ? OFFSET ?", [*params, need, top])[::-1]
    else:
        rows = conn.all(f"{base} LIMIT ? OFFSET ?", [*params, need, low])
    values = [float(r["d"]) for r in rows]
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return values[0] + (values[1] - values[0]) * (rank - low)
