"""``runledger project`` as a real process: killed with SIGKILL in the middle of a catch-up, a
restarted one finishes the job with no event lost and none applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from tests.integration.projections.conftest import Driver

RUNLEDGER = str(Path(sys.executable).with_name("runledger"))


def start_project(settings: Settings, batch_size: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"RUNLEDGER_DATABASE_URL": settings.database_url, "RUNLEDGER_LOG_FORMAT": "json"}
    return subprocess.Popen(
        [RUNLEDGER, "project", "--batch-size", str(batch_size)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(views: ReadModels, predicate: str, timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        positions = {s["name"]: s["position"] for s in views.status()}
        lags = {s["name"]: s["lag"] for s in views.status()}
        if predicate == "started" and positions["audit"] > 60:
            return positions
        if predicate == "done" and set(lags.values()) == {0}:
            return positions
        time.sleep(0.005)
    raise AssertionError(f"projection process did not get {predicate} in time")


def test_a_projection_process_killed_mid_catch_up_resumes_without_loss_or_doubling(
    ledger: Ledger, driver: Driver, settings: Settings, views: ReadModels
) -> None:
    items = [f"item-{i}" for i in range(600)]
    batch = ledger.trigger_batch(
        workflow="etl", items=items, input_param="query", parallelism=3, principal="carol"
    )
    for run_id in batch.run_ids[:40]:
        ledger.cancel(run_id, principal="olga")
    newest = ledger.reader.max_position()

    process = start_project(settings, batch_size=10)
    try:
        killed_at = wait_for(views, "started")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert min(killed_at.values()) < newest  # it really was in the middle

    process = start_project(settings, batch_size=500)
    try:
        wait_for(views, "done")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    stats = views.stats()
    assert stats["total_runs"] == 600
    assert stats["by_status"]["killed"] == 40 and stats["by_status"]["pending"] == 560
    assert [len(views.audit(r)) for r in batch.run_ids[:40]] == [2] * 40
    assert {len(views.audit(r)) for r in batch.run_ids[40:]} == {1}
    page, _ = views.list_runs(limit=1000, params={"query": "item-7"})
    assert [r["run_id"] for r in page] == [batch.run_ids[7]]
    progress = views.batch_progress(batch.batch_id)
    assert progress is not None
    assert progress["progress"] == {"total_items": 600, "processed_items": 40, "failed_items": 40}
