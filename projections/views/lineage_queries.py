"""The lineage graph's queries (``GET /api/runs/{id}/lineage``) over the tables of
:mod:`projections.views.lineage`: a run's graph, and the runs up to N hops away. A run node
carries ``expunged`` (SPEC section 11).
"""

from __future__ import annotations

from typing import Any

from projections.db import Connection
from projections.view import Tables, chunks, placeholders
from projections.views.lineage import run_node, task_node

MAX_DEPTH = 10
MAX_RUNS = 500


def _edge(link: dict[str, Any]) -> tuple[str, str, str]:
    own = task_node(link["run_id"], link["task"]) if link["task"] else run_node(link["run_id"])
    if link["kind"] == "consumed":
        return link["node_id"], own, "consumed"
    return own, link["node_id"], link["kind"]


def _select_in(conn: Connection, statement: str, keys: set[str], *first: Any) -> list[dict[str, Any]]:
    """``statement`` (ending in ``IN``) for every key, in chunks of placeholders (after the
    parameters ``first``)."""
    rows: list[dict[str, Any]] = []
    for part in chunks(sorted(keys)):
        rows += conn.all(f"{statement} ({placeholders(len(part))})", [*first, *part])
    return rows


def file_in_workspace(conn: Connection, t: Tables, sha256: str, workspace: str) -> bool:
    """Whether a run of ``workspace`` consumed or produced the file ``sha256``."""
    row = conn.one(
        f"SELECT l.run_id FROM {t('links')} l JOIN {t('runs')} r ON r.run_id = l.run_id "
        "WHERE l.node_id = ? AND r.workspace = ? LIMIT 1",
        (f"file:{sha256}", workspace),
    )
    return row is not None


def query_lineage(
    conn: Connection, t: Tables, run_id: str, depth: int = 1, workspace: str | None = None
) -> dict[str, Any] | None:
    """The run's graph plus the runs up to ``depth`` hops away through shared files, datasets
    and parent runs; with ``workspace``, only runs of that workspace (a file two workspaces
    share links none of the other's runs, and its node shows a run of this one's data).
    None when the run is not in the view, or not in ``workspace``."""
    found = query_run_lineage(conn, t, run_id, depth, confine=workspace is not None)
    if found is None or (workspace is not None and found[0] != workspace):
        return None
    return found[1]


def query_run_lineage(
    conn: Connection, t: Tables, run_id: str, depth: int = 1, *, confine: bool = True
) -> tuple[str, dict[str, Any]] | None:
    """The run's workspace and its graph (:func:`query_lineage`), confined to that workspace
    unless ``confine`` is false; None when the run is not in the view. The workspace of every
    run the walk reaches is read by the walk's own statements (a join on ``runs``), so
    confining costs no query of its own."""
    row = conn.one(f"SELECT workspace FROM {t('runs')} WHERE run_id = ?", (run_id,))
    if row is None:
        return None
    workspace = str(row["workspace"])
    return workspace, _walk(conn, t, run_id, depth, workspace if confine else None)


def _walk(conn: Connection, t: Tables, run_id: str, depth: int, workspace: str | None) -> dict[str, Any]:
    runs, frontier = {run_id}, {run_id}
    for _ in range(max(0, min(depth, MAX_DEPTH))):
        if not frontier or len(runs) >= MAX_RUNS:
            break
        # A link to a run node (a run's parent run) brings that run's workspace in the same
        # statement (a probe by the run id after ``run:``); no other node is a run.
        outgoing = _select_in(
            conn,
            f"SELECT l.node_id, CASE WHEN substr(l.node_id, 1, 4) = 'run:' THEN (SELECT p.workspace "
            f"FROM {t('runs')} p WHERE p.run_id = substr(l.node_id, 5)) END AS workspace "
            f"FROM {t('links')} l WHERE l.run_id IN",
            frontier,
        )
        nodes = {run_node(r) for r in frontier} | {row["node_id"] for row in outgoing}
        linked = {
            row["node_id"].removeprefix("run:")
            for row in outgoing
            if row["node_id"].startswith("run:") and workspace in (None, row["workspace"])
        }
        if workspace is None:
            statement = f"SELECT run_id FROM {t('links')} WHERE node_id IN"
            linked |= {row["run_id"] for row in _select_in(conn, statement, nodes)}
        else:
            # A probe of the run's row per link (a join lets PostgreSQL hash the whole table).
            statement = (
                f"SELECT l.run_id FROM {t('links')} l WHERE (SELECT r.workspace FROM {t('runs')} r "
                "WHERE r.run_id = l.run_id) = ? AND l.node_id IN"
            )
            linked |= {row["run_id"] for row in _select_in(conn, statement, nodes, workspace)}
        frontier = linked - runs
        runs |= frontier
    tasks = _select_in(conn, f"SELECT run_id, task FROM {t('tasks')} WHERE run_id IN", runs)
    links = _select_in(conn, f"SELECT run_id, task, kind, node_id FROM {t('links')} WHERE run_id IN", runs)
    edges = {_edge(link) for link in links}
    edges |= {(task_node(r["run_id"], r["task"]), run_node(r["run_id"]), "part_of") for r in tasks}
    found = [
        {"id": task_node(r["run_id"], r["task"]), "kind": "task", "name": r["task"], "run_id": r["run_id"]}
        for r in tasks
    ]
    parents = {n.removeprefix("run:") for e in edges for n in e[:2] if n.startswith("run:")}
    rows = _select_in(
        conn, f"SELECT run_id, workflow, workspace FROM {t('runs')} WHERE run_id IN", runs | parents
    )
    # A run node is shown only for a run (of this workspace, when confined): a parent beyond
    # the walk's last hop of another workspace, or one an OpenLineage parent facet named that
    # never reported itself, has no node and no edge.
    known = {r["run_id"] for r in rows if workspace in (None, r["workspace"])}
    foreign = (parents | runs) - known
    edges = {e for e in edges if not any(n.startswith("run:") and n[4:] in foreign for n in e[:2])}
    rows = [r for r in rows if r["run_id"] in known]
    run_ids = {r["run_id"] for r in rows}
    erased = {
        r["run_id"] for r in _select_in(conn, f"SELECT run_id FROM {t('expunged')} WHERE run_id IN", run_ids)
    }
    found += [
        {
            "id": run_node(r["run_id"]),
            "kind": "run",
            "run_id": r["run_id"],
            "workflow": r["workflow"],
            "expunged": r["run_id"] in erased,
        }
        for r in rows
    ]
    found += _first_links(
        conn, t, {link["node_id"] for link in links if not link["node_id"].startswith("run:")}, runs
    )
    found.sort(key=lambda n: (n["kind"], n["id"]))
    return {"nodes": found, "edges": [{"source": s, "target": g, "kind": k} for s, g, k in sorted(edges)]}


def _first_links(conn: Connection, t: Tables, node_ids: set[str], runs: set[str]) -> list[dict[str, Any]]:
    """File and dataset nodes, each with the data of its earliest link of one of ``runs`` (by
    event, and within one event inputs before outputs, as they were reported): a node never
    shows what a run outside the graph (of another workspace) named it."""
    first: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for row in _select_in(
        conn,
        f"SELECT node_id, run_id, kind, name, namespace, size, position FROM {t('links')} WHERE node_id IN",
        node_ids,
    ):
        if row["run_id"] not in runs:
            continue
        candidate = (int(row["position"]), row["kind"], row)
        known = first.get(row["node_id"])
        if known is None or candidate[:2] < known[:2]:
            first[row["node_id"]] = candidate
    return [_node(node_id, row) for node_id, (_, _, row) in first.items()]


def _node(node_id: str, link: dict[str, Any]) -> dict[str, Any]:
    """A file's or dataset's node from one of its links (keys in the order the API shows)."""
    kind, _, rest = node_id.partition(":")
    if kind == "file":
        return {
            "id": node_id,
            "kind": kind,
            "path": link["name"],
            "sha256": rest,
            "size": None if link["size"] is None else int(link["size"]),
        }
    return {"id": node_id, "kind": kind, "name": link["name"], "namespace": link["namespace"]}
