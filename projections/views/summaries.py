"""Run summaries: everything ``GET /api/runs/{id}`` and ``GET /api/runs`` show.

The view keeps one row per run (plus the fold's internal state), one row per searchable
field of a run -- each parameter, label and output variable, named ``param.<name>``,
``label.<key>``, ``output.<task>.<key>``, as text and as a number, so filters and ``q``
expressions use an index -- and one row per batch. Its event handling is
the fold of :mod:`projections.views.summaries_fold`; its queries live in
:mod:`projections.views.summaries_queries`.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any, ClassVar

from ledger.store.event_record import EventRecord
from projections.db import Connection
from projections.view import (
    CarryingRebuilder,
    Rebuilder,
    Tables,
    View,
    chunks,
    dumps,
    loads,
    placeholders,
    runs_to_read,
)
from projections.views.summaries_fold import (
    SUMMARY_FIELDS,
    Fold,
    State,
    param_number,
    param_text,
    public,
)

# ---- the view -------------------------------------------------------------------------------
#: A run row: the summary, then what the view keeps to follow the run (its worker, lease,
#: position and the fold's own state).
_COLUMNS = (*SUMMARY_FIELDS, "worker_id", "lease_expires_at", "position", "fold")
_JSON = frozenset({"parameters", "outputs", "late_events", "labels"})
_FIELD_COLUMNS = ("run_id", "name", "value_text", "value_num", "created_at")
#: Output variables longer than this are shown but not searchable (an index entry is bounded).
MAX_INDEXED_OUTPUT = 1024
_BATCH_COLUMNS = ("batch_id", "workflow", "parallelism", "run_ids", "created_at")


def row_from_state(state: State) -> tuple[Any, ...]:
    summary = public(state)
    fold = {
        "tasks": state["tasks"],
        "defined_tasks": state["defined_tasks"],
        "indexed": state.get("indexed", []),
    }
    values = summary | {
        "worker_id": state["worker_id"],
        "position": state["position"],
        "lease_expires_at": state["lease_expires_at"],
        "fold": fold,
    }
    return tuple(dumps(values[c]) if c in _JSON or c == "fold" else values[c] for c in _COLUMNS)


#: Columns stored as BOOLEAN (SQLite gives them back as 0 or 1).
_BOOL = frozenset({"held", "expunged"})


def _value(row: dict[str, Any], column: str) -> Any:
    if column in _JSON:
        return loads(row[column])
    if column in _BOOL:
        return bool(row[column])
    return row[column]


def state_from_row(row: dict[str, Any]) -> State:
    state = {c: _value(row, c) for c in _COLUMNS if c != "fold"}
    state.update(json.loads(row["fold"]))
    return state


def summary_from_row(row: dict[str, Any]) -> dict[str, Any]:
    return {c: _value(row, c) for c in SUMMARY_FIELDS}


#: Runs whose fold state a rebuild keeps in memory between batches.
CARRY_RUNS = 20_000


class SummariesView(View):
    name: ClassVar[str] = "summaries"
    # v2: params carry created_at for index-ordered pages. v3: keys compared byte by byte on
    # PostgreSQL (see Connection.key_text). v4: late_events (terminal events after the end).
    # v5: labels; the params table becomes fields (parameters, labels and output variables,
    # as text and as numbers) for the q search language (SPEC section 8). v6: workspace
    # (SPEC 9), leading every index a listing pages by. v7: held and expunged (SPEC section
    # 11), sealed parameter values masked. v8: fields indexed by (run_id, name, value_text,
    # value_num), the probe of a q condition's correlated EXISTS on a page walked by time.
    schema_version: ClassVar[int] = 8
    table_names: ClassVar[tuple[str, ...]] = ("runs", "fields", "batches")

    def create(self, conn: Connection, t: Tables) -> None:
        runs, fields, batches = t("runs"), t("fields"), t("batches")
        key = conn.key_text
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {runs} (run_id {key} PRIMARY KEY, "
            f"workflow {key} NOT NULL, version BIGINT, definition_hash TEXT, "
            f"engine_version TEXT, status {key} NOT NULL, triggered_by {key}, "
            f"trigger_kind TEXT, parameters TEXT NOT NULL, created_at {key} NOT NULL, "
            "started_at TEXT, completed_at TEXT, "
            "duration_seconds DOUBLE PRECISION, tasks_total BIGINT NOT NULL, "
            "tasks_succeeded BIGINT NOT NULL, tasks_failed BIGINT NOT NULL, "
            "retry_count BIGINT NOT NULL, error TEXT, outputs TEXT NOT NULL, replay_of TEXT, "
            f"resume_of TEXT, batch_id {key}, late_events TEXT NOT NULL, labels TEXT NOT NULL, "
            f"workspace {key} NOT NULL, "
            "held BOOLEAN NOT NULL, expunged BOOLEAN NOT NULL, "
            f"worker_id TEXT, lease_expires_at {key}, "
            "position BIGINT NOT NULL, fold TEXT NOT NULL)"
        )
        for name, columns in {
            "created": "workspace, created_at, run_id",
            "status": "workspace, status, created_at, run_id",
            "workflow": "workspace, workflow, created_at, run_id",
            "triggered_by": "workspace, triggered_by, created_at, run_id",
            "trigger_kind": "workspace, trigger_kind, created_at, run_id",
            "version": "workspace, workflow, version, created_at, run_id",
            "completed": "workspace, completed_at",
            "duration": "workspace, duration_seconds",
            "batch": "batch_id, status",
            "lease": "status, lease_expires_at",
            "queue": "status, position",
        }.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {runs}_by_{name} ON {runs} ({columns})")
        # One row per searchable field of a run: (name, value_text, created_at, run_id) serves
        # text equality and ranges in page order, (name, value_num, ...) numeric ones, and
        # (run_id, name, ...) a run's own rows: whether it passes a q test, from the index.
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {fields} (run_id {key} NOT NULL, name {key} NOT NULL, "
            f"value_text {key} NOT NULL, value_num DOUBLE PRECISION, created_at {key} NOT NULL, "
            "PRIMARY KEY (name, value_text, created_at, run_id))"
        )
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {fields}_by_run ON {fields} (run_id, name, value_text, value_num)"
        )
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS {fields}_by_num ON {fields} (name, value_num, created_at, run_id)"
        )
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {batches} (batch_id {key} PRIMARY KEY, "
            "workflow TEXT NOT NULL, parallelism BIGINT NOT NULL, run_ids TEXT NOT NULL, "
            "created_at TEXT NOT NULL)"
        )

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        self.fold(conn, t, events, {})

    def rebuilder(self) -> Rebuilder:
        return CarryingRebuilder(self, partial(self.fold, append=True), self.write_runs, CARRY_RUNS)

    def fold(
        self,
        conn: Connection,
        t: Tables,
        events: list[EventRecord],
        known: dict[str, State],
        *,
        append: bool = False,
    ) -> dict[str, State]:
        """Fold ``events`` into the tables; ``known`` holds fold states already read (and
        current). With ``append`` (a rebuild, which applies each event once), parameter and
        batch rows are appended without conflict handling, and run rows are left to the
        caller (:meth:`write_runs`). Returns the states of the runs this batch touched."""
        runs = runs_to_read(events)
        states = {run_id: known[run_id] for run_id in runs if run_id in known}
        states.update(self._load(conn, t, runs - states.keys()))
        fold = Fold(states)
        for event in events:
            fold.add(event)
        params, batches = fold.params, fold.batches
        touched_states = {run_id: states[run_id] for run_id in sorted(fold.touched)}
        if append:  # a run's parameters and a batch come from its stream's first event
            conn.copy_rows(t("fields"), _FIELD_COLUMNS, params)
            conn.copy_rows(t("batches"), _BATCH_COLUMNS, batches)
            return touched_states
        self.write_runs(conn, t, touched_states)
        conn.executemany(
            f"INSERT INTO {t('fields')} ({', '.join(_FIELD_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            params,
        )
        conn.executemany(
            f"INSERT INTO {t('batches')} ({', '.join(_BATCH_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            batches,
        )
        return touched_states

    @staticmethod
    def write_runs(conn: Connection, t: Tables, states: dict[str, State]) -> None:
        """Insert or replace the run rows of ``states``, and their label and output rows."""
        SummariesView.write_fields(conn, t, states)
        upsert = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
        conn.executemany(
            f"INSERT INTO {t('runs')} ({', '.join(_COLUMNS)}) VALUES "
            f"({placeholders(len(_COLUMNS))}) ON CONFLICT (run_id) DO UPDATE SET {upsert}",
            [row_from_state(state) for state in states.values()],
        )

    @staticmethod
    def _load(conn: Connection, t: Tables, run_ids: set[str]) -> dict[str, State]:
        states: dict[str, State] = {}
        for part in chunks(sorted(run_ids)):
            rows = conn.all(
                f"SELECT {', '.join(_COLUMNS)} FROM {t('runs')} WHERE run_id IN ({placeholders(len(part))})",
                part,
            )
            for row in rows:
                states[row["run_id"]] = state_from_row(row)
        return states

    @staticmethod
    def write_fields(conn: Connection, t: Tables, states: dict[str, State]) -> None:
        """Bring the label and output rows of ``states`` in line with them. Each state keeps
        the rows last written for it (``indexed``), so only changes are written: most
        states have none, and a run's rows are not read back."""
        gone: list[tuple[str, str, str]] = []
        added: list[tuple[Any, ...]] = []
        for run_id, state in states.items():
            now = changing_fields(state)
            before = {(name, text): num for name, text, num in state.get("indexed", [])}
            if now == before:
                continue
            gone += [(run_id, name, text) for (name, text) in before.keys() - now.keys()]
            added += [
                (run_id, name, text, num, state["created_at"])
                for (name, text), num in now.items()
                if (name, text) not in before
            ]
            state["indexed"] = [[name, text, num] for (name, text), num in sorted(now.items())]
        conn.executemany(f"DELETE FROM {t('fields')} WHERE run_id = ? AND name = ? AND value_text = ?", gone)
        conn.executemany(
            f"INSERT INTO {t('fields')} ({', '.join(_FIELD_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            added,
        )


def changing_fields(state: State) -> dict[tuple[str, str], float | None]:
    """The searchable fields of a run that change after its trigger -- its labels and the
    output variables of its succeeded tasks -- as ``(name, text) -> number``."""
    fields: dict[tuple[str, str], float | None] = {
        (f"label.{key}", value): None for key, value in (state.get("labels") or {}).items()
    }
    for task, variables in (state.get("outputs") or {}).items():
        for key, value in variables.items():
            text = param_text(value)
            if value is not None and len(text) <= MAX_INDEXED_OUTPUT:
                fields[(f"output.{task}.{key}", text)] = param_number(value)
    return fields
