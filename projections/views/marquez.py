"""Marquez's read model (SPEC 13): namespaces, jobs with their latest run, runs, datasets with
versions and the fields of their schema facet, job-dataset edges, column lineage from the
columnLineage facet, and the feed of OpenLineage events, all from stored events.

Every row is a workspace's (SPEC 9): jobs and datasets are keyed by ``(workspace, namespace,
name)``, namespace and name two columns, never one joined string, and every index leads with
the workspace, so the same OpenLineage namespace and job in two workspaces are two jobs and no
read of one workspace meets the other's rows. A run's workspace is its ``Run.Triggered``'s, a
static dataset's or job's its stream's ``Declared``; the ``scopes`` table keeps those of
streams outside ``default`` (events written before workspaces are all ``default``).
A run's state follows :mod:`ledger.domain.status` (terminal states are final) in Marquez's
words (:data:`MARQUEZ_STATE`). Each RunEvent's outputs that carry facets make a dataset
version (id: a UUID5 of the dataset and the run). Static lineage (``DatasetLineage.Reported``,
``JobLineage.Reported``) adds datasets, jobs and edges without a run. The queries live in
:mod:`projections.views.marquez_queries`.

Past 300 lines on purpose: one view, its seven tables and its one ``match`` over the events
that fill them; its queries already live apart.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from ledger.domain.status import RunStatus, started_time, status_after, transition_time
from ledger.domain.workspace import DEFAULT_WORKSPACE, workspace_of
from ledger.store.event_record import EventRecord
from projections.db import Connection
from projections.view import Tables, View, dumps, loads

#: Our run status -> Marquez's RunState.
MARQUEZ_STATE: dict[str, str] = {
    RunStatus.PENDING: "NEW",
    RunStatus.RUNNING: "RUNNING",
    RunStatus.SUCCESS: "COMPLETED",
    RunStatus.FAILED: "FAILED",
    RunStatus.KILLED: "ABORTED",
}
_VERSIONS = uuid.UUID("6f1d9a3e-24b0-4c4e-9a57-1a2b3c4d5e6f")


def dataset_version(namespace: str, name: str, run_id: str | None, position: int) -> str:
    """The id of the version a run (or, without one, the event at ``position``) wrote."""
    return str(uuid.uuid5(_VERSIONS, f"{namespace}\x00{name}\x00{run_id or position}"))


class MarquezView(View):
    name: ClassVar[str] = "marquez"
    # v2: every row carries its workspace, leading every key and index (SPEC 9), and a run's
    # ``expunged`` (SPEC 11).
    schema_version: ClassVar[int] = 2
    #: Datasets and jobs are rows many runs write: rebuilt in ledger order, in one process.
    splittable: ClassVar[bool] = False
    table_names: ClassVar[tuple[str, ...]] = (
        "jobs",
        "runs",
        "datasets",
        "versions",
        "edges",
        "columns",
        "events",
        "scopes",
    )

    def create(self, conn: Connection, t: Tables) -> None:
        k = conn.key_text
        for ddl in (
            f"{t('jobs')} (workspace {k} NOT NULL, namespace {k} NOT NULL, name {k} NOT NULL, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, latest_run_id TEXT, facets TEXT NOT NULL, "
            "PRIMARY KEY (workspace, namespace, name))",
            f"{t('runs')} (run_id {k} PRIMARY KEY, workspace {k} NOT NULL, namespace {k} NOT NULL, "
            f"name {k} NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "started_at TEXT, ended_at TEXT, facets TEXT NOT NULL, position BIGINT NOT NULL, "
            "expunged INTEGER NOT NULL DEFAULT 0)",
            f"{t('datasets')} (workspace {k} NOT NULL, namespace {k} NOT NULL, name {k} NOT NULL, "
            "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, fields TEXT NOT NULL, facets TEXT NOT NULL, "
            "current_version TEXT, PRIMARY KEY (workspace, namespace, name))",
            f"{t('versions')} (version {k} PRIMARY KEY, workspace {k} NOT NULL, namespace {k} NOT NULL, "
            f"name {k} NOT NULL, created_at TEXT NOT NULL, run_id TEXT, fields TEXT NOT NULL, "
            "facets TEXT NOT NULL, position BIGINT NOT NULL)",
            # direction: 'in' (dataset -> job) or 'out' (job -> dataset)
            f"{t('edges')} (workspace {k} NOT NULL, job_namespace {k} NOT NULL, job_name {k} NOT NULL, "
            f"direction {k} NOT NULL, ds_namespace {k} NOT NULL, ds_name {k} NOT NULL, "
            "PRIMARY KEY (workspace, job_namespace, job_name, direction, ds_namespace, ds_name))",
            f"{t('columns')} (workspace {k} NOT NULL, namespace {k} NOT NULL, name {k} NOT NULL, "
            f"field {k} NOT NULL, in_namespace {k} NOT NULL, in_name {k} NOT NULL, in_field {k} NOT NULL, "
            "transformation TEXT NOT NULL, "
            "PRIMARY KEY (workspace, namespace, name, field, in_namespace, in_name, in_field))",
            f"{t('events')} (position BIGINT PRIMARY KEY, workspace {k} NOT NULL, event_time {k} NOT NULL, "
            "event TEXT NOT NULL)",
            # the workspace of an OpenLineage run or a static lineage stream outside ``default``
            f"{t('scopes')} (stream {k} PRIMARY KEY, workspace {k} NOT NULL)",
        ):
            conn.execute(f"CREATE TABLE IF NOT EXISTS {ddl}")
        for index in (
            f"{t('runs')}_by_job ON {t('runs')} (workspace, namespace, name, created_at)",
            f"{t('versions')}_by_dataset ON {t('versions')} (workspace, namespace, name, position)",
            # the jobs of a dataset from the index alone (the lineage walk's step from datasets)
            f"{t('edges')}_by_dataset ON {t('edges')} "
            "(workspace, ds_namespace, ds_name, job_namespace, job_name)",
            f"{t('columns')}_by_input ON {t('columns')} (workspace, in_namespace, in_name)",
            f"{t('events')}_by_time ON {t('events')} (workspace, event_time, position)",
        ):
            conn.execute(f"CREATE INDEX IF NOT EXISTS {index}")

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        for event in events:
            match event.type:
                case "Run.LineageReported":
                    self._run_event(conn, t, event)
                case "DatasetLineage.Reported":
                    self._dataset_event(conn, t, event)
                case "JobLineage.Reported":
                    self._job_event(conn, t, event)
                case "Run.Triggered" if event.data.get("trigger_kind") == "openlineage":
                    self._scope(conn, t, event)
                case "DatasetLineage.Declared" | "JobLineage.Declared":
                    self._scope(conn, t, event)
                case "Run.Expunged":  # an OpenLineage run's row; no row for another run
                    conn.execute(f"UPDATE {t('runs')} SET expunged = 1 WHERE run_id = ?", (event.stream,))
                case _:
                    pass

    # ---- handlers ---------------------------------------------------------------------------
    @staticmethod
    def _scope(conn: Connection, t: Tables, event: EventRecord) -> None:
        workspace = workspace_of(event.data)
        if workspace != DEFAULT_WORKSPACE:
            conn.execute(
                f"INSERT INTO {t('scopes')} (stream, workspace) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (event.stream, workspace),
            )

    @staticmethod
    def _workspace(conn: Connection, t: Tables, stream: str) -> str:
        row = conn.one(f"SELECT workspace FROM {t('scopes')} WHERE stream = ?", (stream,))
        return DEFAULT_WORKSPACE if row is None else str(row["workspace"])

    def _run_event(self, conn: Connection, t: Tables, event: EventRecord) -> None:
        d = event.data
        job, at, run_id = d["job"], d["event_time"], event.stream
        row = conn.one(
            f"SELECT workspace, status, started_at, ended_at, facets FROM {t('runs')} WHERE run_id = ?",
            (run_id,),
        )
        ws = self._workspace(conn, t, run_id) if row is None else row["workspace"]
        self._job(conn, t, ws, job["namespace"], job["name"], at, job.get("facets") or {}, run_id)
        status = RunStatus.PENDING if row is None else RunStatus(row["status"])
        after = status_after(status, event.type, d)
        started = started_time(event.type, d)
        started_at = row["started_at"] if row else None
        if started is not None and (started_at is None or started < started_at):
            started_at = started
        ended_at = row["ended_at"] if row else None
        if after != status and after in (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.KILLED):
            ended_at = transition_time(event.type, d, event.timestamp)
        facets = (loads(row["facets"]) if row else {}) | (d.get("run_facets") or {})
        conn.execute(
            f"INSERT INTO {t('runs')} (run_id, workspace, namespace, name, status, created_at, updated_at, "
            "started_at, ended_at, facets, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, "
            "started_at = excluded.started_at, ended_at = excluded.ended_at, facets = excluded.facets",
            (
                run_id,
                ws,
                job["namespace"],
                job["name"],
                after.value,
                at,
                at,
                started_at,
                ended_at,
                dumps(facets),
                event.position,
            ),
        )
        self._datasets(
            conn, t, ws, job, d.get("inputs") or [], d.get("outputs") or [], at, run_id, event.position
        )
        raw = {
            "eventType": d.get("event_type"),
            "eventTime": at,
            "run": {"runId": run_id, "facets": d.get("run_facets") or {}},
            "job": job,
            "inputs": [_ol_dataset(x, "inputFacets", "input_facets") for x in d.get("inputs") or []],
            "outputs": [_ol_dataset(x, "outputFacets", "output_facets") for x in d.get("outputs") or []],
            "producer": d.get("producer"),
            "schemaURL": d.get("schema_url"),
        }
        self._feed(conn, t, ws, event.position, at, raw)

    def _dataset_event(self, conn: Connection, t: Tables, event: EventRecord) -> None:
        d, at = event.data, event.data["event_time"]
        ns, name, ws = d["namespace"], d["name"], self._workspace(conn, t, event.stream)
        facets = d.get("facets") or {}
        self._dataset(conn, t, ws, ns, name, facets, at, None, event.position, versioned=bool(facets))
        raw = {
            "eventTime": at,
            "dataset": {"namespace": ns, "name": name, "facets": d.get("facets") or {}},
            "producer": d.get("producer"),
            "schemaURL": d.get("schema_url"),
        }
        self._feed(conn, t, ws, event.position, at, raw)

    def _job_event(self, conn: Connection, t: Tables, event: EventRecord) -> None:
        d, at = event.data, event.data["event_time"]
        ns, name, ws = d["namespace"], d["name"], self._workspace(conn, t, event.stream)
        job = {"namespace": ns, "name": name, "facets": d.get("job_facets") or {}}
        self._job(conn, t, ws, ns, name, at, job["facets"], None)
        self._datasets(
            conn, t, ws, job, d.get("inputs") or [], d.get("outputs") or [], at, None, event.position
        )
        raw = {
            "eventTime": at,
            "job": job,
            "inputs": [_ol_dataset(x, "inputFacets", "input_facets") for x in d.get("inputs") or []],
            "outputs": [_ol_dataset(x, "outputFacets", "output_facets") for x in d.get("outputs") or []],
            "producer": d.get("producer"),
            "schemaURL": d.get("schema_url"),
        }
        self._feed(conn, t, ws, event.position, at, raw)

    # ---- rows ---------------------------------------------------------------------------------
    @staticmethod
    def _job(
        conn: Connection,
        t: Tables,
        ws: str,
        ns: str,
        name: str,
        at: str,
        facets: dict[str, Any],
        run_id: str | None,
    ) -> None:
        row = conn.one(
            f"SELECT facets, latest_run_id FROM {t('jobs')} "
            "WHERE workspace = ? AND namespace = ? AND name = ?",
            (ws, ns, name),
        )
        merged = (loads(row["facets"]) if row else {}) | facets
        latest = run_id or (row["latest_run_id"] if row else None)
        conn.execute(
            f"INSERT INTO {t('jobs')} (workspace, namespace, name, created_at, updated_at, latest_run_id, "
            "facets) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace, namespace, name) DO UPDATE SET "
            "updated_at = excluded.updated_at, latest_run_id = excluded.latest_run_id, "
            "facets = excluded.facets",
            (ws, ns, name, at, at, latest, dumps(merged)),
        )

    def _datasets(
        self,
        conn: Connection,
        t: Tables,
        ws: str,
        job: dict[str, Any],
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        at: str,
        run_id: str | None,
        position: int,
    ) -> None:
        for direction, datasets in (("in", inputs), ("out", outputs)):
            for ds in datasets:
                self._dataset(
                    conn,
                    t,
                    ws,
                    ds["namespace"],
                    ds["name"],
                    ds.get("facets") or {},
                    at,
                    run_id,
                    position,
                    versioned=direction == "out",
                )
                conn.execute(
                    f"INSERT INTO {t('edges')} (workspace, job_namespace, job_name, direction, ds_namespace, "
                    "ds_name) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (ws, job["namespace"], job["name"], direction, ds["namespace"], ds["name"]),
                )

    @staticmethod
    def _dataset(
        conn: Connection,
        t: Tables,
        ws: str,
        ns: str,
        name: str,
        facets: dict[str, Any],
        at: str,
        run_id: str | None,
        position: int,
        *,
        versioned: bool,
    ) -> None:
        """Upsert a dataset; an output (``versioned``) makes a version, the run's (or, without a
        run, this event's)."""
        row = conn.one(
            f"SELECT fields, facets, current_version FROM {t('datasets')} "
            "WHERE workspace = ? AND namespace = ? AND name = ?",
            (ws, ns, name),
        )
        merged = (loads(row["facets"]) if row else {}) | facets
        fields = (
            _fields(facets.get("schema")) if "schema" in facets else (loads(row["fields"]) if row else [])
        )
        version = row["current_version"] if row else None
        if versioned:
            version = dataset_version(ns, name, run_id, position)
            conn.execute(
                f"INSERT INTO {t('versions')} (version, workspace, namespace, name, created_at, run_id, "
                "fields, facets, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (version) DO UPDATE SET fields = excluded.fields, facets = excluded.facets",
                (version, ws, ns, name, at, run_id, dumps(fields), dumps(merged), position),
            )
        conn.execute(
            f"INSERT INTO {t('datasets')} (workspace, namespace, name, created_at, updated_at, fields, "
            "facets, current_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (workspace, namespace, name) DO UPDATE SET updated_at = excluded.updated_at, "
            "fields = excluded.fields, facets = excluded.facets, current_version = excluded.current_version",
            (ws, ns, name, at, at, dumps(fields), dumps(merged), version),
        )
        lineage = facets.get("columnLineage")
        for field, spec in ((lineage or {}).get("fields") or {}).items() if isinstance(lineage, dict) else ():
            for source in (spec or {}).get("inputFields") or []:
                how = {k: spec.get(k) for k in ("transformationDescription", "transformationType")}
                if source.get("transformations"):
                    how["transformations"] = source["transformations"]
                conn.execute(
                    f"INSERT INTO {t('columns')} (workspace, namespace, name, field, in_namespace, in_name, "
                    "in_field, transformation) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        ws,
                        ns,
                        name,
                        str(field),
                        str(source.get("namespace")),
                        str(source.get("name")),
                        str(source.get("field")),
                        dumps(how),
                    ),
                )

    @staticmethod
    def _feed(conn: Connection, t: Tables, ws: str, position: int, at: str, raw: dict[str, Any]) -> None:
        conn.execute(
            f"INSERT INTO {t('events')} (position, workspace, event_time, event) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (position, ws, at, dumps(raw)),
        )


def _fields(schema: Any) -> list[dict[str, Any]]:
    """Marquez's dataset fields from a schema facet: ``{name, type, tags, description}``."""
    fields = schema.get("fields") if isinstance(schema, dict) else None
    return [
        {"name": f.get("name"), "type": f.get("type"), "tags": [], "description": f.get("description")}
        for f in fields or []
        if isinstance(f, dict)
    ]


def _ol_dataset(ds: dict[str, Any], key: str, ours: str) -> dict[str, Any]:
    return {
        "namespace": ds["namespace"],
        "name": ds["name"],
        "facets": ds.get("facets") or {},
        key: ds.get(ours) or {},
    }
