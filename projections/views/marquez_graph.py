"""Marquez's graph reads over :mod:`projections.views.marquez`: the lineage graph by node
(``GET /api/v1/lineage``), column lineage (``GET /api/v1/column-lineage``), the event feed
(``GET /api/v1/events/lineage``) and search (``GET /api/v1/search``).

The lineage walk goes both ways from the node, one batch of indexed lookups per step, and
stops at ``depth`` jobs away from it (Marquez's meaning of depth) or at :data:`MAX_NODES`.
"""

from __future__ import annotations

from typing import Any

from projections.db import Connection
from projections.view import Tables, chunks, loads, placeholders
from projections.views.marquez_queries import MAX_NODES, Key, _dataset, _run, node_id, parse_node


def _where(columns: tuple[str, str], count: int) -> str:
    a, b = columns
    return " OR ".join([f"({a} = ? AND {b} = ?)"] * count)


def _flat(keys: list[Key]) -> list[str]:
    return [part for key in keys for part in key]


def _rows(conn: Connection, table: str, columns: tuple[str, str], keys: list[Key]) -> list[dict[str, Any]]:
    """The rows of ``table`` whose ``columns`` are one of ``keys``: on PostgreSQL one join with
    the keys as two arrays (one plan, whatever their number), on SQLite ORs of 200 at a time."""
    if not keys:
        return []
    a, b = columns
    if conn.is_postgres:
        return conn.all(
            f"SELECT x.* FROM unnest(?::text[], ?::text[]) AS k(a, b) JOIN {table} x "
            f'ON x.{a} = k.a COLLATE "C" AND x.{b} = k.b COLLATE "C"',
            ([k[0] for k in keys], [k[1] for k in keys]),
        )
    rows: list[dict[str, Any]] = []
    for part in chunks(keys, 200):
        rows.extend(conn.all(f"SELECT * FROM {table} WHERE {_where(columns, len(part))}", _flat(part)))
    return rows


def lineage(conn: Connection, t: Tables, start: str, depth: int) -> dict[str, Any] | None:
    parsed = parse_node(conn, t, start)
    if parsed is None:
        return None
    edges: set[tuple[str, str]] = set()  # (origin node id, destination node id)
    seen: dict[str, set[Key]] = {"dataset": set(), "job": set()}
    kind, key = parsed
    seen[kind].add(key)
    frontier: dict[str, list[Key]] = {"dataset": [], "job": []}
    frontier[kind].append(key)
    steps = 2 * depth + (1 if kind == "job" else 0)  # depth: jobs beyond the node, each way
    for _ in range(steps):
        found: dict[str, list[Key]] = {"dataset": [], "job": []}
        for e in _rows(conn, t("edges"), ("ds_namespace", "ds_name"), frontier["dataset"]):
            _edge(e, edges, seen, found, "job", (e["job_namespace"], e["job_name"]))
        for e in _rows(conn, t("edges"), ("job_namespace", "job_name"), frontier["job"]):
            _edge(e, edges, seen, found, "dataset", (e["ds_namespace"], e["ds_name"]))
        frontier = found
        if (not found["dataset"] and not found["job"]) or sum(map(len, seen.values())) >= MAX_NODES:
            break
    return {"graph": _nodes(conn, t, seen, edges)}


def _edge(
    e: dict[str, Any],
    edges: set[tuple[str, str]],
    seen: dict[str, set[Key]],
    found: dict[str, list[Key]],
    kind: str,
    key: Key,
) -> None:
    job = node_id("job", (e["job_namespace"], e["job_name"]))
    ds = node_id("dataset", (e["ds_namespace"], e["ds_name"]))
    edges.add((ds, job) if e["direction"] == "in" else (job, ds))
    if key not in seen[kind]:
        seen[kind].add(key)
        found[kind].append(key)


def _nodes(
    conn: Connection, t: Tables, seen: dict[str, set[Key]], edges: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    data: dict[str, dict[str, Any]] = {}
    for row in _rows(conn, t("datasets"), ("namespace", "name"), sorted(seen["dataset"])):
        data[node_id("dataset", (row["namespace"], row["name"]))] = _dataset(row)
    rows = _rows(conn, t("jobs"), ("namespace", "name"), sorted(seen["job"]))
    wanted = sorted({r["latest_run_id"] for r in rows if r["latest_run_id"]})
    latest: dict[str, dict[str, Any]] = {}
    for part in chunks(wanted, 500):
        for r in conn.all(f"SELECT * FROM {t('runs')} WHERE run_id IN ({placeholders(len(part))})", part):
            latest[r["run_id"]] = r
    for row in rows:
        run = latest.get(row["latest_run_id"])
        data[node_id("job", (row["namespace"], row["name"]))] = {
            "id": {"namespace": row["namespace"], "name": row["name"]},
            "type": "BATCH",
            "name": row["name"],
            "namespace": row["namespace"],
            "createdAt": row["created_at"],
            "updatedAt": row["updated_at"],
            "facets": loads(row["facets"]),
            "latestRun": None if run is None else _run(run),
        }
    ins: dict[str, list[dict[str, str]]] = {}
    outs: dict[str, list[dict[str, str]]] = {}
    for origin, destination in sorted(edges):
        if origin in data and destination in data:
            edge = {"origin": origin, "destination": destination}
            outs.setdefault(origin, []).append(edge)
            ins.setdefault(destination, []).append(edge)
    return [
        {
            "id": nid,
            "type": "DATASET" if nid.startswith("dataset:") else "JOB",
            "data": data[nid],
            "inEdges": ins.get(nid, []),
            "outEdges": outs.get(nid, []),
        }
        for nid in sorted(data)
    ]


# ---- column lineage -----------------------------------------------------------------------------
def column_lineage(
    conn: Connection, t: Tables, start: str, depth: int, with_downstream: bool
) -> dict[str, Any] | None:
    """Marquez's column-lineage graph of a dataset's fields: upstream always, downstream when
    asked, ``depth`` datasets away at most. Nodes ``datasetField:<ns>:<dataset>:<field>``."""
    parsed = parse_node(conn, t, start)
    if parsed is None or parsed[0] != "dataset":
        return None
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    seen = {parsed[1]}
    for direction, keep in (("up", True), ("down", with_downstream)):
        frontier = [parsed[1]]
        for _ in range(depth if keep else 0):
            a, b = ("namespace", "name") if direction == "up" else ("in_namespace", "in_name")
            found: list[Key] = []
            for part in chunks(frontier, 200):
                for row in conn.all(
                    f"SELECT * FROM {t('columns')} WHERE {_where((a, b), len(part))}", _flat(part)
                ):
                    rows[
                        tuple(
                            row[c]
                            for c in ("namespace", "name", "field", "in_namespace", "in_name", "in_field")
                        )
                    ] = row
                    nxt = (
                        (row["in_namespace"], row["in_name"])
                        if direction == "up"
                        else (row["namespace"], row["name"])
                    )
                    if nxt not in seen:
                        seen.add(nxt)
                        found.append(nxt)
            frontier = found
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str]] = []
    for (ns, name, field, ins, inn, inf), row in sorted(rows.items()):
        target, source = f"datasetField:{ns}:{name}:{field}", f"datasetField:{ins}:{inn}:{inf}"
        how = loads(row["transformation"])
        node = nodes.setdefault(target, _field_node(ns, name, field, how))
        node["data"]["inputFields"].append({"namespace": ins, "dataset": inn, "field": inf} | how)
        nodes.setdefault(source, _field_node(ins, inn, inf, {}))
        edges.append((source, target))
    for origin, destination in edges:
        nodes[origin]["outEdges"].append({"origin": origin, "destination": destination})
        nodes[destination]["inEdges"].append({"origin": origin, "destination": destination})
    return {"graph": [nodes[k] for k in sorted(nodes)]}


def _field_node(ns: str, name: str, field: str, how: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"datasetField:{ns}:{name}:{field}",
        "type": "DATASET_FIELD",
        "data": {
            "namespace": ns,
            "dataset": name,
            "field": field,
            "fieldType": None,
            "transformationDescription": how.get("transformationDescription"),
            "transformationType": how.get("transformationType"),
            "inputFields": [],
        },
        "inEdges": [],
        "outEdges": [],
    }


# ---- the event feed and search ------------------------------------------------------------------
def events(
    conn: Connection, t: Tables, before: str | None, after: str | None, limit: int, offset: int
) -> dict[str, Any]:
    where, args = [], []
    if before is not None:
        where.append("event_time < ?")
        args.append(before)
    if after is not None:
        where.append("event_time > ?")
        args.append(after)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.one(f"SELECT COUNT(*) AS n FROM {t('events')} {clause}", args)
    rows = conn.all(
        f"SELECT event FROM {t('events')} {clause} ORDER BY event_time DESC, position DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return {"events": [loads(r["event"]) for r in rows], "totalCount": int(total["n"] if total else 0)}


def search(conn: Connection, t: Tables, q: str, limit: int) -> dict[str, Any]:
    """Jobs and datasets whose name holds ``q`` (case-insensitive), as Marquez's search."""
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    results = []
    for kind, table in (("DATASET", "datasets"), ("JOB", "jobs")):
        for row in conn.all(
            f"SELECT namespace, name, updated_at FROM {t(table)} WHERE LOWER(name) LIKE ? ESCAPE '\\' "
            "ORDER BY updated_at DESC, namespace, name LIMIT ?",
            (pattern, limit),
        ):
            results.append(
                {
                    "type": kind,
                    "name": row["name"],
                    "updatedAt": row["updated_at"],
                    "namespace": row["namespace"],
                    "nodeId": node_id(kind.lower(), (row["namespace"], row["name"])),
                }
            )
    results.sort(key=lambda r: r["updatedAt"], reverse=True)
    return {"totalCount": len(results[:limit]), "results": results[:limit]}
