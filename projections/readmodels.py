"""The query facade over the view tables, for the API, the CLI and the executor.

Each query reads the view's live generation from ``rl_projection_state`` and runs on a
connection of its own (a small pool on PostgreSQL, a fresh connection on SQLite), so a rebuild
swap is picked up by the next query.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ledger.settings import Settings
from ledger.store.setup import postgres_conninfo
from projections import search
from projections import state as st
from projections.db import Connection, connect
from projections.view import Tables
from projections.views import audit, default_views, lineage_queries, stats, summaries_queries
from projections.views.rundetail import batch_progress
from projections.views.summaries_search import Values

T = TypeVar("T")


class ReadModels:
    def __init__(self, settings: Settings, *, pool_size: int = 4) -> None:
        self.settings = settings
        self.views = default_views()
        self._pool: ConnectionPool[Any] | None = None
        self._local = threading.local()
        self._sqlite: list[Connection] = []
        self._sqlite_lock = threading.Lock()
        db = settings.database
        if db.kind == "postgres":
            options = f"-c search_path={db.schema}" if db.schema else ""
            self._pool = ConnectionPool(
                postgres_conninfo(db),
                min_size=1,
                max_size=pool_size,
                open=True,
                # As long as the write side's pool waits (not psycopg_pool's 30 s): a query
                # while the database is away fails, and its loop reports down, this soon.
                timeout=settings.pool_timeout_seconds,
                # A connection the server ended (a restart, pg_terminate_backend) is found out
                # and replaced before a query gets it, instead of failing that query.
                check=ConnectionPool.check_connection,
                kwargs={"autocommit": True, "row_factory": dict_row, "options": options},
            )
        with self._connection() as conn:
            for view in self.views:
                st.ensure_view(conn, view)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        with self._sqlite_lock:
            for conn in self._sqlite:
                conn.close()
            self._sqlite.clear()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if self._pool is not None:
            with self._pool.connection() as raw:
                yield Connection("postgres", raw)
            return
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.settings)
            self._local.conn = conn
            with self._sqlite_lock:
                self._sqlite.append(conn)
        yield conn

    def _query(self, view: str, fn: Callable[[Connection, Tables], T]) -> T:
        """Run ``fn`` on the view's live tables (once more if a swap dropped them meanwhile)."""
        for attempt in (1, 2):
            with self._connection() as conn:
                pointer = st.read_pointer(conn, view)
                if pointer is None:
                    raise LookupError(f"view {view!r} does not exist")
                try:
                    return fn(conn, pointer.live)
                except (sqlite3.Error, psycopg.Error):
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- runs -----------------------------------------------------------------------------
    def run_summary(self, run_id: str) -> dict[str, Any] | None:
        return self._query("summaries", lambda c, t: summaries_queries.run_summary(c, t, run_id))

    def list_runs(
        self,
        *,
        status: Values | None = None,
        workflow: Values | None = None,
        triggered_by: Values | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        params: Mapping[str, Values] | None = None,
        labels: Mapping[str, Values] | None = None,
        q: str | None = None,
        limit: int = summaries_queries.DEFAULT_LIMIT,
        cursor: str | None = None,
        workspace: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        if q is not None:
            search.parse(q)  # a bad expression is refused before any query
        return self._query(
            "summaries",
            lambda c, t: summaries_queries.list_runs(
                c,
                t,
                status=status,
                workflow=workflow,
                triggered_by=triggered_by,
                created_after=created_after,
                created_before=created_before,
                params=params,
                labels=labels,
                q=q,
                limit=limit,
                cursor=cursor,
                workspace=workspace,
            ),
        )

    def pending_run_ids(self, limit: int = 50, workspaces: Collection[str] | None = None) -> list[str]:
        """Pending runs to offer a claim (of ``workspaces`` only, when named)."""
        return self._query(
            "summaries", lambda c, t: summaries_queries.pending_run_ids(c, t, limit, workspaces)
        )

    def lapsed_run_ids(self, now_iso: str) -> list[str]:
        return self._query("summaries", lambda c, t: summaries_queries.lapsed_run_ids(c, t, now_iso))

    def batch_statuses(self, batch_id: str) -> dict[str, str] | None:
        """Each run's status by run id, or None when the view has not seen the batch."""
        return self._query("summaries", lambda c, t: summaries_queries.batch_statuses(c, t, batch_id))

    def batch_progress(self, batch_id: str) -> dict[str, Any] | None:
        statuses = self.batch_statuses(batch_id)
        if statuses is None:
            return None
        return batch_progress(batch_id, list(statuses), list(statuses.values()))

    # ---- stats, lineage, audit ------------------------------------------------------------
    def stats(
        self,
        *,
        workflow: Values | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        workspace: str | None = None,
        q: str | None = None,
    ) -> dict[str, Any]:
        after = (
            summaries_queries.normalise_time(created_after, "created_after")
            if created_after is not None
            else None
        )
        before = (
            summaries_queries.normalise_time(created_before, "created_before")
            if created_before is not None
            else None
        )
        if q is not None:  # over the run summaries, which hold every field q names
            search.parse(q)  # a bad expression is refused before any query
            return self._query(
                "summaries",
                lambda c, t: summaries_queries.search_stats(
                    c,
                    t,
                    q,
                    workflow=workflow,
                    created_after=after,
                    created_before=before,
                    workspace=workspace,
                ),
            )
        return self._query(
            "stats",
            lambda c, t: stats.query_stats(
                c, t, workflow=workflow, created_after=after, created_before=before, workspace=workspace
            ),
        )

    def lineage(self, run_id: str, depth: int = 1, workspace: str | None = None) -> dict[str, Any] | None:
        return self._query(
            "lineage", lambda c, t: lineage_queries.query_lineage(c, t, run_id, depth, workspace)
        )

    def run_lineage(self, run_id: str, depth: int = 1) -> tuple[str, dict[str, Any]] | None:
        """The run's workspace and its graph inside that workspace (None: not in the view)."""
        return self._query("lineage", lambda c, t: lineage_queries.query_run_lineage(c, t, run_id, depth))

    def file_in_workspace(self, sha256: str, workspace: str) -> bool:
        """Whether a run of ``workspace`` consumed or produced the file (SPEC 9)."""
        return self._query("lineage", lambda c, t: lineage_queries.file_in_workspace(c, t, sha256, workspace))

    def marquez(self, fn: Callable[[Connection, Tables], T]) -> T:
        """Run one of :mod:`projections.views.marquez_queries`' (or ``marquez_graph``'s) queries."""
        return self._query("marquez", fn)

    def audit(self, run_id: str) -> list[dict[str, Any]]:
        return self._query("audit", lambda c, t: audit.query_audit(c, t, run_id))

    def ledger_audit(self, **filters: Any) -> list[dict[str, Any]]:
        """Every action on the ledger (SPEC 10), filtered and paged by position."""
        return self._query("audit", lambda c, t: audit.query_ledger_audit(c, t, **filters))

    def status(self) -> list[dict[str, Any]]:
        with self._connection() as conn:
            return st.view_status(conn, self.views)
