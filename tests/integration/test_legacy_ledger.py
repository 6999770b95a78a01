"""A ledger written before the package layout of issue 15 still opens, verifies, projects and
takes new events, on both backends.

The fixtures were written by the code at commit 67a6436 (``tests/fixtures/make_legacy_ledger.py``):
their rows carry that code's module topics (``ledger.run:Run.Triggered``), which now resolve
through the registrations in :mod:`ledger.domain.topics`. Remove one and this test fails.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.domain.openlineage import parse_run_event
from ledger.errors import IdempotencyKeyReused
from ledger.integrity.merkle import leaf_hash, root_from_leaf_hashes
from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.runner import ProjectionRunner
from projections.views import marquez_graph as mg
from projections.views import marquez_queries as mq
from tests.conftest import PG_ADMIN_URL, postgres_or_skip

FIXTURES = Path(__file__).parent.parent / "fixtures"
#: The Merkle root over each fixture's 33 events: event hashes must never change.
ROOTS = {
    "sqlite": "d8dbd25b1595c0d648325d590d0526cc37bb2e0ea67c0fd2d9d2432c4806a65b",
    "postgres": "4e35237886d44491dab19b1ad3d3ac9e8ac721a2374e4603850ea2d66b1ad26c",
}
OLD_MODULES = {"ledger.run", "ledger.workflow", "ledger.idempotency"}


@pytest.fixture
def legacy_settings(backend: str, tmp_path: Path) -> Iterator[Settings]:
    if backend == "sqlite":
        shutil.copy(FIXTURES / "legacy-v0.1.sqlite", tmp_path / "ledger.db")
        yield Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}", data_dir=tmp_path / "s")
        return
    postgres_or_skip()
    schema = f"rl_legacy_{uuid.uuid4().hex[:12]}"
    script = (FIXTURES / "legacy-v0.1.pg.sql").read_text().replace("legacy_fixture", schema)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(script)
    try:
        yield Settings(database_url=f"{PG_ADMIN_URL}?schema={schema}", data_dir=tmp_path / "s")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_ledger_written_before_the_layout_change_verifies_reads_projects_and_appends(
    backend: str, legacy_settings: Settings
) -> None:
    ledger = Ledger(legacy_settings)
    try:
        events = list(ledger.reader.iterate())
        assert len(events) == 33
        assert {e.stream for e in events if e.type == "Run.Triggered"}
        topics_seen = {e.type for e in events}
        assert {
            "Run.Killed",
            "Run.TaskFinished",
            "Run.LineageReported",
            "Batch.Created",
            "IdempotencyKey.Claimed",
            "DefinitionIndex.Indexed",
        } <= topics_seen
        assert all(e.recompute_hash() == e.hash for e in events)
        root = root_from_leaf_hashes([leaf_hash(bytes.fromhex(e.hash)) for e in events]).hex()
        assert root == ROOTS[backend]
        assert verify_ledger(legacy_settings).ok

        # Every stored aggregate loads through the repository (old topics resolve).
        runs = [e.stream for e in events if e.type == "Run.Triggered"]
        statuses = sorted(ledger.get_run(run_id).status.value for run_id in runs)
        assert statuses == [
            "failed",
            "killed",
            "killed",
            "pending",
            "pending",
            "pending",
            "success",
            "success",
        ]
        workflow = ledger.get_workflow("legacy_etl")
        assert [v.version for v in workflow.versions] == [1, 2]
        # (SPEC 9) everything written before workspaces is in ``default``, with no migration
        assert workflow.workspace == "default" and ledger.get_workflow("legacy_etl", "default") is workflow
        assert {ledger.get_run(run_id).workspace for run_id in runs} == {"default"}
        assert {ledger.run_workspace(run_id) for run_id in runs} == {"default"}
        batch_id = next(e.stream for e in events if e.type == "Batch.Created")
        assert len(ledger.get_batch(batch_id.removeprefix("batch:")).run_ids) == 2

        # The read side projects it from event 0.
        runner = ProjectionRunner(legacy_settings)
        try:
            runner.catch_up()
        finally:
            runner.stop()
        views = ReadModels(legacy_settings)
        try:
            listed, _ = views.list_runs(limit=100)
            assert len(listed) == 8
            in_default, _ = views.list_runs(limit=100, workspace="default")
            assert in_default == listed and {r["workspace"] for r in listed} == {"default"}
            assert views.list_runs(limit=100, workspace="red")[0] == []
            assert views.stats(workspace="default")["total_runs"] == 8
            summary = views.run_summary(runs[0])
            assert summary is not None and summary["status"] == "success"
            assert summary["outputs"] == {"extract": {"n": "3"}, "load": {}}
            assert views.audit(runs[0])[0]["action"] == "triggered"
        finally:
            views.close()

        # New events go on the old streams and new ones, under the new topics.
        again = ledger.trigger(
            workflow="legacy_etl", parameters={"query": "a"}, principal="carol", idempotency_key="key-1"
        )
        assert again.run_id == runs[0] and not again.created
        with pytest.raises(IdempotencyKeyReused):  # the same key with other parameters
            ledger.trigger(
                workflow="legacy_etl", parameters={"query": "new"}, principal="carol", idempotency_key="key-1"
            )
        fresh = ledger.trigger(workflow="legacy_etl", parameters={"query": "new"}, principal="carol")
        assert ledger.claim(fresh.run_id, worker_id="w9") is not None
        pending = next(r for r in runs if ledger.get_run(r).status.value == "pending")
        ledger.cancel(pending, principal="ops")
        assert ledger.get_run(pending).status.value == "killed"
        report = verify_ledger(legacy_settings)
        assert report.ok and report.events_checked == 33 + 3
    finally:
        ledger.close()


LEGACY_OL_RUN = "0193a6c0-0000-7000-8000-000000000001"


def test_an_openlineage_run_written_before_issue_24_keeps_its_id_and_workflow_and_takes_new_events(
    backend: str, legacy_settings: Settings
) -> None:
    """Upgrading keeps an OpenLineage run of the old code readable: the same run id and
    workflow, its job and datasets in Marquez's read model, and a later event of the same
    job lands on the same run (a FAIL after its COMPLETE is shown as late)."""
    ledger = Ledger(legacy_settings)
    try:
        late = ledger.record_openlineage(
            parse_run_event(
                {
                    "eventType": "FAIL",
                    "eventTime": "2026-12-03T10:00:00Z",
                    "producer": "https://example.com/legacy",
                    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                    "run": {"runId": LEGACY_OL_RUN, "facets": {}},
                    "job": {"namespace": "legacy", "name": "job", "facets": {}},
                }
            ),
            principal="lineage",
        )
        assert (late.run_id, late.recorded, late.status) == (LEGACY_OL_RUN, True, "success")
    finally:
        ledger.close()
    runner = ProjectionRunner(legacy_settings)
    try:
        runner.catch_up()
    finally:
        runner.stop()
    views = ReadModels(legacy_settings)
    try:
        summary = views.run_summary(LEGACY_OL_RUN)
        assert summary is not None
        assert (summary["workflow"], summary["status"]) == ("legacy/job", "success")
        assert [e["event_type"] for e in summary["late_events"]] == ["FAIL"]
        job = views.marquez(lambda c, t: mq.job(c, t, "default", "legacy", "job"))
        assert job is not None and job["latestRun"]["id"] == LEGACY_OL_RUN
        graph = views.marquez(lambda c, t: mg.lineage(c, t, "default", "dataset:db:in", 1))
        assert graph is not None
        assert {n["id"] for n in graph["graph"]} == {"dataset:db:in", "job:legacy:job", "dataset:db:out"}
    finally:
        views.close()
