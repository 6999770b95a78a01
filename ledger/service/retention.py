"""Sensitive parameters, legal holds and expunge (SPEC section 11): :class:`RetentionCommands`.

An expunge records ``Run.Expunged`` first (the decision, with the files it removes), then
destroys the run's key, names the files in the erased-files table, deletes them and the
run's working directories. A crash anywhere after the event leaves a run the ledger says is
expunged with something left over; :meth:`RetentionCommands.finish_expunged` (run by every
expunge and by ``retention apply``) removes it, so re-applying reaches the same result.
Nothing is recorded twice: expunging an expunged run answers what the first one did.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import structlog

from ledger.domain.run import Run
from ledger.domain.status import RunStatus
from ledger.errors import LedgerError
from ledger.hashing import parse_timestamp
from ledger.retention.facts import RunsScan, scan_runs
from ledger.retention.policy import RunFacts
from ledger.service.base import LedgerBase
from ledger.service.sealing import SealingBase

log = structlog.get_logger()
#: Threads that unlink a page's files.
UNLINKERS = 8


@dataclass(frozen=True, slots=True)
class Expunged:
    """What an expunge did; ``recorded`` is False when the run was expunged already."""

    run_id: str
    recorded: bool
    files_deleted: list[str]
    key_destroyed: bool


@dataclass
class Removed:
    """What expunges removed from outside the events table."""

    keys: int = 0
    files: int = 0
    dirs: int = 0


@dataclass
class RetentionOutcome:
    """What ``retention apply`` picked (and, unless a dry run, removed): the answers
    themselves unless they went to a callback, and how many there were."""

    picked: list[Expunged]
    removed: Removed
    dry_run: bool
    runs: int = 0
    recorded: int = 0

    def count(self, answer: Expunged) -> None:
        self.runs += 1
        self.recorded += int(answer.recorded)


class RetentionCommands(SealingBase):
    """Legal holds, expunge and retention."""

    # ---- legal holds --------------------------------------------------------------------
    def place_hold(self, run_id: str, *, principal: str, reason: str | None) -> bool:
        """True when a hold was placed now, False when one was on already."""
        run = self.get_run(run_id)
        placed = run.place_hold(by=principal, reason=reason, at=self.clock())
        if placed:
            self._save(run)
        return placed

    def release_hold(self, run_id: str, *, principal: str, reason: str | None) -> bool:
        run = self.get_run(run_id)
        released = run.release_hold(by=principal, reason=reason, at=self.clock())
        if released:
            self._save(run)
        return released

    # ---- expunge ------------------------------------------------------------------------
    def expunge(self, run_id: str, *, principal: str, reason: str | None) -> Expunged:
        """Expunge one run (409 when held or not ended); a no-op answer when expunged already."""
        self.get_run(run_id)  # 404 first, before the scan
        scan = scan_runs(self.settings)
        try:
            facts = scan.facts([run_id])
            return self._expunge_page([run_id], facts, scan, principal, reason, Removed(), scanned=False)[0]
        finally:
            scan.close()

    def _expunge_page(
        self,
        run_ids: list[str],
        facts: Mapping[str, RunFacts],
        scan: RunsScan,
        principal: str,
        reason: str | None,
        tally: Removed,
        *,
        scanned: bool,
    ) -> list[Expunged]:
        """Expunge a page of runs in one write (held or unfinished ones refuse, and nothing of
        the page is recorded), then remove what they leave: their keys, the files no live run
        names any more, their directories. With ``scanned``, each run is taken as the scan saw
        it instead of loaded again (a write since then makes the save conflict)."""
        with_keys = self.keys.has(run_ids)
        at = self.clock()
        answers: dict[str, Expunged] = {}
        changed: list[tuple[Run, RunFacts]] = []
        for run_id in run_ids:
            seen = facts.get(run_id)
            run = _as_scanned(seen) if scanned and seen is not None else self.get_run(run_id)
            if run.expunged:
                answers[run_id] = _first_answer(self, run)
                continue
            changed.append((run, seen or RunFacts(run_id, run.workflow, "")))
        counted = [f for _, f in changed if f.ref_id]
        files = scan.take_unreferenced(counted)  # these runs no longer count
        try:
            for run, _ in changed:
                deleted = files.get(run.id, [])
                key = run.id in with_keys
                run.expunge(by=principal, reason=reason, files_deleted=deleted, key_destroyed=key, at=at)
                answers[run.id] = Expunged(run.id, True, deleted, key)
            if changed:
                self._save(*(run for run, _ in changed))
        except BaseException:
            scan.restore(counted)  # nothing was recorded: they count again
            raise
        for run, seen in changed:
            seen.expunged = True
            self.run_cache.forget(run.id)
        if changed:  # one line a page: what was recorded
            log.info("runs_expunged", run_ids=[run.id for run, _ in changed], by=principal, reason=reason)
        # What the page leaves: the files just taken, and what a crash left of runs expunged before.
        before = [facts[r] for r in run_ids if r in facts and not answers[r].recorded]
        taken = [(sha, run_id) for run_id, shas in files.items() for sha in shas]
        page = [facts.get(r) or RunFacts(r, "", "", expunged=True) for r in run_ids]
        self.finish_expunged(page, scan, tally, files=itertools.chain(taken, scan.unreferenced(before)))
        return [answers[r] for r in run_ids]

    def finish_expunged(
        self,
        expunged: list[RunFacts],
        scan: RunsScan,
        tally: Removed,
        *,
        files: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Remove what expunged runs left: their keys, their ``files`` (by default each file
        of theirs no live run names), their working directories (each step is a no-op when
        done already)."""
        if not expunged:
            return
        tally.keys += self.keys.destroy(self.keys.has(r.run_id for r in expunged))
        counted = [r for r in expunged if r.ref_id]
        self._delete_files(scan.unreferenced(counted) if files is None else files, tally)
        self._remove_dirs(expunged, tally)
        scan.finished(counted)

    def _delete_files(self, files: Iterable[tuple[str, str]], tally: Removed) -> None:
        """Delete the stored files ``(sha256, run_id)`` that are still there: named erased
        first (one write), so a read of one answers 410, then unlinked."""
        root = str(self.files.root)  # the sha256s come from the scan, which checked them
        named = dict(files)  # one run that named each file is enough
        erased = [(sha, run_id) for sha, run_id in named.items() if os.path.exists(f"{root}/{sha[:2]}/{sha}")]
        if not erased:
            return
        self.keys.mark_erased(erased)
        # Unlinked side by side: a stored file's unlink waits on the file system's journal
        # (its blocks are freed), and the waits overlap (bench/retention.py measures it).
        with ThreadPoolExecutor(UNLINKERS, thread_name_prefix="unlink") as pool:
            list(pool.map(_unlink, (f"{root}/{sha[:2]}/{sha}" for sha, _ in erased)))
        tally.files += len(erased)
        log.debug("files_deleted", count=len(erased))

    def _remove_dirs(self, runs: Iterable[RunFacts], tally: Removed) -> None:
        work = str(self.settings.run_work_dir)
        for run in runs:
            for directory in (f"{work}/{run.run_id}", f"{work}/.logs/{run.run_id}"):
                if os.path.isdir(directory):
                    shutil.rmtree(directory, ignore_errors=True)
                    tally.dirs += 1

    # ---- retention ----------------------------------------------------------------------
    def apply_retention(
        self,
        *,
        now: datetime,
        dry_run: bool,
        principal: str = "retention",
        progress: Callable[[int, int], None] | None = None,
        each: Callable[[Expunged], None] | None = None,
    ) -> RetentionOutcome:
        """Expunge every run the retention rules pick, a page at a time, then finish every
        expunged run. Each answer goes to ``each`` as it is made (the outcome then keeps only
        the counts: memory stays flat however many runs go), else into ``outcome.picked``."""
        scan = scan_runs(self.settings)
        try:
            return self._apply(
                scan, now=now, dry_run=dry_run, principal=principal, progress=progress, each=each
            )
        finally:
            scan.close()

    def _apply(
        self,
        scan: RunsScan,
        *,
        now: datetime,
        dry_run: bool,
        principal: str,
        progress: Callable[[int, int], None] | None,
        each: Callable[[Expunged], None] | None,
    ) -> RetentionOutcome:
        total = scan.pick(now=now, default_days=self.settings.retention_days)
        outcome = RetentionOutcome([], Removed(), dry_run=dry_run)
        done = 0
        for page in scan.picked():
            if dry_run:
                files = scan.take_unreferenced(page)  # as if expunged: the next page sees them gone
                answers = [Expunged(r.run_id, False, files[r.run_id], False) for r in page]
            else:
                answers = self._expunge_retained(page, scan, principal, outcome.removed)
            for answer in answers:
                outcome.count(answer)
                if each is not None:
                    each(answer)
                else:
                    outcome.picked.append(answer)
            done += len(page)
            if progress is not None:
                progress(done, total)
        if not dry_run:
            # What expunges cut short (or run side by side) left: keys, orphaned files, directories.
            for expunged in scan.expunged_runs():
                self.finish_expunged(expunged, scan, outcome.removed)
        return outcome

    def _expunge_retained(
        self, page: list[RunFacts], scan: RunsScan, principal: str, tally: Removed
    ) -> list[Expunged]:
        facts = {r.run_id: r for r in page}
        try:
            return self._expunge_page(list(facts), facts, scan, principal, "retention", tally, scanned=True)
        except LedgerError:  # one held or changed meanwhile: the others one by one
            pass
        answers = []
        for run_id in facts:
            try:
                answers += self._expunge_page(
                    [run_id], facts, scan, principal, "retention", tally, scanned=False
                )
            except LedgerError as exc:  # the next pass sees it again
                log.warning("retention_skipped", run_id=run_id, reason=exc.detail)
        return answers


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _as_scanned(facts: RunFacts) -> Run:
    """The run as the scan saw it: enough of it for :meth:`Run.expunge` (its status, hold,
    expunge, version and newest hash), without reading its events again."""
    run = object.__new__(Run)
    run.__base_init__(facts.run_id, facts.version, parse_timestamp(facts.ended_at or facts.created_at))
    run._last_hash = facts.last_hash
    run.workflow = facts.workflow
    run.status = RunStatus(facts.status)
    run.held, run.expunged = facts.held, facts.expunged
    return run


def _first_answer(ledger: LedgerBase, run: Run) -> Expunged:
    """The answer of the expunge that was recorded (from the run's own events)."""
    for event in reversed(ledger.stream_events(run.id)):
        if event.type == "Run.Expunged":
            return Expunged(
                run.id,
                False,
                list(event.data.get("files_deleted") or []),
                bool(event.data.get("key_destroyed")),
            )
    return Expunged(run.id, False, [], False)  # pragma: no cover - run.expunged says there is one
