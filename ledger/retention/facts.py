"""One streamed scan of the events table into :class:`~ledger.retention.policy.RunFacts` per
run (its status, when it ended, its hold, whether it is expunged, its definition's
``retention``) and :class:`FileRefs`: which runs name which stored file, so an expunge deletes
only the files no live run still references (a file produced once and consumed by ten runs
stays until the last goes). The references are kept in a scratch SQLite file of the process,
not in memory: a ledger's millions of file references cost disk, not RAM.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ledger.domain.status import TERMINAL, status_after
from ledger.hashing import is_sha256_hex
from ledger.retention.policy import RunFacts
from ledger.settings import Settings
from ledger.store.decode import decode
from ledger.store.rawstore import RawStore

_RUN_TOPICS = "%:Run.%"
_FLUSH = 20_000


def scan_runs(settings: Settings) -> tuple[dict[str, RunFacts], FileRefs]:
    """Every run's facts and the file references, read in one streamed pass."""
    raw = RawStore(settings)
    runs: dict[str, RunFacts] = {}
    refs = FileRefs()
    shared: dict[str, Any] = {}  # one copy of each distinct retention rule and workflow name
    with raw.connect() as conn:
        query = raw.rows.events.rows("topic LIKE ?")
        for row in raw.rows.stream(conn, query, (_RUN_TOPICS,)):
            event = decode(*row)
            _fold(runs, refs, event.stream, event.type, event.timestamp, event.data, shared)
            run = runs.get(event.stream)
            if run is not None:
                run.version, run.last_hash = event.sequence, event.hash
    refs.indexed(runs.values())
    return runs, refs


def _fold(
    runs: dict[str, RunFacts],
    refs: FileRefs,
    stream: str,
    kind: str,
    at: str,
    data: dict[str, Any],
    shared: dict[str, Any],
) -> None:
    if kind == "Run.Triggered":
        definition = data.get("definition") or {}
        rule = definition.get("retention")
        workflow = str(data.get("workflow"))
        created = runs[stream] = RunFacts(
            run_id=stream,
            workflow=shared.setdefault(f"w:{workflow}", workflow),
            created_at=at,
            retention=None
            if rule is None
            else shared.setdefault(f"r:{json.dumps(rule, sort_keys=True)}", rule),
            ref_id=len(runs) + 1,
        )
        specs = definition.get("params") or {}
        for name, value in (data.get("parameters") or {}).items():
            if (specs.get(name) or {}).get("type") == "file" and is_sha256_hex(value):
                refs.add(created, str(value))
        return
    run = runs.get(stream)
    if run is None:
        return
    status = status_after(run.status, kind, data)  # the status rules, as every reader asks
    if status != run.status:
        run.status = status.value
        if status in TERMINAL:
            run.ended_at = at
    match kind:
        case "Run.TaskFinished" | "Run.TaskReused":
            for sha in _files_of(data):
                refs.add(run, sha)
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


_LIVE_ELSEWHERE = (
    "SELECT 1 FROM refs o JOIN runs l ON l.id = o.run WHERE o.sha = r.sha AND l.live = 1 AND o.run != r.run"
)


class FileRefs:
    """Which runs name which file, and which runs are live (not expunged), in a scratch
    SQLite file removed on :meth:`close` (or when the object is collected)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="runledger-refs-")
        self.db = sqlite3.connect(
            Path(self._dir.name) / "refs.db", isolation_level=None, check_same_thread=False
        )
        self.db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
            "CREATE TABLE refs (sha TEXT NOT NULL, run INTEGER NOT NULL); "
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, live INTEGER NOT NULL);"
        )
        self._pending: list[tuple[str, int]] = []

    def add(self, run: RunFacts, sha: str) -> None:
        self._pending.append((sha, run.ref_id))
        if len(self._pending) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO refs (sha, run) VALUES (?, ?)", self._pending)
        self.db.execute("COMMIT")
        self._pending.clear()

    def indexed(self, runs: Iterable[RunFacts]) -> None:
        """The scan is over: the runs and their liveness, and the indexes."""
        self._flush()
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO runs (id, run_id, live) VALUES (?, ?, ?)",
            ((r.ref_id, r.run_id, 0 if r.expunged else 1) for r in runs),
        )
        self.db.execute("CREATE INDEX refs_by_sha ON refs (sha, run)")
        self.db.execute("CREATE INDEX refs_by_run ON refs (run)")
        self.db.execute("COMMIT")

    def unique_to(self, run: RunFacts) -> list[str]:
        """The files only ``run`` names among live runs (deleted when it is expunged)."""
        rows = self.db.execute(
            f"SELECT DISTINCT r.sha FROM refs r WHERE r.run = ? "
            f"AND NOT EXISTS ({_LIVE_ELSEWHERE}) ORDER BY r.sha",
            (run.ref_id,),
        )
        return [str(sha) for (sha,) in rows]

    def unreferenced(self, run: RunFacts) -> list[str]:
        """The files of an expunged run that no live run names."""
        return self.unique_to(run)  # ``run`` itself is not live any more

    def expunged(self, run: RunFacts) -> None:
        """``run`` no longer counts."""
        self.db.execute("UPDATE runs SET live = 0 WHERE id = ?", (run.ref_id,))

    def restore(self, run: RunFacts) -> None:
        """``run`` counts again (its expunge was not recorded)."""
        self.db.execute("UPDATE runs SET live = 1 WHERE id = ?", (run.ref_id,))

    def orphans(self) -> Iterator[tuple[str, str]]:
        """``(sha256, run_id)`` of every file some expunged run names and no live run does."""
        rows = self.db.execute(
            "SELECT DISTINCT r.sha, x.run_id FROM refs r JOIN runs x ON x.id = r.run "
            f"WHERE x.live = 0 AND NOT EXISTS ({_LIVE_ELSEWHERE})"
        )
        yield from ((str(sha), str(run_id)) for sha, run_id in rows)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()
