"""SIGKILL in the middle of ``runledger retention apply`` (a real process), then apply
again, on both backends: every expired run is expunged exactly once, its key and unique
files are gone (the files its event names), a file a live run still reads stays, nothing
acknowledged is lost, and ``verify`` passes."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.rawstore import RawStore
from tests.e2e import forked

RUNS = 120
PAGE = 50  # runs a pass expunges per write: three pages, the kill lands after the first is recorded
DEFINITION = {
    "name": "bulk",
    "params": {"input": {"type": "file"}, "token": {"type": "string", "sensitive": True}},
    "tasks": [{"name": "t", "command": ["true"]}],
}


def count(settings: Settings, sql: str) -> int:
    raw = RawStore(settings)
    with raw.connect() as conn:
        return int(conn.execute(raw.sql(sql)).fetchone()[0])


def expunged_events(settings: Settings) -> int:
    table = raw_table(settings)
    return count(settings, f"SELECT COUNT(*) FROM {table} WHERE topic LIKE '%:Run.Expunged'")


def raw_table(settings: Settings) -> str:
    raw = RawStore(settings)
    return raw.rows.events.table


def test_a_retention_pass_killed_midway_is_finished_by_the_next_one(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    old = Ledger(settings, clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    old.register_workflow(DEFINITION, principal="alice")
    shared, _ = old.files.put_bytes(b"read by an old run and a new one")
    inputs = [old.files.put_bytes(f"input {i}".encode())[0] for i in range(RUNS - 1)] + [shared]
    batch = old.trigger_batch(
        workflow="bulk",
        items=inputs,
        input_param="input",
        parallelism=5,
        parameters={"token": "k"},
        principal="c",
    )
    for run_id in batch.run_ids:
        old.cancel(run_id, principal="op")
    old.close()
    live = ledger.trigger(workflow="bulk", parameters={"input": shared, "token": "new"}, principal="c").run_id
    events_before = ledger.reader.max_position() + 1
    keys_table = ledger.keys.keys
    assert count(settings, f"SELECT COUNT(*) FROM {keys_table}") == RUNS + 1

    env = os.environ | {
        "RUNLEDGER_DATABASE_URL": settings.database_url,
        "RUNLEDGER_DATA_DIR": str(settings.state_dir),
        "RUNLEDGER_RETENTION_DAYS": "1",
        "RUNLEDGER_RETENTION_PAGE_RUNS": str(PAGE),
        "RUNLEDGER_LOG_LEVEL": "warning",
    }
    # Forked from a process that imported the CLI already (tests/e2e/forked.py): a real process
    # of its own, SIGKILLed as any, without seconds of imports per start.
    process = forked.start(
        ["retention", "apply"], env=env, cwd=tmp_path, stdout=tmp_path / "out", stderr=tmp_path / "err"
    )
    deadline = time.monotonic() + 120
    while expunged_events(settings) == 0 and process.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    process.join()
    assert process.exitcode == -signal.SIGKILL, "the pass ended before it was killed"
    partly = expunged_events(settings)
    left_keys = count(settings, f"SELECT COUNT(*) FROM {keys_table}")
    left_files = sum(ledger.files.exists(sha) for sha in inputs)
    assert partly > 0 and (partly < RUNS or left_keys > 1 or left_files > 1)  # killed midway

    code, _, err = forked.run(["retention", "apply"], env=env, cwd=tmp_path, timeout=300)
    assert code == 0, err
    assert expunged_events(settings) == RUNS  # each expired run once, none twice
    assert ledger.reader.max_position() + 1 == events_before + RUNS  # nothing lost, nothing doubled
    assert count(settings, f"SELECT COUNT(*) FROM {keys_table}") == 1  # only the live run's key
    assert ledger.keys.get(live) is not None
    assert [sha for sha in inputs if ledger.files.exists(sha)] == [shared]  # the live run reads it
    assert all(ledger.get_run(r).expunged for r in batch.run_ids) and not ledger.get_run(live).expunged
    recorded = [  # what the events say was removed is what is gone, each file once
        sha
        for run_id in batch.run_ids
        for event in ledger.stream_events(run_id)
        if event.type == "Run.Expunged"
        for sha in event.data["files_deleted"]
    ]
    assert sorted(recorded) == sorted(set(inputs) - {shared})
    assert verify_ledger(settings).ok
    code, out, _ = forked.run(["retention", "apply", "--dry-run"], env=env, cwd=tmp_path, timeout=300)
    assert code == 0 and out == ""
