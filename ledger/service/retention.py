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
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from ledger.domain.run import Run
from ledger.domain.status import RunStatus
from ledger.errors import LedgerError
from ledger.hashing import parse_timestamp
from ledger.retention.facts import FileRefs, scan_runs
from ledger.retention.policy import RunFacts, pick_expired
from ledger.service.base import LedgerBase
from ledger.service.sealing import SealingBase

log = structlog.get_logger()
#: Runs expunged per write (one save, one key DELETE, one erased-files INSERT).
CHUNK = 500


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


@dataclass(frozen=True)
class RetentionOutcome:
    """What ``retention apply`` picked (and, unless a dry run, removed)."""

    picked: list[Expunged]
    removed: Removed
    dry_run: bool


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
        runs, refs = scan_runs(self.settings)
        try:
            return self.expunge_runs([run_id], runs, refs, principal=principal, reason=reason)[0]
        finally:
            refs.close()

    def expunge_runs(
        self,
        run_ids: Iterable[str],
        runs: Mapping[str, RunFacts],
        refs: FileRefs,
        *,
        principal: str,
        reason: str | None,
        tally: Removed | None = None,
        scanned: bool = False,
    ) -> list[Expunged]:
        """Expunge ``run_ids`` in chunks (one write each); held or unfinished ones refuse.
        With ``scanned``, each run is taken as the scan saw it instead of loaded again (a
        write since then makes the chunk's save conflict, and the caller retries one by one)."""
        tally = tally if tally is not None else Removed()
        done: list[Expunged] = []
        wanted = list(run_ids)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            done += self._expunge_chunk(chunk, runs, refs, principal, reason, tally, scanned)
        return done

    def _expunge_chunk(
        self,
        run_ids: list[str],
        runs: Mapping[str, RunFacts],
        refs: FileRefs,
        principal: str,
        reason: str | None,
        tally: Removed,
        scanned: bool,
    ) -> list[Expunged]:
        with_keys = self.keys.has(run_ids)
        at = self.clock()
        answers: list[Expunged] = []
        changed: list[tuple[Run, RunFacts]] = []
        try:
            for run_id in run_ids:
                facts_seen = runs.get(run_id)
                run = _as_scanned(facts_seen) if scanned and facts_seen is not None else self.get_run(run_id)
                if run.expunged:
                    answers.append(_first_answer(self, run))
                    continue
                facts = runs.get(run_id) or RunFacts(run_id, run.workflow, "")
                files = refs.unique_to(facts)
                key = run_id in with_keys
                run.expunge(by=principal, reason=reason, files_deleted=files, key_destroyed=key, at=at)
                refs.expunged(facts)  # the next run of the chunk no longer counts this one
                changed.append((run, facts))
                answers.append(Expunged(run_id, True, files, key))
            if changed:
                self._save(*(run for run, _ in changed))
        except BaseException:
            for _, facts in changed:  # nothing was recorded: they count again
                refs.restore(facts)
            raise
        for run, facts in changed:
            facts.expunged = True
            self.run_cache.forget(run.id)
            log.info("run_expunged", run_id=run.id, by=principal, reason=reason)
        leftovers = [runs.get(a.run_id) or RunFacts(a.run_id, "", "", expunged=True) for a in answers]
        self.finish_expunged(leftovers, refs, tally)
        return answers

    def finish_expunged(self, expunged: Iterable[RunFacts], refs: FileRefs, tally: Removed) -> None:
        """Remove what expunged runs left: their keys, the files no live run names, their
        working directories (each step is a no-op when done already)."""
        runs = list(expunged)
        if not runs:
            return
        tally.keys += self.keys.destroy(self.keys.has(r.run_id for r in runs))
        self._delete_files(((sha, run.run_id) for run in runs for sha in refs.unreferenced(run)), tally)
        self._remove_dirs(runs, tally)

    def _delete_files(self, files: Iterable[tuple[str, str]], tally: Removed) -> None:
        """Delete the stored files ``(sha256, run_id)`` that are still there."""
        root = str(self.files.root)  # the sha256s come from the scan, which checked them
        erased = [(sha, run_id) for sha, run_id in files if os.path.exists(f"{root}/{sha[:2]}/{sha}")]
        for start in range(0, len(erased), CHUNK * 10):
            part = erased[start : start + CHUNK * 10]
            self.keys.mark_erased(part)  # before the files go: a read of one then answers 410
            for sha, run_id in part:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{root}/{sha[:2]}/{sha}")
                tally.files += 1
                log.debug("file_deleted", sha256=sha, run_id=run_id)

    def _remove_dirs(self, runs: Iterable[RunFacts], tally: Removed) -> None:
        for run in runs:
            for directory in (
                self.settings.run_work_dir / run.run_id,
                self.settings.run_work_dir / ".logs" / run.run_id,
            ):
                if directory.exists():
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
    ) -> RetentionOutcome:
        """Expunge every run the retention rules pick, then finish every expunged run."""
        runs, refs = scan_runs(self.settings)
        try:
            return self._apply(runs, refs, now=now, dry_run=dry_run, principal=principal, progress=progress)
        finally:
            refs.close()

    def _apply(
        self,
        runs: Mapping[str, RunFacts],
        refs: FileRefs,
        *,
        now: datetime,
        dry_run: bool,
        principal: str,
        progress: Callable[[int, int], None] | None,
    ) -> RetentionOutcome:
        picked = pick_expired(runs.values(), now=now, default_days=self.settings.retention_days)
        tally = Removed()
        if dry_run:
            preview = []
            for run_id in picked:
                facts = runs[run_id]
                preview.append(Expunged(run_id, False, refs.unique_to(facts), False))
                refs.expunged(facts)
            return RetentionOutcome(preview, tally, dry_run=True)
        done: list[Expunged] = []
        for start in range(0, len(picked), CHUNK):
            chunk = picked[start : start + CHUNK]
            try:
                done += self.expunge_runs(
                    chunk, runs, refs, principal=principal, reason="retention", tally=tally, scanned=True
                )
            except LedgerError:  # one held or changed meanwhile: the others one by one
                for run_id in chunk:
                    try:
                        done += self.expunge_runs(
                            [run_id], runs, refs, principal=principal, reason="retention", tally=tally
                        )
                    except LedgerError as exc:  # the next pass sees it again
                        log.warning("retention_skipped", run_id=run_id, reason=exc.detail)
            if progress is not None:
                progress(min(start + CHUNK, len(picked)), len(picked))
        # What expunges cut short (or run side by side) left: keys, orphaned files, directories.
        expunged = [r for r in runs.values() if r.expunged]
        tally.keys += self.keys.destroy(self.keys.has(r.run_id for r in expunged))
        self._delete_files(refs.orphans(), tally)
        self._remove_dirs(expunged, tally)
        return RetentionOutcome(done, tally, dry_run=False)


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
