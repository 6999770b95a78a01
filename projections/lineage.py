"""The lineage graph (``GET /api/runs/{id}/lineage``).

Nodes: ``run:<run_id>``, ``task:<run_id>/<task>``, ``file:<sha256>`` (files keyed by content,
so a file produced by one run and consumed by another links the two), and
``dataset:<namespace>/<name>`` (OpenLineage datasets). Edges: ``consumed`` (file -> task),
``produced`` (task -> file), ``part_of`` (task -> run, and child run -> parent run for an
OpenLineage parent-run facet). ``artifacts`` lists, for each file, dataset and parent run, the
runs that touched it (the other way round is the ends of a run's edges), for the depth-N walk
across runs.
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter
from typing import Any, ClassVar

import psycopg
import structlog

from ledger.records import EventRecord
from projections.db import Connection
from projections.view import Rebuilder, Recent, Tables, View, chunks, dumps, loads, placeholders

log = structlog.get_logger()

MAX_DEPTH = 10
MAX_RUNS = 500


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


def task_node(run_id: str, task: str) -> str:
    return f"task:{run_id}/{task}"


#: (table, its columns, its unique key, the column that orders duplicates: first one wins).
_TABLES = (
    ("nodes", ("node_id", "kind", "data", "position"), "node_id", "position"),
    # An edge's run follows from its ends (one of them is always the run's own task or run
    # node), so the key can lead with it and also serve the per-run reads.
    ("edges", ("source", "target", "kind", "run_id", "position"),
     "run_id, source, target, kind", "position"),
    # Which runs touched a file, dataset or parent run (a run's own are the ends of its edges).
    ("artifacts", ("run_id", "node_id"), "node_id, run_id", None),
)
#: Keys per table a rebuild remembers between batches to drop repeats before writing them.
RECENT_KEYS = 200_000


def _unique_index(table: str, key: str) -> str:
    return f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_key ON {table} ({key})"


class LineageView(View):
    name: ClassVar[str] = "lineage"
    # v2: parent-run links. v3: nodes and edges keep the position of the event that first
    # produced them, and keys are unique indexes, so a rebuild appends rows and builds them last.
    # v4: the edges' key leads with the run, and artifacts are keyed by node: a run's own
    # artifacts are read from its edges (two indexes fewer).
    schema_version: ClassVar[int] = 4
    table_names: ClassVar[tuple[str, ...]] = ("nodes", "edges", "artifacts")
    #: Read through their heap (node data, edge rows): no visibility map needed.
    analyze_only: ClassVar[frozenset[str]] = frozenset({"nodes", "edges"})

    def create(self, conn: Connection, t: Tables) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {t('nodes')} (node_id TEXT NOT NULL, "
                     "kind TEXT NOT NULL, data TEXT NOT NULL, position BIGINT NOT NULL)")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {t('edges')} (source TEXT NOT NULL, "
                     "target TEXT NOT NULL, kind TEXT NOT NULL, run_id TEXT NOT NULL, "
                     "position BIGINT NOT NULL)")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {t('artifacts')} (run_id TEXT NOT NULL, "
                     "node_id TEXT NOT NULL)")
        for table, _, key, _ in _TABLES:
            conn.execute(_unique_index(t(table), key))

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        graph = _Graph()
        for event in events:
            if event.type.startswith("Run."):
                graph.add(event)
        for (table, columns, _, _), rows in zip(_TABLES, graph.rows(), strict=True):
            conn.executemany(f"INSERT INTO {t(table)} ({', '.join(columns)}) VALUES "
                             f"({placeholders(len(columns))}) ON CONFLICT DO NOTHING", rows)

    def rebuilder(self) -> Rebuilder:
        return _AppendingRebuilder(self)


class _AppendingRebuilder(Rebuilder):
    """Appends each batch's rows without conflict handling (COPY on PostgreSQL) into tables
    whose unique indexes are built last. Repeats of keys it still remembers are dropped
    first; any left are deleted in :meth:`finish`, keeping the row of the earliest event,
    which is the row ``ON CONFLICT DO NOTHING`` keeps when following."""

    defer_unique = True

    def __init__(self, view: View) -> None:
        super().__init__(view)
        self.recent = [Recent(RECENT_KEYS) for _ in _TABLES]

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        graph = _Graph()
        for event in events:
            if event.type.startswith("Run."):
                graph.add(event)
        nodes, edges, artifacts = graph.rows()
        recent_nodes, recent_edges, recent_artifacts = self.recent
        fresh = (recent_nodes.fresh(nodes, itemgetter(0)),
                 recent_edges.fresh(edges, itemgetter(0, 1, 2)),
                 recent_artifacts.fresh(artifacts))
        for (table, columns, _, _), rows in zip(_TABLES, fresh, strict=True):
            conn.copy_rows(t(table), columns, rows)

    def finish(self, conn: Connection, t: Tables, table: str, *, parts: int = 1) -> None:
        _, _, key, order = next(spec for spec in _TABLES if spec[0] == table)
        name = t(table)
        if parts > 1 and conn.is_postgres and table == "nodes" and order is not None:
            # Each part dropped only its own repeats: a file that runs of two parts share is
            # there once per part, so settle repeats first rather than let an index build
            # fail. (Edges and artifacts belong to one run, so to one part.)
            _delete_repeats_grouped(conn, name, key, order)
            conn.execute(_unique_index(name, key))
            return
        try:
            conn.execute(_unique_index(name, key))
        except (psycopg.IntegrityError, sqlite3.IntegrityError):
            log.info("projection_rebuild_duplicates", table=name)
            _delete_repeats(conn, name, key, order)
            conn.execute(_unique_index(name, key))


def _delete_repeats(conn: Connection, table: str, key: str, order: str | None) -> None:
    """Delete every row whose key an earlier row (by ``order``) already has."""
    rid = "ctid" if conn.is_postgres else "rowid"
    ranked = (f"SELECT {rid} AS rid, ROW_NUMBER() OVER (PARTITION BY {key}"
              f"{f' ORDER BY {order}' if order else ''}) AS n FROM {table}")
    repeats = f"SELECT rid FROM ({ranked}) ranked WHERE n > 1"
    if conn.is_postgres:
        conn.execute(f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({repeats}))")
    else:
        conn.execute(f"DELETE FROM {table} WHERE rowid IN ({repeats})")


def _delete_repeats_grouped(conn: Connection, table: str, key: str, order: str) -> None:
    """PostgreSQL, when repeats are few: what :func:`_delete_repeats` does, by a hash
    aggregate over the keys and a join on the repeated ones only (no sort of the table).
    ``order`` must tell a key's rows apart (positions do: one event adds a key once)."""
    columns = [c.strip() for c in key.split(",")]
    repeated = (f"SELECT {key}, min({order}) AS first FROM {table} GROUP BY {key} "
                "HAVING count(*) > 1")
    match = " AND ".join(f"t.{c} = r.{c}" for c in columns)
    conn.execute(f"DELETE FROM {table} t USING ({repeated}) r WHERE {match} "
                 f"AND t.{order} > r.first")


class _Graph:
    """The nodes and edges one batch of events adds, each with the position of the first
    event that produced it (duplicates collapse on insert)."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[str, str, str, int]] = {}
        self.edges: dict[tuple[str, str, str, str], int] = {}
        self.artifacts: dict[tuple[str, str], None] = {}
        self.position = -1

    def rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]],
                            list[tuple[Any, ...]]]:
        return (list(self.nodes.values()),
                [(*edge, position) for edge, position in self.edges.items()],
                list(self.artifacts))

    def node(self, node_id: str, kind: str, **data: Any) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = (node_id, kind, dumps(data), self.position)
        return node_id

    def edge(self, source: str, target: str, kind: str, run_id: str) -> None:
        self.edges.setdefault((source, target, kind, run_id), self.position)

    def task(self, run_id: str, task: str) -> str:
        node = self.node(task_node(run_id, task), "task", run_id=run_id, name=task)
        self.edge(node, run_node(run_id), "part_of", run_id)
        return node

    def file(self, run_id: str, ref: dict[str, Any]) -> str:
        node = self.node(f"file:{ref['sha256']}", "file", sha256=ref["sha256"],
                         path=ref.get("path"), size=ref.get("size"))
        self.artifacts[(run_id, node)] = None
        return node

    def dataset(self, run_id: str, ref: dict[str, Any]) -> str:
        namespace, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
        node = self.node(f"dataset:{namespace}/{name}", "dataset", namespace=namespace,
                         name=name)
        self.artifacts[(run_id, node)] = None
        return node

    def add(self, event: EventRecord) -> None:
        run_id, d = event.stream, event.data
        self.position = event.position
        if event.type == "Run.Triggered":
            self.node(run_node(run_id), "run", run_id=run_id, workflow=d.get("workflow"))
        elif event.type in {"Run.TaskStarted", "Run.TaskFinished", "Run.TaskReused"}:
            task = self.task(run_id, d["task"])
            for ref in d.get("inputs") or []:
                self.edge(self.file(run_id, ref), task, "consumed", run_id)
            for ref in d.get("outputs") or []:
                self.edge(task, self.file(run_id, ref), "produced", run_id)
        elif event.type == "Run.LineageReported":
            job = d.get("job") or {}
            task = self.task(run_id, f"{job.get('namespace', '')}/{job.get('name', '')}")
            for ref in d.get("inputs") or []:
                self.edge(self.dataset(run_id, ref), task, "consumed", run_id)
            for ref in d.get("outputs") or []:
                self.edge(task, self.dataset(run_id, ref), "produced", run_id)
            parent = d.get("parent")
            if parent and parent.get("run_id") and parent["run_id"] != run_id:
                self.parent_run(run_id, parent)

    def parent_run(self, run_id: str, parent: dict[str, Any]) -> None:
        """Link a child run to the run that started it; both runs share the parent's node."""
        parent_id = str(parent["run_id"])
        workflow = f"{parent.get('namespace', '')}/{parent.get('name', '')}"
        node = self.node(run_node(parent_id), "run", run_id=parent_id, workflow=workflow)
        self.edge(run_node(run_id), node, "part_of", run_id)
        self.artifacts[(run_id, node)] = None
        self.artifacts[(parent_id, node)] = None


def query_lineage(conn: Connection, t: Tables, run_id: str, depth: int = 1
                  ) -> dict[str, Any] | None:
    """The run's graph plus the runs up to ``depth`` hops away through shared files/datasets."""
    if conn.one(f"SELECT node_id FROM {t('nodes')} WHERE node_id = ?", (run_node(run_id),)) is None:
        return None
    runs, frontier = {run_id}, {run_id}
    for _ in range(max(0, min(depth, MAX_DEPTH))):
        if not frontier or len(runs) >= MAX_RUNS:
            break
        artifacts = {run_node(r) for r in frontier}  # a parent run links its child runs
        for part in chunks(sorted(frontier)):
            for edge in conn.all(f"SELECT source, target FROM {t('edges')} WHERE run_id IN "
                                 f"({placeholders(len(part))})", part):
                artifacts.update(edge.values())
        artifacts = {a for a in artifacts if not a.startswith("task:")}
        linked: set[str] = set()
        for part in chunks(sorted(artifacts)):
            linked |= {r["run_id"] for r in conn.all(
                f"SELECT run_id FROM {t('artifacts')} WHERE node_id IN "
                f"({placeholders(len(part))})", part)}
        frontier = linked - runs
        runs |= frontier
    edges: list[dict[str, str]] = []
    for part in chunks(sorted(runs)):
        edges += conn.all(f"SELECT source, target, kind FROM {t('edges')} WHERE run_id IN "
                          f"({placeholders(len(part))}) ORDER BY kind, source, target", part)
    ids = sorted({run_node(r) for r in runs} | {e["source"] for e in edges}
                 | {e["target"] for e in edges})
    nodes: list[dict[str, Any]] = []
    for part in chunks(ids):
        for row in conn.all(f"SELECT node_id, kind, data FROM {t('nodes')} WHERE node_id IN "
                            f"({placeholders(len(part))})", part):
            nodes.append({"id": row["node_id"], "kind": row["kind"]} | loads(row["data"]))
    nodes.sort(key=lambda n: (n["kind"], n["id"]))
    unique = sorted({(e["source"], e["target"], e["kind"]) for e in edges})
    return {"nodes": nodes,
            "edges": [{"source": s, "target": g, "kind": k} for s, g, k in unique]}
