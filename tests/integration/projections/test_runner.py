"""The projection runner on a real SQLite file and a real PostgreSQL schema: catch-up, live
following, a crash between the rows and the commit, rebuild and schema-version bumps."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.event_record import EventRecord
from projections import ReadModels
from projections import state as st
from projections.db import Connection, connect, read_events
from projections.runner import ProjectionRunner, apply_batch, default_views
from projections.view import Tables, View
from projections.views.audit import AuditView
from projections.views.lineage import LineageView
from projections.views.stats import StatsView
from projections.views.summaries import SummariesView
from tests.builders import eventually
from tests.integration.projections.conftest import Driver, sha


def dump(settings: Settings, view: View) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the view's live tables, in a stable order."""
    conn = connect(settings)
    try:
        pointer = st.read_pointer(conn, view.name)
        assert pointer is not None
        return {
            table: sorted(tuple(row.values()) for row in conn.all(f"SELECT * FROM {pointer.live(table)}"))
            for table in view.table_names
        }
    finally:
        conn.close()


def index_names(settings: Settings, prefix: str) -> set[str]:
    conn = connect(settings)
    try:
        if conn.is_postgres:
            rows = conn.all("SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()")
        else:
            rows = conn.all("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {
            r["name"].removeprefix(prefix)
            for r in rows
            if r["name"].startswith(prefix) and ("_by_" in r["name"] or r["name"].endswith("_key"))
        }
    finally:
        conn.close()


def positions(settings: Settings) -> dict[str, int]:
    conn = connect(settings)
    try:
        result = {}
        for view in default_views():
            pointer = st.read_pointer(conn, view.name)
            assert pointer is not None
            position = st.position_of(conn, pointer.live)
            assert position is not None
            result[view.name] = position
        return result
    finally:
        conn.close()


def some_history(driver: Driver) -> list[str]:
    first = driver.trigger("a")
    driver.succeed(first, produced=sha("a"), extract_attempts=2)
    second = driver.trigger("b")
    driver.succeed(second, consumed=sha("a"))
    third = driver.trigger("c")
    driver.fail(third)
    fourth = driver.trigger("d")
    driver.ledger.cancel(fourth, principal="operator-olga")
    return [first, second, third, fourth]


def test_catch_up_from_zero_projects_every_run_and_reaches_lag_zero(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    runs = some_history(driver)
    runner.catch_up()
    assert [views.run_summary(r)["status"] for r in runs] == [  # type: ignore[index]
        "success",
        "success",
        "failed",
        "killed",
    ]
    newest = ledger.reader.max_position()
    assert {s["name"]: (s["position"], s["lag"], s["state"]) for s in views.status()} == {
        name: (newest, 0, "live") for name in ("summaries", "stats", "lineage", "audit", "marquez")
    }
    assert views.stats()["total_runs"] == 4


def test_events_a_view_ignores_still_advance_its_position(
    ledger: Ledger, driver: Driver, runner: ProjectionRunner
) -> None:
    # Only workflow registrations so far: no view has anything to write, all must move on.
    runner.catch_up()
    assert set(positions(runner.settings).values()) == {ledger.reader.max_position()}


def test_a_started_runner_follows_new_events_as_they_are_appended(
    driver: Driver, runner: ProjectionRunner, views: ReadModels
) -> None:
    runner.start()
    run_id = driver.trigger("live")
    eventually(lambda: views.run_summary(run_id) is not None)
    driver.succeed(run_id)
    eventually(lambda: (views.run_summary(run_id) or {}).get("status") == "success")
    eventually(lambda: [e["action"] for e in views.audit(run_id)] == ["triggered", "started", "succeeded"])


def test_events_written_while_a_following_runner_lingers_go_in_one_batch(
    settings: Settings,
    driver: Driver,
) -> None:
    """On PostgreSQL a notification wakes the runner, which waits ``linger`` for more events
    before reading; on SQLite the poll interval batches the same way. Either way events that
    arrive close together cost one batch, not one each."""
    runner = ProjectionRunner(settings, linger=0.5, poll_interval=0.5)
    batches: list[int] = []
    step = runner.step

    def counting_step() -> int:
        moved = step()
        if moved:
            batches.append(moved)
        return moved

    runner.step = counting_step  # type: ignore[method-assign]
    try:
        runner.catch_up()
        runner.start()
        time.sleep(0.6)  # caught up and waiting
        batches.clear()
        for name in ("a", "b", "c"):  # 3 triggers, 3 events, within the linger
            driver.trigger(name)
            time.sleep(0.05)
        eventually(lambda: sum(batches) >= 3)
        assert len(batches) <= 2  # one wait may see the first event alone at most
        assert batches[-1] >= 2
    finally:
        runner.stop()


def test_projection_connections_do_not_wait_for_the_wal_flush(settings: Settings) -> None:
    """Views are derived: their commits need not wait for the disk (a crash loses rows and
    position together, and the runner applies those events again)."""
    conn = connect(settings)
    try:
        if conn.is_postgres:
            assert conn.one("SHOW synchronous_commit")["synchronous_commit"] == "off"  # type: ignore[index]
        else:
            assert conn.one("PRAGMA synchronous")["synchronous"] == 1  # type: ignore[index]
    finally:
        conn.close()


class CrashingAudit(AuditView):
    """Writes its rows for the second batch, then dies before the commit (again on each try:
    the runner retries a failed step's views one transaction each)."""

    batches = 0

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        super().apply(conn, t, events)
        CrashingAudit.batches += 1
        if CrashingAudit.batches >= 2:
            raise RuntimeError("injected crash between the view's rows and its commit")


def test_a_crash_between_the_rows_and_the_commit_neither_loses_nor_doubles_events(
    ledger: Ledger, driver: Driver, settings: Settings, views: ReadModels
) -> None:
    runs = some_history(driver)
    CrashingAudit.batches = 0
    crashing = ProjectionRunner(
        settings, batch_size=6, views=[SummariesView(), StatsView(), LineageView(), CrashingAudit()]
    )
    crashing.step()
    with pytest.raises(RuntimeError, match="injected crash"):
        crashing.step()
    crashing.stop()
    at = positions(settings)
    assert at["audit"] < at["summaries"]  # the others committed the batch the audit lost

    restarted = ProjectionRunner(settings, batch_size=6)
    restarted.catch_up()
    restarted.stop()
    audits = {r: [e["action"] for e in views.audit(r)] for r in runs}
    assert audits == {
        runs[0]: ["triggered", "started", "succeeded"],
        runs[1]: ["triggered", "started", "succeeded"],
        runs[2]: ["triggered", "started", "failed"],
        runs[3]: ["triggered", "killed"],
    }
    stats = views.stats()
    assert stats["total_runs"] == 4
    assert stats["by_status"] == {
        "pending": 0,
        "running": 0,
        "waiting": 0,
        "success": 2,
        "failed": 1,
        "killed": 1,
    }
    assert set(positions(settings).values()) == {ledger.reader.max_position()}


class RefusingStats(StatsView):
    """A view that cannot apply any batch (a bug in its fold)."""

    name: ClassVar[str] = "refusing"

    def apply(self, conn: Connection, t: Tables, events: list[EventRecord]) -> None:
        super().apply(conn, t, events)
        raise RuntimeError("this view refuses every batch")


def test_one_view_refusing_its_batch_holds_back_no_other_view(
    ledger: Ledger, driver: Driver, settings: Settings, views: ReadModels
) -> None:
    """A step applies every view's batch in one transaction; when that fails, each view in a
    transaction of its own: the others move on, the refusing one stays where it was."""
    some_history(driver)
    runner = ProjectionRunner(settings, views=[RefusingStats(), SummariesView(), StatsView()])
    try:
        with pytest.raises(RuntimeError, match="refuses every batch"):
            runner.step()
    finally:
        runner.stop()
    conn = connect(settings)
    try:
        at = {name: position for name, (_, position) in st.live_positions(conn).items()}
    finally:
        conn.close()
    assert at["summaries"] == at["stats"] == ledger.reader.max_position()
    assert at["refusing"] == -1
    assert views.stats()["total_runs"] == 4


def test_two_writers_of_one_batch_cannot_both_commit_it(
    driver: Driver, settings: Settings, views: ReadModels
) -> None:
    run_id = driver.trigger("once")
    driver.ledger.cancel(run_id, principal="olga")
    conn = connect(settings)
    try:
        view = StatsView()
        pointer = st.ensure_view(conn, view)
        events = read_events(conn, -1, 100)
        apply_batch(conn, view, pointer.live, -1, events)
        before = dump(settings, view)
        with pytest.raises(st.StaleTracking):
            triggers = [e for e in events if e.type == "Run.Triggered"]
            apply_batch(conn, view, pointer.live, -1, triggers)  # would make it pending again
        assert dump(settings, view) == before  # the loser's rows were rolled back
    finally:
        conn.close()
    assert views.stats()["by_status"]["killed"] == 1


def test_a_rebuild_produces_tables_equal_to_the_live_ones_row_for_row(
    driver: Driver, runner: ProjectionRunner, settings: Settings, views: ReadModels
) -> None:
    some_history(driver)
    runner.catch_up()
    before = {view.name: dump(settings, view) for view in default_views()}
    indexes = {v.name: index_names(settings, f"rl_{v.name}_v{v.schema_version}_g1") for v in default_views()}
    assert all(indexes.values())
    generations = {}
    conn = connect(settings)
    try:
        for view in default_views():
            generations[view.name] = st.read_pointer(conn, view.name).generation  # type: ignore[union-attr]
    finally:
        conn.close()
    assert runner.rebuild() == ["summaries", "stats", "lineage", "audit", "marquez"]
    after = {view.name: dump(settings, view) for view in default_views()}
    assert after == before
    assert {
        v.name: index_names(settings, f"rl_{v.name}_v{v.schema_version}_g2") for v in default_views()
    } == indexes
    conn = connect(settings)
    try:
        for view in default_views():
            pointer = st.read_pointer(conn, view.name)
            assert pointer is not None and pointer.generation == generations[view.name] + 1
            assert pointer.building is None
    finally:
        conn.close()
    assert all(s["lag"] == 0 for s in views.status())


class GatedSummaries(SummariesView):
    """Holds a rebuild in the middle, so the test can look at the world meanwhile."""

    gate = threading.Event()
    entered = threading.Event()

    def fold(
        self,
        conn: Connection,
        t: Tables,
        events: list[EventRecord],
        known: dict[str, Any],
        *,
        append: bool = False,
    ) -> dict[str, Any]:
        if t.prefix.endswith("_g2"):
            GatedSummaries.entered.set()
            GatedSummaries.gate.wait(10)
        return super().fold(conn, t, events, known, append=append)


def test_while_a_rebuild_runs_the_old_tables_keep_serving_and_status_says_rebuilding(
    driver: Driver, runner: ProjectionRunner, settings: Settings, views: ReadModels
) -> None:
    runs = some_history(driver)
    runner.catch_up()
    GatedSummaries.gate.clear()
    GatedSummaries.entered.clear()
    rebuilder = ProjectionRunner(settings, views=[GatedSummaries()], batch_size=5, rebuild_batch_size=5)
    thread = threading.Thread(target=rebuilder.rebuild, args=("summaries",))
    thread.start()
    try:
        assert GatedSummaries.entered.wait(10)
        summaries = next(s for s in views.status() if s["name"] == "summaries")
        assert summaries["state"] == "rebuilding"
        assert views.run_summary(runs[0])["status"] == "success"  # type: ignore[index]
    finally:
        GatedSummaries.gate.set()
        thread.join(30)
    summaries = next(s for s in views.status() if s["name"] == "summaries")
    assert (summaries["state"], summaries["lag"]) == ("live", 0)
    assert views.run_summary(runs[0])["status"] == "success"  # type: ignore[index]


class SummariesNext(SummariesView):
    """The summaries view as the next release would ship it: one schema version up."""

    schema_version: ClassVar[int] = SummariesView.schema_version + 1


OLD, NEW = SummariesView.schema_version, SummariesNext.schema_version


def test_a_changed_schema_version_rebuilds_the_view_on_restart(
    driver: Driver, runner: ProjectionRunner, settings: Settings, views: ReadModels
) -> None:
    runs = some_history(driver)
    runner.catch_up()
    runner.stop()
    upgraded = ProjectionRunner(
        settings, views=[SummariesNext(), StatsView(), LineageView(), AuditView()], rebuild_batch_size=4
    )
    upgraded.catch_up()
    upgraded.stop()
    conn = connect(settings)
    try:
        pointer = st.read_pointer(conn, "summaries")
        assert pointer is not None
        assert (pointer.schema_version, pointer.live.prefix) == (NEW, f"rl_summaries_v{NEW}_g2")
        rows = conn.all(f"SELECT run_id FROM {pointer.live('runs')}")
        assert sorted(r["run_id"] for r in rows) == sorted(runs)
        assert st.position_of(conn, Tables.of("summaries", OLD, 1)) is None  # old one dropped
    finally:
        conn.close()
    assert next(s for s in views.status() if s["name"] == "summaries")["schema_version"] == NEW


class AuditWithNotes(AuditView):
    """An audit view whose generation has one table more than the next release's."""

    table_names: ClassVar[tuple[str, ...]] = (*AuditView.table_names, "notes")

    def create(self, conn: Connection, t: Tables) -> None:
        super().create(conn, t)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {t('notes')} (note TEXT)")


class AuditNext(AuditView):
    schema_version: ClassVar[int] = AuditView.schema_version + 1


def test_a_schema_version_that_names_fewer_tables_still_drops_all_of_the_old_generation(
    driver: Driver, settings: Settings
) -> None:
    some_history(driver)
    for view in (AuditWithNotes(), AuditNext()):
        runner = ProjectionRunner(settings, views=[view])
        runner.catch_up()
        runner.stop()
    old = Tables.of("audit", AuditView.schema_version, 1)
    conn = connect(settings)
    try:
        names = set(st.tables_named(conn))
    finally:
        conn.close()
    assert f"rl_audit_v{AuditNext.schema_version}_g2_entries" in names
    assert not {n for n in names if n.startswith(f"{old.prefix}_")}, names


def test_two_runners_on_one_postgres_share_the_views_without_doubling_any_event(
    backend: str, driver: Driver, settings: Settings, views: ReadModels
) -> None:
    if backend != "postgres":
        pytest.skip("advisory locks are PostgreSQL's")
    first, second = ProjectionRunner(settings), ProjectionRunner(settings)
    first.start()
    second.start()
    try:
        runs = some_history(driver)
        eventually(lambda: all(s["lag"] == 0 for s in views.status()))
        assert first._owned.isdisjoint(second._owned)
        assert first._owned | second._owned == {"summaries", "stats", "lineage", "audit", "marquez"}
        assert [len(views.audit(r)) for r in runs] == [3, 3, 3, 2]
    finally:
        first.stop()
        second.stop()
