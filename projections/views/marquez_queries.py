"""Queries over the Marquez read model (:mod:`projections.views.marquez`), in the shapes of
Marquez's own API (``marquez.api.*Resource``): namespaces, jobs, runs, datasets and their
versions, the lineage graph by node with a bounded depth both ways, column lineage, the event
feed and search. Every query is one workspace's (SPEC 9): it takes the workspace and reads
that workspace's rows only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.errors import InvalidRequest
from projections.db import Connection
from projections.view import Tables, loads
from projections.views.marquez import MARQUEZ_STATE
from projections.views.marquez_walk import DATASET_COLUMNS, RUN_COLUMNS, rows_by_key

#: Marquez's default lineage depth, and the most a caller may ask for.
DEFAULT_DEPTH = 20
MAX_DEPTH = 20
#: The most nodes a lineage graph returns (a walk stops growing there).
MAX_NODES = 5_000

Key = tuple[str, str]


# ---- namespaces -------------------------------------------------------------------------------
def namespaces(conn: Connection, t: Tables, ws: str) -> list[dict[str, Any]]:
    rows = conn.all(
        f"SELECT namespace, MIN(created_at) AS created_at, MAX(updated_at) AS updated_at FROM ("
        f"SELECT namespace, created_at, updated_at FROM {t('jobs')} WHERE workspace = ? UNION ALL "
        f"SELECT namespace, created_at, updated_at FROM {t('datasets')} WHERE workspace = ?) AS n "
        "GROUP BY namespace ORDER BY namespace",
        (ws, ws),
    )
    return [_namespace(r) for r in rows]


def namespace(conn: Connection, t: Tables, ws: str, ns: str) -> dict[str, Any] | None:
    return next((n for n in namespaces(conn, t, ws) if n["name"] == ns), None)


def _namespace(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["namespace"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "ownerName": "anonymous",
        "description": None,
        "isHidden": False,
    }


# ---- jobs and runs ----------------------------------------------------------------------------
def jobs(
    conn: Connection, t: Tables, ws: str, ns: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    total = conn.one(f"SELECT COUNT(*) AS n FROM {t('jobs')} WHERE workspace = ? AND namespace = ?", (ws, ns))
    rows = conn.all(
        f"SELECT * FROM {t('jobs')} WHERE workspace = ? AND namespace = ? ORDER BY name LIMIT ? OFFSET ?",
        (ws, ns, limit, offset),
    )
    return [_job(conn, t, r) for r in rows], int(total["n"] if total else 0)


def job(conn: Connection, t: Tables, ws: str, ns: str, name: str) -> dict[str, Any] | None:
    row = conn.one(
        f"SELECT * FROM {t('jobs')} WHERE workspace = ? AND namespace = ? AND name = ?", (ws, ns, name)
    )
    return None if row is None else _job(conn, t, row)


def _job(conn: Connection, t: Tables, row: dict[str, Any]) -> dict[str, Any]:
    edges = conn.all(
        f"SELECT direction, ds_namespace, ds_name FROM {t('edges')} "
        "WHERE workspace = ? AND job_namespace = ? AND job_name = ? ORDER BY ds_namespace, ds_name",
        (row["workspace"], row["namespace"], row["name"]),
    )
    latest = run(conn, t, row["workspace"], row["latest_run_id"]) if row["latest_run_id"] else None
    return {
        "id": {"namespace": row["namespace"], "name": row["name"]},
        "type": "BATCH",
        "name": row["name"],
        "simpleName": row["name"].rsplit(".", 1)[-1],
        "namespace": row["namespace"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "inputs": [
            {"namespace": e["ds_namespace"], "name": e["ds_name"]} for e in edges if e["direction"] == "in"
        ],
        "outputs": [
            {"namespace": e["ds_namespace"], "name": e["ds_name"]} for e in edges if e["direction"] == "out"
        ],
        "location": None,
        "description": None,
        "facets": loads(row["facets"]),
        "latestRun": latest,
        "latestRuns": [] if latest is None else [latest],
    }


def runs(
    conn: Connection, t: Tables, ws: str, ns: str, name: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = "WHERE workspace = ? AND namespace = ? AND name = ?"
    total = conn.one(f"SELECT COUNT(*) AS n FROM {t('runs')} {where}", (ws, ns, name))
    rows = conn.all(
        f"SELECT * FROM {t('runs')} {where} ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?",
        (ws, ns, name, limit, offset),
    )
    return [_run(r) for r in rows], int(total["n"] if total else 0)


def run(conn: Connection, t: Tables, ws: str, run_id: str) -> dict[str, Any] | None:
    row = conn.one(f"SELECT * FROM {t('runs')} WHERE run_id = ? AND workspace = ?", (run_id, ws))
    return None if row is None else _run(row)


def run_job_facets(conn: Connection, t: Tables, ws: str, run_id: str) -> dict[str, Any] | None:
    row = conn.one(
        f"SELECT j.facets FROM {t('runs')} r JOIN {t('jobs')} j ON j.workspace = r.workspace "
        "AND j.namespace = r.namespace AND j.name = r.name WHERE r.run_id = ? AND r.workspace = ?",
        (run_id, ws),
    )
    return None if row is None else loads(row["facets"])


def _run(row: dict[str, Any]) -> dict[str, Any]:
    return run_data(*(row[c] for c in RUN_COLUMNS))


def run_data(
    run_id: str,
    ns: str,
    name: str,
    status: str,
    created_at: str,
    updated_at: str,
    started: str | None,
    ended: str | None,
    facets_json: str,
    expunged: int,
) -> dict[str, Any]:
    """Marquez's run from a ``runs`` row's :data:`RUN_COLUMNS`."""
    facets = json_value(facets_json)
    nominal = facets.get("nominalTime") or {}
    return {
        "id": run_id,
        "createdAt": created_at,
        "updatedAt": updated_at,
        "nominalStartTime": nominal.get("nominalStartTime"),
        "nominalEndTime": nominal.get("nominalEndTime"),
        "state": MARQUEZ_STATE[status],
        "startedAt": started,
        "endedAt": ended,
        "durationMs": _millis(started, ended) if started and ended else None,
        "args": {},
        "jobVersion": {"namespace": ns, "name": name},
        "facets": facets,
        #: Not Marquez's: the run is expunged (SPEC section 11).
        "expunged": bool(expunged),
    }


def _millis(started: str, ended: str) -> int:
    """Milliseconds from one stored timestamp to another, at least 0 (both are UTC
    ``...ffffffZ`` as the view stores them, which ``fromisoformat`` reads directly)."""
    delta = datetime.fromisoformat(ended) - datetime.fromisoformat(started)
    return max(0, int(delta.total_seconds() * 1000))


def json_value(text: str | None) -> Any:
    """A stored JSON column decoded; the empty object and list (most facets and fields of a
    graph's nodes) without a parse."""
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return loads(text)


# ---- datasets ---------------------------------------------------------------------------------
def datasets(
    conn: Connection, t: Tables, ws: str, ns: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = "WHERE workspace = ? AND namespace = ?"
    total = conn.one(f"SELECT COUNT(*) AS n FROM {t('datasets')} {where}", (ws, ns))
    rows = conn.all(
        f"SELECT * FROM {t('datasets')} {where} ORDER BY name LIMIT ? OFFSET ?", (ws, ns, limit, offset)
    )
    return [_dataset(r) for r in rows], int(total["n"] if total else 0)


def dataset(conn: Connection, t: Tables, ws: str, ns: str, name: str) -> dict[str, Any] | None:
    row = conn.one(
        f"SELECT * FROM {t('datasets')} WHERE workspace = ? AND namespace = ? AND name = ?", (ws, ns, name)
    )
    return None if row is None else _dataset(row)


def _dataset(row: dict[str, Any]) -> dict[str, Any]:
    return dataset_data(*(row[c] for c in DATASET_COLUMNS))


def dataset_data(
    ns: str,
    name: str,
    created_at: str,
    updated_at: str,
    fields: str,
    facets: str,
    current_version: str | None,
) -> dict[str, Any]:
    """Marquez's dataset from a ``datasets`` row's :data:`DATASET_COLUMNS`."""
    return {
        "id": {"namespace": ns, "name": name},
        "type": "DB_TABLE",
        "name": name,
        "physicalName": name,
        "namespace": ns,
        "sourceName": ns,
        "createdAt": created_at,
        "updatedAt": updated_at,
        "fields": json_value(fields),
        "tags": [],
        "description": None,
        "facets": json_value(facets),
        "currentVersion": current_version,
        "deleted": False,
    }


def versions(
    conn: Connection, t: Tables, ws: str, ns: str, name: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = "WHERE workspace = ? AND namespace = ? AND name = ?"
    total = conn.one(f"SELECT COUNT(*) AS n FROM {t('versions')} {where}", (ws, ns, name))
    rows = conn.all(
        f"SELECT * FROM {t('versions')} {where} ORDER BY position DESC LIMIT ? OFFSET ?",
        (ws, ns, name, limit, offset),
    )
    return [
        {
            "id": {"namespace": r["namespace"], "name": r["name"], "version": r["version"]},
            "type": "DB_TABLE",
            "name": r["name"],
            "physicalName": r["name"],
            "namespace": r["namespace"],
            "sourceName": r["namespace"],
            "version": r["version"],
            "createdAt": r["created_at"],
            "fields": loads(r["fields"]),
            "tags": [],
            "description": None,
            "createdByRun": None if r["run_id"] is None else {"id": r["run_id"]},
            "facets": loads(r["facets"]),
        }
        for r in rows
    ], int(total["n"] if total else 0)


# ---- node ids -----------------------------------------------------------------------------------
def parse_node(conn: Connection, t: Tables, ws: str, node_id: str) -> tuple[str, Key] | None:
    """``dataset:<ns>:<name>`` or ``job:<ns>:<name>`` as (kind, (ns, name)); None when no such
    node. A namespace may hold ':' (``postgres://host:5432``): every split is looked up (in one
    query), and the first that names a stored node wins."""
    kind, splits = node_splits(node_id)
    table = {"dataset": "datasets", "job": "jobs"}[kind]
    stored = {
        (r["namespace"], r["name"]) for r in rows_by_key(conn, t(table), ws, ("namespace", "name"), splits)
    }
    return next(((kind, key) for key in splits if key in stored), None)


def node_splits(node_id: str) -> tuple[str, list[Key]]:
    """A node id's kind and every ``(namespace, name)`` it may mean, the shortest namespace
    first; a clear 422 for anything but ``dataset:...`` or ``job:...``."""
    kind, _, rest = node_id.partition(":")
    if kind not in ("dataset", "job") or ":" not in rest:
        raise InvalidRequest(
            f"nodeId must be dataset:<namespace>:<name> or job:<namespace>:<name>, not {node_id!r}"
        )
    return kind, [(rest[:i], rest[i + 1 :]) for i, char in enumerate(rest) if char == ":"]


def node_id(kind: str, key: Key) -> str:
    return f"{kind}:{key[0]}:{key[1]}"
