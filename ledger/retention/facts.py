"""One streamed scan of the events table into :class:`~ledger.retention.policy.RunFacts` per
run: its status, when it ended, its hold, whether it is expunged, its definition's
``retention`` and every stored file it names. From these, :class:`FileRefs` counts how many
runs that are not expunged name each file, so an expunge deletes only the files no live run
still references (a file produced once and consumed by ten runs stays until the last goes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from ledger.domain.status import TERMINAL, status_after
from ledger.hashing import is_sha256_hex
from ledger.retention.policy import RunFacts
from ledger.settings import Settings
from ledger.store.decode import decode
from ledger.store.rawstore import RawStore

_RUN_TOPICS = "%:Run.%"


def scan_runs(settings: Settings) -> dict[str, RunFacts]:
    """Every run's facts, read in one streamed pass (memory: the facts, not the events)."""
    raw = RawStore(settings)
    runs: dict[str, RunFacts] = {}
    with raw.connect() as conn:
        query = raw.rows.events.rows("topic LIKE ?")
        for row in raw.rows.stream(conn, query, (_RUN_TOPICS,)):
            event = decode(*row)
            _fold(runs, event.stream, event.type, event.timestamp, event.data)
    return runs


def _fold(runs: dict[str, RunFacts], stream: str, kind: str, at: str, data: dict[str, Any]) -> None:
    if kind == "Run.Triggered":
        definition = data.get("definition") or {}
        created = runs[stream] = RunFacts(
            run_id=stream,
            workflow=str(data.get("workflow")),
            created_at=at,
            retention=definition.get("retention"),
        )
        specs = definition.get("params") or {}
        for name, value in (data.get("parameters") or {}).items():
            if (specs.get(name) or {}).get("type") == "file" and isinstance(value, str):
                created.files.add(value)
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
            run.files.update(_files_of(data))
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


class FileRefs:
    """How many runs that are not expunged name each stored file."""

    def __init__(self, runs: Iterable[RunFacts]) -> None:
        self.live: Counter[str] = Counter()
        for run in runs:
            if not run.expunged:
                self.live.update(run.files)

    def unique_to(self, run: RunFacts) -> list[str]:
        """The files only ``run`` names among live runs (deleted when it is expunged)."""
        return sorted(sha for sha in run.files if self.live[sha] <= 1)

    def expunged(self, run: RunFacts) -> None:
        """``run`` no longer counts."""
        self.live.subtract(run.files)

    def unreferenced(self, run: RunFacts) -> list[str]:
        """The files of an expunged run that no live run names."""
        return sorted(sha for sha in run.files if self.live[sha] <= 0)
