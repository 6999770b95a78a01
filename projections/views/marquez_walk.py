"""The walk under Marquez's lineage graph: which jobs and datasets lie within ``steps`` edges
of a node, both ways, over :mod:`projections.views.marquez`'s ``edges`` table, and the rows
the graph is drawn from (:func:`neighbourhood`). A walk stays inside one workspace: every
lookup is of that workspace's rows (SPEC 9).

The answer is a breadth-first walk, the same on both backends:

- level 0 is the node; level ``i + 1`` is every neighbour of level ``i`` (through any edge,
  whatever its direction) not in an earlier level;
- a level that would take the walk past ``max_nodes`` keeps its first nodes in
  ``(namespace, name)`` order (code point order, which is PostgreSQL's ``COLLATE "C"``) up
  to the limit, and the walk stops there with ``truncated`` set: nearer nodes always win.

On PostgreSQL the walk and the rows of its nodes are one statement (one round trip, whatever
the depth: on a busy machine each round trip waits for the scheduler twice). The walk is a
recursive query whose every step is one row carrying its level and the level before as
arrays, so no node is expanded twice (a plain recursive CTE over node rows revisits every
node on every second step; at Marquez's default depth of 20 over a graph it covers, that
costs seconds). Every lookup is an index probe per key (``LATERAL ... OFFSET 0``: the planner
otherwise hashes the whole table). On SQLite, in process, one indexed query per step does
the same walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.rows import tuple_row

from projections.db import Connection
from projections.view import Tables, dumps

Key = tuple[str, str]


@dataclass(frozen=True)
class Walk:
    """The jobs and datasets the walk reached on SQLite (each in ``(namespace, name)`` order)."""

    datasets: list[Key]
    jobs: list[Key]
    truncated: bool


#: The columns of the rows a :class:`Neighbourhood` holds, in their order.
DATASET_COLUMNS = ("namespace", "name", "created_at", "updated_at", "fields", "facets", "current_version")
JOB_COLUMNS = ("namespace", "name", "created_at", "updated_at", "latest_run_id", "facets")
RUN_COLUMNS = (
    "run_id",
    "namespace",
    "name",
    "status",
    "created_at",
    "updated_at",
    "started_at",
    "ended_at",
    "facets",
    "expunged",
)
EDGE_COLUMNS = ("job_namespace", "job_name", "direction", "ds_namespace", "ds_name")


@dataclass(frozen=True)
class Neighbourhood:
    """The stored rows of a walk's nodes, as tuples (a graph of hundreds of nodes is drawn
    from them without a dict per row): ``datasets`` (:data:`DATASET_COLUMNS`), ``jobs``
    (:data:`JOB_COLUMNS` then the latest run's :data:`RUN_COLUMNS`, all None without one), the
    ``edges`` of those jobs (:data:`EDGE_COLUMNS`; some lead out of the walk), and whether the
    walk was ``truncated``."""

    datasets: list[tuple[Any, ...]]
    jobs: list[tuple[Any, ...]]
    edges: list[tuple[Any, ...]]
    truncated: bool


def neighbourhood(
    conn: Connection, t: Tables, ws: str, kind: str, keys: list[Key], steps: int, max_nodes: int
) -> Neighbourhood | None:
    """The nodes of workspace ``ws`` within ``steps`` edges of the ``kind`` (``dataset`` or
    ``job``) node, the first of ``keys`` that is stored (None when none is), at most
    ``max_nodes`` of them (the node itself included), with their rows."""
    if conn.is_postgres:
        return _neighbourhood_postgres(conn, t, ws, kind, keys, steps, max_nodes)
    table = {"dataset": "datasets", "job": "jobs"}[kind]
    stored = {
        (r["namespace"], r["name"]) for r in rows_by_key(conn, t(table), ws, ("namespace", "name"), keys)
    }
    key = next((k for k in keys if k in stored), None)
    if key is None:
        return None
    found = _walk_sqlite(conn, t, ws, kind, key, steps, max_nodes)
    jobs = rows_by_key(conn, t("jobs"), ws, ("namespace", "name"), found.jobs)
    wanted = sorted({j["latest_run_id"] for j in jobs if j["latest_run_id"]})
    runs = {
        r["run_id"]: r
        for r in conn.all(
            f"SELECT * FROM {t('runs')} WHERE run_id IN (SELECT value FROM json_each(?))", (dumps(wanted),)
        )
    }
    no_run = (None,) * len(RUN_COLUMNS)
    return Neighbourhood(
        datasets=_tuples(
            rows_by_key(conn, t("datasets"), ws, ("namespace", "name"), found.datasets), DATASET_COLUMNS
        ),
        jobs=[
            tuple(j[c] for c in JOB_COLUMNS)
            + (
                no_run
                if j["latest_run_id"] not in runs
                else tuple(runs[j["latest_run_id"]][c] for c in RUN_COLUMNS)
            )
            for j in jobs
        ],
        edges=_tuples(
            rows_by_key(conn, t("edges"), ws, ("job_namespace", "job_name"), found.jobs), EDGE_COLUMNS
        ),
        truncated=found.truncated,
    )


def _tuples(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in rows]


# One row per level: its nodes (f_*: jobs when f_job), the level before it (p_*), how many
# nodes the walk holds with it (seen), and whether it was cut at the limit. The graph is
# bipartite (jobs and datasets alternate), so a neighbour of level i is in level i - 1 or is
# new: each step looks back one level only, never at everything seen.
_WALK = """
WITH RECURSIVE given AS (
  SELECT ?::text COLLATE "C" AS ws, ?::boolean AS job, ?::int AS steps, ?::int AS max_nodes
), start AS (
  SELECT c.ns COLLATE "C" AS ns, c.name COLLATE "C" AS name, g.ws, g.job, g.steps, g.max_nodes
  FROM given g CROSS JOIN unnest(?::text[], ?::text[]) WITH ORDINALITY AS c(ns, name, i)
  WHERE CASE WHEN g.job
    THEN EXISTS (SELECT 1 FROM {jobs} x WHERE x.workspace = g.ws AND x.namespace = c.ns AND x.name = c.name)
    ELSE EXISTS (
      SELECT 1 FROM {datasets} x WHERE x.workspace = g.ws AND x.namespace = c.ns AND x.name = c.name
    ) END
  ORDER BY c.i LIMIT 1
), walk(step, f_job, f_ns, f_name, p_ns, p_name, seen, cut) AS (
  SELECT 0, s.job, ARRAY[s.ns], ARRAY[s.name], '{{}}'::text[] COLLATE "C", '{{}}'::text[] COLLATE "C",
         1, false
  FROM start s
  UNION ALL
  SELECT w.step + 1, NOT w.f_job, l.ns, l.name, w.f_ns, w.f_name,
         w.seen + cardinality(l.ns), l.found > s.max_nodes - w.seen
  FROM walk w CROSS JOIN start s
  CROSS JOIN LATERAL (
    SELECT count(*) AS found,
           COALESCE((array_agg(y.ns ORDER BY y.ns, y.name))[1:s.max_nodes - w.seen], w.p_ns[1:0]) AS ns,
           COALESCE((array_agg(y.name ORDER BY y.ns, y.name))[1:s.max_nodes - w.seen], w.p_ns[1:0]) AS name
    FROM (
      SELECT DISTINCT x.ns, x.name FROM (
        SELECT e.ds_namespace AS ns, e.ds_name AS name
        FROM unnest(w.f_ns, w.f_name) AS f(ns, name)
        CROSS JOIN LATERAL (
          SELECT ds_namespace, ds_name FROM {edges}
          WHERE workspace = s.ws AND job_namespace = f.ns AND job_name = f.name OFFSET 0
        ) e
        WHERE w.f_job
        UNION ALL
        SELECT e.job_namespace, e.job_name
        FROM unnest(w.f_ns, w.f_name) AS f(ns, name)
        CROSS JOIN LATERAL (
          SELECT job_namespace, job_name FROM {edges}
          WHERE workspace = s.ws AND ds_namespace = f.ns AND ds_name = f.name OFFSET 0
        ) e
        WHERE NOT w.f_job
      ) x
      WHERE NOT EXISTS (
        SELECT 1 FROM unnest(w.p_ns, w.p_name) AS v(ns, name) WHERE v.ns = x.ns AND v.name = x.name
      )
    ) y
  ) l
  WHERE w.step < s.steps AND cardinality(w.f_ns) > 0 AND NOT w.cut
), reached AS (
  SELECT w.f_job AS job, s.ws, k.ns, k.name
  FROM walk w CROSS JOIN start s CROSS JOIN unnest(w.f_ns, w.f_name) AS k(ns, name)
)
"""

# The rows of the nodes reached, as plain rows of one UNION ALL (a part name, then the part's
# columns; JSON built and parsed again costs the server a third more): each dataset, each job
# with its latest run, each edge of those jobs, and whether the walk was cut.
_WIDTH = len(JOB_COLUMNS) + len(RUN_COLUMNS)


def _part(name: str, columns: list[str]) -> str:
    return ", ".join([f"'{name}'", *columns, *["NULL"] * (_WIDTH - len(columns))])


_ROWS = f"""
SELECT {_part("dataset", [f"x.{c}" for c in DATASET_COLUMNS])}
FROM reached r CROSS JOIN LATERAL (
  SELECT * FROM {{datasets}} WHERE workspace = r.ws AND namespace = r.ns AND name = r.name OFFSET 0) x
WHERE NOT r.job
UNION ALL
SELECT {_part("job", [f"x.{c}" for c in JOB_COLUMNS] + [f"u.{c}" for c in RUN_COLUMNS])}
FROM reached r CROSS JOIN LATERAL (
  SELECT * FROM {{jobs}} WHERE workspace = r.ws AND namespace = r.ns AND name = r.name OFFSET 0) x
LEFT JOIN {{runs}} u ON u.run_id = x.latest_run_id
WHERE r.job
UNION ALL
SELECT {_part("edge", [f"x.{c}" for c in EDGE_COLUMNS])}
FROM reached r CROSS JOIN LATERAL (
  SELECT * FROM {{edges}} WHERE workspace = r.ws AND job_namespace = r.ns AND job_name = r.name OFFSET 0) x
WHERE r.job
UNION ALL
SELECT {_part("cut", ["bool_or(cut)::text"])} FROM walk
UNION ALL
SELECT {_part("start", ["ns", "name"])} FROM start
"""


def _neighbourhood_postgres(
    conn: Connection, t: Tables, ws: str, kind: str, keys: list[Key], steps: int, max_nodes: int
) -> Neighbourhood | None:
    names = {"datasets": t("datasets"), "jobs": t("jobs"), "runs": t("runs"), "edges": t("edges")}
    sql = _WALK.format(**names) + _ROWS.format(**names)
    params = (ws, kind == "job", steps, max_nodes, [k[0] for k in keys], [k[1] for k in keys])
    datasets: list[tuple[Any, ...]] = []
    jobs: list[tuple[Any, ...]] = []
    edges: list[tuple[Any, ...]] = []
    truncated, started = False, False
    n_dataset, n_job, n_edge = len(DATASET_COLUMNS) + 1, _WIDTH + 1, len(EDGE_COLUMNS) + 1
    with conn.raw.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(conn.sql(sql), params)
        for row in cursor.fetchall():
            part = row[0]
            if part == "dataset":
                datasets.append(row[1:n_dataset])
            elif part == "job":
                jobs.append(row[1:n_job])
            elif part == "edge":
                edges.append(row[1:n_edge])
            elif part == "cut":
                truncated = row[1] == "true"
            else:
                started = True
    return Neighbourhood(datasets, jobs, edges, truncated) if started else None


def _walk_sqlite(
    conn: Connection, t: Tables, ws: str, kind: str, key: Key, steps: int, max_nodes: int
) -> Walk:
    seen: dict[str, set[Key]] = {"dataset": set(), "job": set()}
    seen[kind].add(key)
    frontier, truncated = [key], False
    for _ in range(steps):
        if not frontier:
            break
        other = "job" if kind == "dataset" else "dataset"
        found = sorted(set(_neighbours_sqlite(conn, t, ws, kind, frontier)) - seen[other])
        room = max_nodes - len(seen["dataset"]) - len(seen["job"])
        if len(found) > room:
            found, truncated = found[:room], True
        seen[other].update(found)
        frontier, kind = found, other
        if truncated:
            break
    return Walk(sorted(seen["dataset"]), sorted(seen["job"]), truncated)


def _neighbours_sqlite(conn: Connection, t: Tables, ws: str, kind: str, keys: list[Key]) -> list[Key]:
    """The other ends of the edges of ``keys``: one statement, the keys as one JSON array."""
    mine, theirs = ("ds_", "job_") if kind == "dataset" else ("job_", "ds_")
    rows = conn.all(
        f"SELECT x.{theirs}namespace AS ns, x.{theirs}name AS name FROM json_each(?) AS k "
        f"CROSS JOIN {t('edges')} AS x ON x.workspace = ? AND x.{mine}namespace = "
        f"json_extract(k.value, '$[0]') AND x.{mine}name = json_extract(k.value, '$[1]')",
        (dumps(keys), ws),
    )
    return [(r["ns"], r["name"]) for r in rows]


def rows_by_key(
    conn: Connection, table: str, ws: str, columns: tuple[str, str], keys: list[Key]
) -> list[dict[str, Any]]:
    """The rows of workspace ``ws`` in ``table`` whose two ``columns`` are one of ``keys``, in
    one statement: an index probe per key on both backends (on PostgreSQL the keys as two
    arrays, probed through ``LATERAL ... OFFSET 0``, which keeps the planner from hashing the
    whole table)."""
    if not keys:
        return []
    a, b = columns
    if conn.is_postgres:
        return conn.all(
            f"SELECT x.* FROM unnest(?::text[], ?::text[]) AS k(a, b) CROSS JOIN LATERAL "
            f"(SELECT * FROM {table} WHERE workspace = ? AND {a} = k.a AND {b} = k.b OFFSET 0) AS x",
            ([k[0] for k in keys], [k[1] for k in keys], ws),
        )
    return conn.all(
        f"SELECT x.* FROM json_each(?) AS k CROSS JOIN {table} AS x ON x.workspace = ? "
        f"AND x.{a} = json_extract(k.value, '$[0]') AND x.{b} = json_extract(k.value, '$[1]')",
        (dumps(keys), ws),
    )
