"""The lineage graph (``GET /api/runs/{id}/lineage``).

Nodes: ``run:<run_id>``, ``task:<run_id>/<task>``, ``file:<sha256>`` (files keyed by content,
so a file produced by one run and consumed by another links the two), and
``dataset:<namespace>/<name>`` (OpenLineage datasets). Edges: ``consumed`` (file -> task),
``produced`` (task -> file), ``part_of`` (task -> run, and child run -> parent run for an
OpenLineage parent-run facet). A run node says ``expunged`` (SPEC section 11).

Stored as one row per fact an event reports, in four tables: ``runs`` (a run node),
``tasks`` (a task node and its ``part_of`` edge), ``links`` (an edge from one of a run's
tasks, or from the run itself, to a file, dataset or parent run, with that node's data) and
``expunged`` (a run's ``Run.Expunged``: the run is shown expunged). A
file's or dataset's node is its earliest link; the runs linked to a node, for the depth-N walk
across runs, come from the links' node index. The queries live in
:mod:`projections.views.lineage_queries`.
"""

from __future__ import annotations

import sqlite3
from operator import itemgetter
from typing import Any, ClassVar

import psycopg
import structlog

from ledger.domain.workspace import workspace_of
from ledger.store.event_record import EventRecord
from projections.db import Connection
from projections.view import Rebuilder, Recent, Tables, View, placeholders

log = structlog.get_logger()


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


def task_node(run_id: str, task: str) -> str:
    return f"task:{run_id}/{task}"


#: (table, its columns, its unique key, the column that orders repeats: the first one wins).
_TABLES = (
    ("runs", ("run_id", "workflow", "position", "workspace"), "run_id", "position"),
    ("tasks", ("run_id", "task", "position"), "run_id, task", "position"),
    # ``task`` is '' for a link of the run itself (to its parent run).
    # ``name``/``namespace``/``size``: the node's data (a file's path and size, a dataset's
    # name and namespace), so no JSON is written per link.
    (
        "links",
        ("run_id", "task", "kind", "node_id", "name", "namespace", "size", "position"),
        "run_id, task, kind, node_id",
        "position",
    ),
    ("expunged", ("run_id", "position"), "run_id", "position"),
)
#: Keys per table a rebuild remembers between batches to drop repeats before writing them.
RECENT_KEYS = 200_000


def _unique_index(table: str, key: str) -> str:
    return f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_key ON {table} ({key})"


class LineageView(View):
    name: ClassVar[str] = "lineage"
    # v2: parent-run links. v3: nodes and edges keep the position of the event that first
    # produced them, and keys are unique indexes, so a rebuild appends rows and builds them last.
    # v4: the edges' key leads with the run, artifacts are keyed by node. v5: one row per fact
    # (runs, tasks, links) instead of nodes, edges and artifacts: a third of the rows.
    # v6: keys compared byte by byte on PostgreSQL. v7: a link's node data in columns.
    # v8: a run's workspace (SPEC 9: a graph, and a file download, stay inside one).
    # v9: expunged runs (SPEC 11: a run node says ``expunged``). v10: a run's row comes from
    # its own trigger only (an OpenLineage parent facet no longer adds one in ``default``).
    schema_version: ClassVar[int] = 10
    table_names: ClassVar[tuple[str, ...]] = ("runs", "tasks", "links", "expunged")
    #: Read through their heap (node data, a run's few links): no visibility map needed.
    analyze_only: ClassVar[frozenset[str]] = frozenset({"runs", "tasks", "links", "expunged"})

    def create(self, conn: Connection, t: Tables) -> None:
        key = conn.key_text
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t('runs')} (run_id {key} NOT NULL, "
            f"workflow TEXT, position BIGINT NOT NULL, workspace {key} NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t('tasks')} (run_id {key} NOT NULL, "
            f"task {key} NOT NULL, position BIGINT NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t('links')} (run_id {key} NOT NULL, "
            f"task {key} NOT NULL, kind {key} NOT NULL, node_id {key} NOT NULL, "
            "name TEXT, namespace TEXT, size BIGINT, position BIGINT NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t('expunged')} (run_id {key} NOT NULL, position BIGINT NOT NULL)"
        )
        for table, _, key, _ in _TABLES:
            conn.execute(_unique_index(t(table), key))
        conn.execute(f"CREATE INDEX IF NOT EXISTS {t('links')}_by_node ON {t('links')} (node_id, run_id)")

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        for (table, columns, _, _), rows in zip(_TABLES, _Facts.of(events).rows(), strict=True):
            conn.executemany(
                f"INSERT INTO {t(table)} ({', '.join(columns)}) VALUES "
                f"({placeholders(len(columns))}) ON CONFLICT DO NOTHING",
                rows,
            )

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
        runs, tasks, links, expunged = _Facts.of(events).rows()
        recent_runs, recent_tasks, recent_links, recent_expunged = self.recent
        fresh = (
            recent_runs.fresh(runs, itemgetter(0)),
            recent_tasks.fresh(tasks, itemgetter(0, 1)),
            recent_links.fresh(links, itemgetter(0, 1, 2, 3)),
            recent_expunged.fresh(expunged, itemgetter(0)),
        )
        for (table, columns, _, _), rows in zip(_TABLES, fresh, strict=True):
            conn.copy_rows(t(table), columns, rows)

    def finish(self, conn: Connection, t: Tables, table: str, *, parts: int = 1) -> None:
        _, _, key, order = next(spec for spec in _TABLES if spec[0] == table)
        name = t(table)
        if parts > 1 and conn.is_postgres and table == "runs":
            # A parent run's node may come from a child's event, in another part: settle
            # those repeats first rather than let the index build fail. (Tasks and links are
            # a run's own, so one part's.)
            _delete_repeats_grouped(conn, name, key, order)
            conn.execute(_unique_index(name, key))
            return
        try:
            conn.execute(_unique_index(name, key))
        except (psycopg.IntegrityError, sqlite3.IntegrityError):
            log.info("projection_rebuild_duplicates", table=name)
            _delete_repeats(conn, name, key, order)
            conn.execute(_unique_index(name, key))


def _delete_repeats(conn: Connection, table: str, key: str, order: str) -> None:
    """Delete every row whose key an earlier row (by ``order``) already has."""
    rid = "ctid" if conn.is_postgres else "rowid"
    ranked = f"SELECT {rid} AS rid, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order}) AS n FROM {table}"
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
    repeated = f"SELECT {key}, min({order}) AS first FROM {table} GROUP BY {key} HAVING count(*) > 1"
    match = " AND ".join(f"t.{c} = r.{c}" for c in columns)
    conn.execute(f"DELETE FROM {table} t USING ({repeated}) r WHERE {match} AND t.{order} > r.first")


class _Facts:
    """The rows one batch of events adds, each with the position of the first event that
    reported it (repeats collapse on insert)."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[str, Any, int, str]] = {}
        self.tasks: dict[tuple[str, str], int] = {}
        self.links: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
        self.expunged: dict[str, int] = {}
        self.position = -1

    @classmethod
    def of(cls, events: list[EventRecord]) -> _Facts:
        facts = cls()
        for event in events:
            facts.add(event)
        return facts

    def rows(self) -> tuple[list[tuple[Any, ...]], ...]:
        return (
            list(self.runs.values()),
            [(*task, position) for task, position in self.tasks.items()],
            list(self.links.values()),
            list(self.expunged.items()),
        )

    def run(self, run_id: str, workflow: Any, workspace: str) -> None:
        if run_id not in self.runs:
            self.runs[run_id] = (run_id, workflow, self.position, workspace)

    def link(
        self,
        run_id: str,
        task: str,
        kind: str,
        node_id: str,
        name: str | None = None,
        namespace: str | None = None,
        size: int | None = None,
    ) -> None:
        key = (run_id, task, kind, node_id)
        if key not in self.links:
            self.links[key] = (*key, name, namespace, size, self.position)

    def files(self, run_id: str, task: str, kind: str, refs: list[dict[str, Any]]) -> None:
        for ref in refs:
            self.link(run_id, task, kind, f"file:{ref['sha256']}", ref.get("path"), None, ref.get("size"))

    def datasets(self, run_id: str, task: str, kind: str, refs: list[dict[str, Any]]) -> None:
        for ref in refs:
            namespace, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
            self.link(run_id, task, kind, f"dataset:{namespace}/{name}", name, namespace)

    def add(self, event: EventRecord) -> None:
        run_id, d = event.stream, event.data
        self.position = event.position
        match event.type:
            case "Run.Triggered":
                self.run(run_id, d.get("workflow"), workspace_of(d))
            case "Run.TaskStarted" | "Run.TaskFinished" | "Run.TaskReused":
                task = d["task"]
                self.tasks.setdefault((run_id, task), self.position)
                self.files(run_id, task, "consumed", d.get("inputs") or [])
                self.files(run_id, task, "produced", d.get("outputs") or [])
            case "Run.LineageReported":
                job = d.get("job") or {}
                task = f"{job.get('namespace', '')}/{job.get('name', '')}"
                self.tasks.setdefault((run_id, task), self.position)
                self.datasets(run_id, task, "consumed", d.get("inputs") or [])
                self.datasets(run_id, task, "produced", d.get("outputs") or [])
                parent = d.get("parent")
                if parent and parent.get("run_id") and parent["run_id"] != run_id:
                    # A child run is part of the run that started it; both share its node.
                    # No row for the parent here: a run's row (and its workspace, which
                    # confines graphs and file downloads) comes only from its own trigger, so
                    # no event of another workspace can claim a run id before its run exists.
                    # A parent never reported itself is shown only by the link's name.
                    parent_id = str(parent["run_id"])
                    name = f"{parent.get('namespace', '')}/{parent.get('name', '')}"
                    self.link(run_id, "", "part_of", run_node(parent_id), name)
            case "Run.Expunged":
                self.expunged.setdefault(run_id, self.position)
            case _:
                pass
