"""The audit trail names who recorded a reused task, and a batch reports ``killed`` and
per-item results: real events through the Ledger service, folded by the real views."""

from __future__ import annotations

from ledger.service import Ledger
from projections import ReadModels
from projections.runner import ProjectionRunner
from tests.builders import reports
from tests.integration.projections.conftest import Driver, sha


def test_a_reused_task_is_audited_with_the_worker_that_recorded_it(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    first = driver.trigger("original")
    driver.succeed(first, produced=sha("a"))
    resumed = ledger.resume(first, from_task="load", principal="olga").run_id
    ledger.claim(resumed, worker_id="w9")
    reused = {"type": "task_reused", "task": "extract", "source_run_id": first}
    ledger.report(resumed, worker_id="w9", reports=reports(reused))
    runner.catch_up()
    entries = views.audit(resumed)
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("olga", "triggered"),
        ("w9", "started"),
        ("w9", "task_reused"),
    ]


def test_a_batch_with_a_killed_item_and_no_failed_one_is_killed_with_per_item_results(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    batch = ledger.trigger_batch(
        workflow="etl", items=["a", "b"], input_param="query", parallelism=2, principal="carol"
    )
    driver.succeed(batch.run_ids[0])
    ledger.cancel(batch.run_ids[1], principal="olga", reason="not needed")
    runner.catch_up()
    progress = views.batch_progress(batch.batch_id)
    assert progress is not None
    assert progress["status"] == "killed"
    assert progress["progress"] == {"total_items": 2, "processed_items": 2, "failed_items": 1}
    assert views.batch_statuses(batch.batch_id) == {batch.run_ids[0]: "success", batch.run_ids[1]: "killed"}
