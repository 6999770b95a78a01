"""Working directories of ended runs (SPEC section 11): the one a crash left between storing a
run's outputs and removing its directory goes when an executor starts; a running run's stays,
and ``RUNLEDGER_KEEP_RUN_DIRS=true`` keeps them all."""

from __future__ import annotations

from executor.cleanup import remove_finished_run_dirs
from ledger.service import Ledger
from ledger.settings import Settings
from tests.integration.retention.conftest import SECRET_DEFINITION, finish


def test_directories_of_ended_runs_left_by_a_crash_are_removed_and_others_kept(
    ledger: Ledger, settings: Settings
) -> None:
    ledger.register_workflow(SECRET_DEFINITION, principal="alice")
    source, _ = ledger.files.put_bytes(b"input")
    ended = finish(ledger, token=None, source=source, output=b"o")
    waiting = ledger.trigger(workflow="vault", parameters={"source": source}, principal="c").run_id
    for run_id in (ended, waiting, "not-a-run"):
        (settings.run_work_dir / run_id).mkdir(parents=True)
        (settings.run_work_dir / run_id / "left.txt").write_text("x")
    (settings.run_work_dir / ".logs" / ended).mkdir(parents=True)

    settings.keep_run_dirs = True
    assert remove_finished_run_dirs(ledger) == 0 and (settings.run_work_dir / ended).exists()
    settings.keep_run_dirs = False
    assert remove_finished_run_dirs(ledger) == 2
    assert (
        not (settings.run_work_dir / ended).exists()
        and not (settings.run_work_dir / ".logs" / ended).exists()
    )
    assert (settings.run_work_dir / waiting / "left.txt").exists()
    assert (settings.run_work_dir / "not-a-run").exists()
