"""The benchmarks' bulk population writes real events: byte for byte what the aggregates and the
Ledger service store for the same runs, hash-chained so that verification passes, and read by
the projections like any other events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.bulk import RunWriter, bulk_populate
from bench.populate import EVENTS_PER_RUN, build_run, populate, register_workflows, run_facts
from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.settings import Settings
from projections import ReadModels
from projections.runner import ProjectionRunner

BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_bulk_rows_are_the_stored_events_of_the_aggregate_path(ledger: Ledger) -> None:
    definitions = register_workflows(ledger)
    writer = RunWriter(
        {name: (a.version, a.definition_hash, a.definition) for name, a in definitions.items()},
        ledger.settings.lease_seconds,
    )
    expected = []
    failed = 0
    for seq in range(0, 60, 3):  # chained and unchained runs, one that fails (seq 39)
        facts = run_facts(seq)
        at = BASE + timedelta(milliseconds=seq)
        failed += facts.failed
        writer.add(facts, at)
        run = build_run(facts, definitions[facts.workflow], at, ledger.lease_expiry(at))
        for event in run.collect_events():
            stored = ledger.mapper.to_stored_event(event)
            expected.append((stored.originator_id, stored.originator_version, stored.topic, stored.state))
    assert failed == 1
    assert len(writer.rows) == len(expected) == 20 * EVENTS_PER_RUN
    assert writer.rows == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bulk_populated_ledger_verifies_and_projects(settings: Settings, workers: int) -> None:
    ledger = Ledger(settings)
    try:
        service = populate(ledger, 5, progress=False, clock=lambda seq: BASE + timedelta(milliseconds=seq))
    finally:
        ledger.close()
    bulk = bulk_populate(settings, 35, start=5, base=BASE, workers=workers, chunk=4, progress=False)
    assert bulk["events"] == 35 * EVENTS_PER_RUN
    run_ids = service["run_ids"] + bulk["run_ids"]

    report = verify_ledger(settings)
    assert report.ok, [str(p) for p in report.problems[:5]]
    assert report.events_checked == 40 * EVENTS_PER_RUN + 20  # + 10 workflows x 2 events

    ProjectionRunner(settings).rebuild()
    views = ReadModels(settings)
    try:
        summaries = [views.run_summary(run_id) for run_id in run_ids]
    finally:
        views.close()
    statuses = [s["status"] for s in summaries if s is not None]
    assert statuses == ["failed" if seq % 20 == 19 else "success" for seq in range(40)]
