"""Which finished runs retention expunges: a pure function of the runs' facts and the clock.

Each run answers to the ``retention`` of its own definition (``days``, ``keep_failed_days``,
``keep_last``), or to the deployment default ``RUNLEDGER_RETENTION_DAYS`` when its definition
has none. A run is picked when all of these hold:

* it has ended (success, failed or killed), is not held and is not expunged already;
* it is not among the ``keep_last`` newest ended runs of its workflow that are not expunged
  (newest by trigger time; held runs count among them);
* its age limit has passed: ``keep_failed_days`` for a failed or killed run when set, else
  ``days``, counted from when it ended. With no age limit at all, ``keep_last`` alone keeps
  the newest ``K`` and picks the rest; with neither, the run is kept forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.hashing import parse_timestamp

ENDED = frozenset({"success", "failed", "killed"})


@dataclass(slots=True)
class RunFacts:
    """What retention and expunge need to know about one run."""

    run_id: str
    workflow: str
    created_at: str
    status: str = "pending"
    ended_at: str | None = None
    held: bool = False
    expunged: bool = False
    retention: Mapping[str, Any] | None = None
    #: The run's number in the scan's file references (:class:`~ledger.retention.facts.FileRefs`).
    ref_id: int = 0
    #: The stream's version and newest hash when scanned (a write since makes an expunge
    #: recorded from them conflict, and refuse).
    version: int = 0
    last_hash: str | None = None


def _limit_days(run: RunFacts, default_days: float | None) -> tuple[float | None, int | None]:
    rules = run.retention or {}
    days = rules.get("days", default_days if run.retention is None else None)
    if run.status in {"failed", "killed"} and rules.get("keep_failed_days") is not None:
        days = rules["keep_failed_days"]
    return days, rules.get("keep_last")


def expires(run: RunFacts, rank: int, *, now: datetime, default_days: float | None) -> bool:
    """Whether retention lets an ended, not expunged run go now, ``rank`` being its place
    (0: the newest) among the ended runs of its workflow that are not expunged."""
    if run.held:
        return False
    days, keep_last = _limit_days(run, default_days)
    if keep_last is not None and rank < keep_last:
        return False
    if days is None:
        return keep_last is not None
    assert run.ended_at is not None
    return parse_timestamp(run.ended_at) <= now - timedelta(days=days)


def pick_expired(runs: Iterable[RunFacts], *, now: datetime, default_days: float | None) -> list[str]:
    """The ids of the runs retention expunges now, oldest first (in memory: the rule that
    :meth:`ledger.retention.facts.RunsScan.pick` applies page by page)."""
    ended: dict[str, list[RunFacts]] = {}
    for run in runs:
        if run.status in ENDED and run.ended_at is not None and not run.expunged:
            ended.setdefault(run.workflow, []).append(run)
    picked: list[RunFacts] = []
    for group in ended.values():
        group.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)  # newest first
        picked += [
            run for rank, run in enumerate(group) if expires(run, rank, now=now, default_days=default_days)
        ]
    picked.sort(key=lambda r: (r.created_at, r.run_id))
    return [r.run_id for r in picked]
