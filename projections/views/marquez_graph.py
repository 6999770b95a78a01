"""Marquez's graph reads over :mod:`projections.views.marquez`: the lineage graph by node
(``GET /api/v1/lineage``), column lineage (``GET /api/v1/column-lineage``), the event feed
(``GET /api/v1/events/lineage``) and search (``GET /api/v1/search``).

:func:`lineage` is the one lineage query (the API's and the UI's): from a dataset, a job or a
run's job, ``depth`` jobs away both ways (Marquez's meaning of depth), at most ``max_nodes``
nodes, the nearest first (:mod:`projections.views.marquez_walk`), and ``truncated`` when
some were left out. Every read is one workspace's (SPEC 9), the walk included.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import InvalidRequest
from projections.db import Connection
from projections.view import Tables, loads
from projections.views.marquez_queries import (
    MAX_NODES,
    Key,
    dataset_data,
    json_value,
    node_id,
    node_splits,
    parse_node,
    run_data,
)
from projections.views.marquez_walk import Neighbourhood, neighbourhood, rows_by_key


def lineage(
    conn: Connection, t: Tables, ws: str, start: str, depth: int, *, max_nodes: int = MAX_NODES
) -> dict[str, Any] | None:
    """Marquez's ``{"graph": [{id, type, data, inEdges, outEdges}]}`` of workspace ``ws`` around ``start``
    (``dataset:<ns>:<name>``, ``job:<ns>:<name>`` or ``run:<run id>``, which starts from the
    run's job), plus ``truncated``: whether nodes within ``depth`` were left out to keep to
    ``max_nodes``. None when there is no such node."""
    kind, keys = start_keys(conn, t, ws, start)
    steps = 2 * depth + (1 if kind == "job" else 0)  # depth: jobs beyond the node, each way
    found = neighbourhood(conn, t, ws, kind, keys, steps, max_nodes)
    return None if found is None else {"graph": _nodes(found), "truncated": found.truncated}


def start_keys(conn: Connection, t: Tables, ws: str, start: str) -> tuple[str, list[Key]]:
    """A lineage start's kind and the ``(namespace, name)`` keys it may name (a node id's
    every split, :func:`~projections.views.marquez_queries.node_splits`); ``run:<run id>``
    is the run's job (no key when no such run in ``ws``)."""
    kind, _, rest = start.partition(":")
    if kind != "run":
        if kind not in ("dataset", "job"):
            raise InvalidRequest(
                "nodeId must be dataset:<namespace>:<name>, job:<namespace>:<name> or run:<run id>, "
                f"not {start!r}"
            )
        return node_splits(start)
    row = conn.one(
        f"SELECT namespace, name FROM {t('runs')} WHERE run_id = ? AND workspace = ?",
        (rest.strip().lower(), ws),
    )
    return "job", [] if row is None else [(row["namespace"], row["name"])]


def _nodes(found: Neighbourhood) -> list[dict[str, Any]]:
    """The graph's nodes in id order, each edge listed at both ends (origin, destination order)."""
    data: dict[str, dict[str, Any]] = {}
    for row in found.datasets:
        data[f"dataset:{row[0]}:{row[1]}"] = dataset_data(*row)
    for ns, name, created_at, updated_at, _, facets, *run in found.jobs:
        data[f"job:{ns}:{name}"] = {
            "id": {"namespace": ns, "name": name},
            "type": "BATCH",
            "name": name,
            "namespace": ns,
            "createdAt": created_at,
            "updatedAt": updated_at,
            "facets": json_value(facets),
            "latestRun": None if run[0] is None else run_data(*run),
        }
    pairs = []  # (origin node id, destination node id), both ends in the graph
    for job_ns, job_name, direction, ds_ns, ds_name in found.edges:
        job, ds = f"job:{job_ns}:{job_name}", f"dataset:{ds_ns}:{ds_name}"
        if job in data and ds in data:
            pairs.append((ds, job) if direction == "in" else (job, ds))
    ins: dict[str, list[dict[str, str]]] = {}
    outs: dict[str, list[dict[str, str]]] = {}
    for origin, destination in sorted(set(pairs)):
        edge = {"origin": origin, "destination": destination}
        if origin in outs:
            outs[origin].append(edge)
        else:
            outs[origin] = [edge]
        if destination in ins:
            ins[destination].append(edge)
        else:
            ins[destination] = [edge]
    return [
        {
            "id": nid,
            "type": "DATASET" if nid[0] == "d" else "JOB",
            "data": data[nid],
            "inEdges": ins.get(nid, []),
            "outEdges": outs.get(nid, []),
        }
        for nid in sorted(data)
    ]


# ---- column lineage -----------------------------------------------------------------------------
def column_lineage(
    conn: Connection, t: Tables, ws: str, start: str, depth: int, with_downstream: bool
) -> dict[str, Any] | None:
    """Marquez's column-lineage graph of a dataset's fields: upstream always, downstream when
    asked, ``depth`` datasets away at most. Nodes ``datasetField:<ns>:<dataset>:<field>``."""
    parsed = parse_node(conn, t, ws, start)
    if parsed is None or parsed[0] != "dataset":
        return None
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    seen = {parsed[1]}
    for direction, keep in (("up", True), ("down", with_downstream)):
        frontier = [parsed[1]]
        for _ in range(depth if keep else 0):
            a, b = ("namespace", "name") if direction == "up" else ("in_namespace", "in_name")
            found: list[Key] = []
            for row in rows_by_key(conn, t("columns"), ws, (a, b), frontier):
                rows[
                    tuple(
                        row[c] for c in ("namespace", "name", "field", "in_namespace", "in_name", "in_field")
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
    conn: Connection, t: Tables, ws: str, before: str | None, after: str | None, limit: int, offset: int
) -> dict[str, Any]:
    where, args = ["workspace = ?"], [ws]
    if before is not None:
        where.append("event_time < ?")
        args.append(before)
    if after is not None:
        where.append("event_time > ?")
        args.append(after)
    clause = f"WHERE {' AND '.join(where)}"
    total = conn.one(f"SELECT COUNT(*) AS n FROM {t('events')} {clause}", args)
    rows = conn.all(
        f"SELECT event FROM {t('events')} {clause} ORDER BY event_time DESC, position DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return {"events": [loads(r["event"]) for r in rows], "totalCount": int(total["n"] if total else 0)}


def search(conn: Connection, t: Tables, ws: str, q: str, limit: int) -> dict[str, Any]:
    """Jobs and datasets whose name holds ``q`` (case-insensitive), as Marquez's search."""
    pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    results = []
    for kind, table in (("DATASET", "datasets"), ("JOB", "jobs")):
        for row in conn.all(
            f"SELECT namespace, name, updated_at FROM {t(table)} WHERE workspace = ? "
            "AND LOWER(name) LIKE ? ESCAPE '\\' ORDER BY updated_at DESC, namespace, name LIMIT ?",
            (ws, pattern, limit),
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
