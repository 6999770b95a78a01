"""Queries over the run-summaries view: one run, filtered pages, work for the executor, batches."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping
from typing import Any

from ledger.errors import InvalidRequest
from ledger.hashing import format_timestamp, parse_timestamp
from projections.db import Connection
from projections.search import parse
from projections.view import Tables, loads, placeholders
from projections.views.stats import figures
from projections.views.summaries import summary_from_row
from projections.views.summaries_fold import SUMMARY_FIELDS
from projections.views.summaries_search import Values, select_runs

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_SELECT = ", ".join(SUMMARY_FIELDS)


def encode_cursor(created_at: str, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, run_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest(f"invalid cursor {cursor!r}") from None
    if not isinstance(created_at, str) or not isinstance(run_id, str):
        raise InvalidRequest(f"invalid cursor {cursor!r}")
    return created_at, run_id


def normalise_time(value: str, field: str) -> str:
    """An ISO 8601 instant in the view's own format (so text order is time order)."""
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        raise InvalidRequest(f"{field} must be an ISO 8601 timestamp, not {value!r}") from None


def run_summary(conn: Connection, t: Tables, run_id: str) -> dict[str, Any] | None:
    row = conn.one(f"SELECT {_SELECT} FROM {t('runs')} WHERE run_id = ?", (run_id,))
    return None if row is None else summary_from_row(row)


def search_stats(
    conn: Connection,
    t: Tables,
    q: str,
    *,
    workflow: Values | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    workspace: str | None = None,
) -> dict[str, Any]:
    """``GET /api/stats?q=``: the stats of the runs ``q`` selects (view-format time bounds),
    over the run summaries, which hold every field ``q`` names."""
    selection = select_runs(
        conn,
        t,
        workspace=workspace,
        columns={"workflow": workflow},
        created_after=created_after,
        created_before=created_before,
        expr=parse(q),
        paged=False,
    )
    rows = conn.all(
        f"SELECT r.workflow, r.status, r.duration_seconds AS d FROM {selection.source} {selection.clause}",
        selection.args,
    )
    return figures(rows)


def list_runs(
    conn: Connection,
    t: Tables,
    *,
    status: Values | None = None,
    workflow: Values | None = None,
    triggered_by: Values | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
    params: Mapping[str, Values] | None = None,
    labels: Mapping[str, Values] | None = None,
    q: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    workspace: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first (created_at, then run_id); every filter AND-combined, the values of one
    plain filter OR-combined, and ``q`` (SPEC section 8) AND-combined with them; only runs of
    ``workspace`` (None: every workspace)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    selection = select_runs(
        conn,
        t,
        workspace=workspace,
        columns={"status": status, "workflow": workflow, "triggered_by": triggered_by},
        created_after=None if created_after is None else normalise_time(created_after, "created_after"),
        created_before=None if created_before is None else normalise_time(created_before, "created_before"),
        attrs=[(f"param.{k}", v) for k, v in sorted((params or {}).items())]
        + [(f"label.{k}", v) for k, v in sorted((labels or {}).items())],
        expr=parse(q) if q is not None else None,
    )
    order = selection.order
    if cursor is not None:
        created_at, run_id = decode_cursor(cursor)
        selection.add(
            f"({order}.created_at < ? OR ({order}.created_at = ? AND {order}.run_id < ?))",
            created_at,
            created_at,
            run_id,
        )
    columns = ", ".join(f"r.{c}" for c in SUMMARY_FIELDS)
    rows = conn.all(
        f"SELECT {columns} FROM {selection.source} {selection.clause} "
        f"ORDER BY {order}.created_at DESC, {order}.run_id DESC LIMIT ?",
        [*selection.args, limit + 1],
    )
    page = [summary_from_row(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(last["created_at"], last["run_id"])
    return page, next_cursor


def pending_run_ids(
    conn: Connection, t: Tables, limit: int = 50, workspaces: Collection[str] | None = None
) -> list[str]:
    """Pending runs in ledger order, leaving out those whose batch is at its parallelism and
    OpenLineage runs (another engine executes those; ``Ledger.claim`` refuses them); only
    runs of ``workspaces`` (None: any)."""
    among, chosen_in = "", list(sorted(workspaces or ()))
    if workspaces is not None:
        among = f"AND workspace IN ({placeholders(len(chosen_in))}) " if chosen_in else "AND 1 = 0 "
    rows = conn.all(
        f"SELECT run_id, batch_id FROM {t('runs')} WHERE status = 'pending' "
        f"AND trigger_kind <> 'openlineage' {among}ORDER BY position LIMIT ?",
        (*chosen_in, limit * 4),
    )
    batch_ids = sorted({r["batch_id"] for r in rows if r["batch_id"]})
    room: dict[str, int] = {}
    if batch_ids:
        marks = placeholders(len(batch_ids))
        limits = {
            r["batch_id"]: int(r["parallelism"])
            for r in conn.all(
                f"SELECT batch_id, parallelism FROM {t('batches')} WHERE batch_id IN ({marks})", batch_ids
            )
        }
        running = {
            r["batch_id"]: int(r["n"])
            for r in conn.all(
                f"SELECT batch_id, COUNT(*) AS n FROM {t('runs')} WHERE status = 'running' "
                f"AND batch_id IN ({marks}) GROUP BY batch_id",
                batch_ids,
            )
        }
        room = {b: limits.get(b, 1) - running.get(b, 0) for b in batch_ids}
    chosen: list[str] = []
    for row in rows:
        batch = row["batch_id"]
        if batch:
            if room.get(batch, 0) <= 0:
                continue
            room[batch] -= 1
        chosen.append(row["run_id"])
        if len(chosen) == limit:
            break
    return chosen


def lapsed_run_ids(conn: Connection, t: Tables, now_iso: str) -> list[str]:
    rows = conn.all(
        f"SELECT run_id FROM {t('runs')} WHERE status = 'running' AND "
        "lease_expires_at < ? ORDER BY lease_expires_at",
        (now_iso,),
    )
    return [r["run_id"] for r in rows]


def batch_statuses(conn: Connection, t: Tables, batch_id: str) -> dict[str, str] | None:
    """The status of each run of the batch (``run_ids`` order), or None before the view has
    seen the batch."""
    batch = conn.one(f"SELECT batch_id, run_ids FROM {t('batches')} WHERE batch_id = ?", (batch_id,))
    if batch is None:
        return None
    run_ids: list[str] = loads(batch["run_ids"])
    known = {
        r["run_id"]: str(r["status"])
        for r in conn.all(f"SELECT run_id, status FROM {t('runs')} WHERE batch_id = ?", (batch_id,))
    }
    return {run_id: known.get(run_id, "pending") for run_id in run_ids}
