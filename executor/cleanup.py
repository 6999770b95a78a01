"""Working directories of finished runs (SPEC section 11): removed once a run's outputs are
in the file store, unless ``RUNLEDGER_KEEP_RUN_DIRS=true``.

A run's execution removes its own directory when it ends (:mod:`executor.dag`); an executor
that died between recording the end and removing it leaves one behind, which
:func:`remove_finished_run_dirs` (called when an executor starts) removes: every directory
under the runs directory whose run the ledger says has ended.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import structlog

from ledger.errors import LedgerError
from ledger.service import Ledger

log = structlog.get_logger()


def remove_run_dir(ledger: Ledger, run_id: str) -> None:
    if not ledger.settings.keep_run_dirs:
        shutil.rmtree(ledger.settings.run_work_dir / run_id, ignore_errors=True)


def remove_finished_run_dirs(ledger: Ledger) -> int:
    """Remove the directories of ended runs left by a dead executor; how many went."""
    root: Path = ledger.settings.run_work_dir
    if ledger.settings.keep_run_dirs or not root.is_dir():
        return 0
    removed = 0
    for directory in [*root.iterdir(), *((root / ".logs").iterdir() if (root / ".logs").is_dir() else [])]:
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        try:
            ended = ledger.get_run(directory.name).is_terminal
        except LedgerError:  # not a run of this ledger: left alone
            continue
        if ended:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    if removed:
        log.info("run_dirs_removed", count=removed)
    return removed
