"""One streamed scan of the events table into a scratch SQLite file of the process
(:class:`RunsScan`): every run's :class:`~ledger.retention.policy.RunFacts` (its status, when
it ended, its hold, whether it is expunged, its definition's ``retention``) and which runs name
which stored file, so an expunge deletes only the files no live run still references (a file
produced once and consumed by ten runs stays until the last goes).

Memory stays flat however big the ledger: the events are read stream by stream (the events
table's key order), so one run is folded at a time; runs and references go to disk; the runs
retention picks are chosen by one query over the scratch file (a window per workflow for
``keep_last``, :func:`~ledger.retention.policy.expires` for the rest) and read back a page at
a time.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger.domain.status import TERMINAL, status_after
from ledger.hashing import is_sha256_hex
from ledger.retention.policy import ENDED, RunFacts, expires
from ledger.settings import Settings
from ledger.store.decode import decode
from ledger.store.rawstore import RawStore

_RUN_TOPICS = "%:Run.%"
#: Rows written to the scratch file per transaction while scanning.
_FLUSH = 20_000
#: Runs read back per page by default (picked runs, expunged runs): ``RUNLEDGER_RETENTION_PAGE_RUNS``.
PAGE = 500

_COLUMNS = "id, run_id, workflow, created_at, status, ended_at, held, expunged, retention, version, last_hash"


def scan_runs(settings: Settings) -> RunsScan:
    """Every run's facts and the file references, read in one streamed pass (stream by
    stream); the caller closes the answer."""
    raw = RawStore(settings)
    scan = RunsScan(page=settings.retention_page_runs)
    try:
        with raw.connect() as conn:
            query = raw.rows.events.rows("topic LIKE ?", "originator_id, originator_version")
            run: RunFacts | None = None
            for row in raw.rows.stream(conn, query, (_RUN_TOPICS,)):
                event = decode(*row)
                if run is None or event.stream != run.run_id:
                    if run is not None:
                        scan.add_run(run)
                    run = None
                    if event.type != "Run.Triggered":
                        continue  # pragma: no cover - a run stream starts with its trigger
                    run = scan.triggered(event.stream, event.timestamp, event.data)
                else:
                    _fold(scan, run, event.type, event.timestamp, event.data)
                run.version, run.last_hash = event.sequence, event.hash
            if run is not None:
                scan.add_run(run)
        scan.indexed()
    except BaseException:
        scan.close()
        raise
    return scan


def _fold(scan: RunsScan, run: RunFacts, kind: str, at: str, data: dict[str, Any]) -> None:
    status = status_after(run.status, kind, data)  # the status rules, as every reader asks
    if status != run.status:
        run.status = status.value
        if status in TERMINAL:
            run.ended_at = at
    match kind:
        case "Run.TaskFinished" | "Run.TaskReused":
            for sha in _files_of(data):
                scan.add_ref(run, sha)
        case "Run.HoldPlaced":
            run.held = True
        case "Run.HoldReleased":
            run.held = False
        case "Run.Expunged":
            run.expunged = True
        case _:
            pass


def _files_of(data: dict[str, Any]) -> Iterator[str]:
    for ref in [*(data.get("inputs") or []), *(data.get("outputs") or [])]:
        if isinstance(ref, dict) and is_sha256_hex(str(ref.get("sha256"))):
            yield str(ref["sha256"])
    for stream in ("stdout", "stderr"):
        ref = data.get(stream)
        if isinstance(ref, dict) and is_sha256_hex(str(ref.get("sha256"))):
            yield str(ref["sha256"])


@functools.lru_cache(maxsize=1024)
def _rule(text: str | None) -> dict[str, Any] | None:
    return None if text is None else dict(json.loads(text))


_LIVE_NAMING = "SELECT 1 FROM refs o JOIN runs l ON l.id = o.run WHERE o.sha = r.sha AND l.live = 1"


class RunsScan:
    """The scan's scratch SQLite file (removed on :meth:`close`): ``runs`` (each run's facts,
    and ``live``: not expunged, as far as this pass knows), ``refs`` (which run names which
    file) and ``picked`` (the runs retention lets go, oldest first)."""

    def __init__(self, *, page: int = PAGE) -> None:
        self.page = page
        self._dir = tempfile.TemporaryDirectory(prefix="runledger-refs-")
        self.db = sqlite3.connect(
            Path(self._dir.name) / "scan.db", isolation_level=None, check_same_thread=False
        )
        self.db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -8000; "
            "PRAGMA temp_store = FILE; "
            "CREATE TABLE refs (sha TEXT NOT NULL, run INTEGER NOT NULL); "
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, workflow TEXT NOT NULL, "
            "created_at TEXT NOT NULL, status TEXT NOT NULL, ended_at TEXT, held INTEGER NOT NULL, "
            "expunged INTEGER NOT NULL, retention TEXT, version INTEGER NOT NULL, last_hash TEXT, "
            "live INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0); "
            "CREATE TABLE picked (seq INTEGER PRIMARY KEY, id INTEGER NOT NULL);"
        )
        self._runs: list[tuple[Any, ...]] = []
        self._refs: list[tuple[str, int]] = []
        self._next_id = 0

    # ---- the scan -----------------------------------------------------------------------
    def triggered(self, run_id: str, at: str, data: dict[str, Any]) -> RunFacts:
        """A run's facts from its trigger (its ``file`` parameters are references too)."""
        definition = data.get("definition") or {}
        self._next_id += 1
        run = RunFacts(
            run_id=run_id,
            workflow=str(data.get("workflow")),
            created_at=at,
            retention=definition.get("retention"),
            ref_id=self._next_id,
        )
        specs = definition.get("params") or {}
        for name, value in (data.get("parameters") or {}).items():
            if (specs.get(name) or {}).get("type") == "file" and is_sha256_hex(value):
                self.add_ref(run, str(value))
        return run

    def add_ref(self, run: RunFacts, sha: str) -> None:
        self._refs.append((sha, run.ref_id))
        if len(self._refs) >= _FLUSH:
            self._flush()

    def add_run(self, run: RunFacts) -> None:
        rule = None if run.retention is None else json.dumps(run.retention, sort_keys=True)
        self._runs.append(
            (
                run.ref_id,
                run.run_id,
                run.workflow,
                run.created_at,
                run.status,
                run.ended_at,
                int(run.held),
                int(run.expunged),
                rule,
                run.version,
                run.last_hash,
                0 if run.expunged else 1,
            )
        )
        if len(self._runs) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO refs (sha, run) VALUES (?, ?)", self._refs)
        self.db.executemany(f"INSERT INTO runs ({_COLUMNS}, live) VALUES ({', '.join('?' * 12)})", self._runs)
        self.db.execute("COMMIT")
        self._refs.clear()
        self._runs.clear()

    def indexed(self) -> None:
        """The scan is over: the indexes."""
        self._flush()
        self.db.execute("BEGIN")
        self.db.execute("CREATE UNIQUE INDEX runs_by_id ON runs (run_id)")
        self.db.execute("CREATE INDEX refs_by_sha ON refs (sha, run)")
        self.db.execute("CREATE INDEX refs_by_run ON refs (run)")
        self.db.execute("COMMIT")

    # ---- reading runs back --------------------------------------------------------------
    @staticmethod
    def _facts(row: tuple[Any, ...]) -> RunFacts:
        ref_id, run_id, workflow, created, status, ended, held, expunged, rule, version, last = row
        return RunFacts(
            run_id=run_id,
            workflow=workflow,
            created_at=created,
            status=status,
            ended_at=ended,
            held=bool(held),
            expunged=bool(expunged),
            retention=_rule(rule),
            ref_id=ref_id,
            version=version,
            last_hash=last,
        )

    def facts(self, run_ids: Iterable[str]) -> dict[str, RunFacts]:
        """The facts of those of ``run_ids`` the scan saw."""
        found: dict[str, RunFacts] = {}
        wanted = list(run_ids)
        for start in range(0, len(wanted), self.page):
            part = wanted[start : start + self.page]
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE run_id IN ({', '.join('?' * len(part))})", part
            ).fetchall()
            found.update((row[1], self._facts(row)) for row in rows)
        return found

    def each(self) -> Iterator[RunFacts]:
        """Every run, a page at a time."""
        after = 0
        while rows := self.db.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE id > ? ORDER BY id LIMIT ?", (after, self.page)
        ).fetchall():
            yield from (self._facts(row) for row in rows)
            after = rows[-1][0]

    def pick(self, *, now: datetime, default_days: float | None) -> int:
        """Choose the runs retention lets go (:func:`~ledger.retention.policy.expires`, ranked
        per workflow newest first, as :func:`~ledger.retention.policy.pick_expired` does); how
        many. :meth:`picked` reads them back."""

        def expired(status: str, ended_at: str, held: int, rule: str | None, rank: int) -> int:
            facts = RunFacts(
                "", "", "", status=status, ended_at=ended_at, held=bool(held), retention=_rule(rule)
            )
            return int(expires(facts, rank, now=now, default_days=default_days))

        self.db.create_function("rl_expired", 5, expired, deterministic=True)
        marks = ", ".join(f"'{status}'" for status in sorted(ENDED))
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM picked")
        self.db.execute(
            "INSERT INTO picked (id) SELECT id FROM ("
            "SELECT id, run_id, created_at, status, ended_at, held, retention, "
            "ROW_NUMBER() OVER (PARTITION BY workflow ORDER BY created_at DESC, run_id DESC) - 1 AS rank "
            f"FROM runs WHERE status IN ({marks}) AND ended_at IS NOT NULL AND expunged = 0"
            ") ended WHERE rl_expired(status, ended_at, held, retention, rank) "
            "ORDER BY created_at, run_id"
        )
        self.db.execute("COMMIT")
        return int(self.db.execute("SELECT COUNT(*) FROM picked").fetchone()[0])

    def picked(self) -> Iterator[list[RunFacts]]:
        """The picked runs, oldest first, a page at a time."""
        after = 0
        while rows := self.db.execute(
            f"SELECT p.seq, {', '.join(f'r.{c.strip()}' for c in _COLUMNS.split(','))} "
            "FROM picked p JOIN runs r ON r.id = p.id WHERE p.seq > ? ORDER BY p.seq LIMIT ?",
            (after, self.page),
        ).fetchall():
            yield [self._facts(row[1:]) for row in rows]
            after = rows[-1][0]

    def expunged_runs(self) -> Iterator[list[RunFacts]]:
        """The runs that are expunged (as scanned, or by this pass) and not :meth:`finished`
        by this pass, a page at a time."""
        after = 0
        while rows := self.db.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE live = 0 AND finished = 0 AND id > ? ORDER BY id LIMIT ?",
            (after, self.page),
        ).fetchall():
            yield [self._facts(row) for row in rows]
            after = rows[-1][0]

    # ---- reference counting -------------------------------------------------------------
    def take_unreferenced(self, runs: list[RunFacts]) -> dict[str, list[str]]:
        """Count ``runs`` as expunged, and answer the files each of them is the last live run
        to name: a file several of them name goes to the last of them (in the list's order),
        as expunging them one after the other would say it."""
        if not runs:
            return {}
        order = {run.ref_id: i for i, run in enumerate(runs)}
        self._set_live(runs, live=False)
        marks = ", ".join("?" * len(runs))
        rows = self.db.execute(
            f"SELECT r.sha, r.run FROM refs r WHERE r.run IN ({marks}) AND NOT EXISTS ({_LIVE_NAMING})",
            list(order),
        ).fetchall()
        last: dict[str, int] = {}
        for sha, ref_id in rows:
            if order[ref_id] >= order.get(last.get(sha, -1), -1):
                last[sha] = ref_id
        files: dict[str, list[str]] = {run.run_id: [] for run in runs}
        by_id = {run.ref_id: run.run_id for run in runs}
        for sha, ref_id in sorted(last.items()):
            files[by_id[ref_id]].append(sha)
        return files

    def finished(self, runs: list[RunFacts]) -> None:
        """Nothing of ``runs`` is left to remove (the pass's last sweep skips them)."""
        if runs:
            marks = ", ".join("?" * len(runs))
            self.db.execute(f"UPDATE runs SET finished = 1 WHERE id IN ({marks})", [r.ref_id for r in runs])

    def restore(self, runs: list[RunFacts]) -> None:
        """``runs`` count again (their expunge was not recorded)."""
        self._set_live(runs, live=True)

    def _set_live(self, runs: list[RunFacts], *, live: bool) -> None:
        if not runs:
            return
        marks = ", ".join("?" * len(runs))
        self.db.execute(
            f"UPDATE runs SET live = ? WHERE id IN ({marks})", [int(live), *(r.ref_id for r in runs)]
        )

    def unreferenced(self, runs: list[RunFacts]) -> Iterator[tuple[str, str]]:
        """``(sha256, run_id)`` of the files of the expunged ``runs`` that no live run names."""
        if not runs:
            return
        marks = ", ".join("?" * len(runs))
        rows = self.db.execute(
            f"SELECT DISTINCT r.sha, x.run_id FROM refs r JOIN runs x ON x.id = r.run "
            f"WHERE r.run IN ({marks}) AND NOT EXISTS ({_LIVE_NAMING})",
            [r.ref_id for r in runs],
        )
        yield from ((str(sha), str(run_id)) for sha, run_id in rows)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()
