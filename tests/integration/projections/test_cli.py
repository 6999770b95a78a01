"""``runledger projections status|rebuild`` as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ledger.settings import Settings
from projections import ReadModels
from projections.runner import ProjectionRunner
from tests.integration.projections.conftest import Driver

RUNLEDGER = str(Path(sys.executable).with_name("runledger"))


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"RUNLEDGER_DATABASE_URL": settings.database_url}
    return subprocess.run(
        [RUNLEDGER, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_rebuild_swaps_in_a_new_generation_and_status_reports_it(
    driver: Driver, runner: ProjectionRunner, settings: Settings, views: ReadModels
) -> None:
    run_id = driver.trigger("cli")
    runner.catch_up()
    rebuilt = cli(settings, "projections", "rebuild", "summaries")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt summaries" in rebuilt.stderr
    status = cli(settings, "projections", "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert set(rows) == {"summaries", "stats", "lineage", "audit", "marquez"}
    assert rows["summaries"]["lag"] == 0 and rows["summaries"]["state"] == "live"
    assert views.run_summary(run_id) is not None


def test_rebuilding_an_unknown_view_is_bad_usage(tmp_path: Path) -> None:
    result = cli(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"), "projections", "rebuild", "nope")
    assert result.returncode == 2
    assert "no projection 'nope'" in result.stderr
