"""Views take any string the ledger already holds: events written straight through the Ledger
service (no API in front to refuse them) with NUL characters in parameters, principals, worker
reports and file paths are projected, followed past and rebuilt, on SQLite and PostgreSQL
(whose text cannot hold NUL: a view stores ``projections.db.NUL_STAND_IN`` instead)."""

from __future__ import annotations

from ledger.service import Ledger
from projections import ReadModels
from projections.db import NUL_STAND_IN, connect, text_safe
from projections.runner import ProjectionRunner
from tests.builders import eventually, reports
from tests.integration.projections.conftest import Driver, sha


def nul_history(ledger: Ledger, driver: Driver) -> str:
    """A run whose every free-text field holds a NUL, already stored."""
    run_id = driver.trigger("a\x00b", principal="car\x00ol")
    ledger.claim(run_id, worker_id="w1")
    ledger.report(
        run_id,
        worker_id="w1",
        reports=reports(
            {"type": "task_started", "task": "extract", "host": "ho\x00st"},
            {
                "type": "task_finished",
                "task": "extract",
                "exit_code": 1,
                "host": "ho\x00st",
                "error": "bo\x00om",
                "outputs": [{"path": "da\x00ta.txt", "sha256": sha("a"), "size": 3}],
                "output_vars": {"k\x00ey": "v\x00alue"},
            },
            {"type": "run_failed", "error": "extract\x00 failed"},
        ),
    )
    return run_id


def test_text_safe_replaces_nul_only_in_strings_and_keeps_clean_rows_as_they_are() -> None:
    clean = ("a", 1, None, b"\x00")
    assert text_safe(clean) is clean
    assert text_safe(("a\x00b", 2, b"\x00")) == (f"a{NUL_STAND_IN}b", 2, b"\x00")


def test_a_view_fed_stored_nul_strings_keeps_following_and_rebuilds(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    poisoned = nul_history(ledger, driver)
    runner.catch_up()
    summary = views.run_summary(poisoned)
    assert summary is not None and summary["status"] == "failed"
    assert summary["triggered_by"] == f"car{NUL_STAND_IN}ol"
    assert [e["action"] for e in views.audit(poisoned)] == ["triggered", "started", "failed"]

    runner.start()  # following on: a run after the poisoned one still gets projected
    later = driver.trigger("fine")
    driver.succeed(later)
    eventually(lambda: (views.run_summary(later) or {}).get("status") == "success")
    newest = ledger.reader.max_position()
    eventually(lambda: all(s["position"] == newest and s["state"] == "live" for s in views.status()))
    runner.stop()

    assert runner.rebuild() == ["summaries", "stats", "lineage", "audit", "marquez"]
    assert all(s["lag"] == 0 for s in views.status())
    assert (views.run_summary(poisoned) or {}).get("triggered_by") == f"car{NUL_STAND_IN}ol"
    assert views.stats()["total_runs"] == 2


def test_no_view_table_holds_a_nul_after_projecting_one(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner
) -> None:
    nul_history(ledger, driver)
    runner.catch_up()
    conn = connect(runner.settings)
    try:
        if conn.is_postgres:
            names = [
                r["n"]
                for r in conn.all("SELECT tablename AS n FROM pg_tables WHERE schemaname = current_schema()")
            ]
        else:
            names = [r["n"] for r in conn.all("SELECT name AS n FROM sqlite_master WHERE type = 'table'")]
        seen_stand_in = False
        for name in (n for n in names if n.startswith("rl_")):
            for row in conn.all(f"SELECT * FROM {name}"):
                for value in row.values():
                    assert not (isinstance(value, str) and "\x00" in value), (name, row)
                    seen_stand_in |= isinstance(value, str) and NUL_STAND_IN in value
        assert seen_stand_in
    finally:
        conn.close()
