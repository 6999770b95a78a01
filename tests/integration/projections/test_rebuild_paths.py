"""The rebuild's fast paths build exactly what following builds: a rebuild split between
processes (each folding the runs of its streams) and lineage rows appended without conflict
handling whose repeats are settled before the unique indexes go up."""

from __future__ import annotations

import pytest
import structlog.testing

from ledger.settings import Settings
from projections import fill as fill_module
from projections import state as st
from projections.db import connect
from projections.runner import ProjectionRunner, default_views
from projections.tracking import tracking
from projections.views import audit, lineage, stats, summaries
from tests.integration.projections.conftest import Driver, sha
from tests.integration.projections.test_runner import dump, index_names, some_history


def more_history(driver: Driver) -> None:
    """Runs that share files across the whole history (so across batches and parts), and a
    file consumed under another path than the one it was produced under (the first row wins)."""
    some_history(driver)
    for i in range(6):
        run_id = driver.trigger(f"more-{i}")
        driver.succeed(run_id, consumed=sha("a"), produced=sha("e" if i % 2 else "f"))


def tracking_prefixes(settings: Settings) -> list[str]:
    conn = connect(settings)
    try:
        table = tracking(conn).table
        return sorted(
            r["application_name"]
            for r in conn.all(  # not the library's marker
                f"SELECT application_name FROM {table} WHERE application_name LIKE ?", ("rl_%",)
            )
        )
    finally:
        conn.close()


def test_a_rebuild_split_between_processes_equals_following(
    driver: Driver, runner: ProjectionRunner, settings: Settings
) -> None:
    more_history(driver)
    runner.catch_up()
    before = {view.name: dump(settings, view) for view in default_views()}
    split = ProjectionRunner(settings, rebuild_batch_size=4, rebuild_parts=2)
    try:
        assert split.rebuild() == ["summaries", "stats", "lineage", "audit", "marquez"]
    finally:
        split.stop()
    assert {view.name: dump(settings, view) for view in default_views()} == before
    assert tracking_prefixes(settings) == sorted(  # the parts' positions are gone
        f"rl_{v.name}_v{v.schema_version}_g2" for v in default_views()
    )
    assert all(s["lag"] == 0 and s["state"] == "live" for s in split.status())
    runner.catch_up()  # and following goes on from there
    more_history(driver)
    runner.catch_up()
    assert all(s["lag"] == 0 for s in runner.status())


def test_lineage_repeats_a_rebuild_no_longer_remembers_are_settled_before_its_indexes(
    driver: Driver, runner: ProjectionRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    more_history(driver)
    runner.catch_up()
    view = lineage.LineageView()
    before = dump(settings, view)
    indexes = index_names(settings, f"rl_lineage_v{view.schema_version}_g1")
    monkeypatch.setattr(lineage, "RECENT_KEYS", 1)  # forget almost at once: repeats reach SQL
    forgetful = ProjectionRunner(settings, rebuild_batch_size=3, rebuild_parts=1)
    try:
        forgetful.rebuild("lineage")
    finally:
        forgetful.stop()
    after = dump(settings, view)
    assert after == before
    links = [row for row in after["links"] if row[3] == f"file:{sha('a')}"]
    first = min(links, key=lambda row: (row[7], row[2]))  # by position, then kind
    assert first[4] == "data.txt"  # the path it was produced under, before being consumed
    assert index_names(settings, f"rl_lineage_v{view.schema_version}_g2") == indexes
    conn = connect(settings)
    try:  # and the unique keys hold
        live = st.read_pointer(conn, "lineage")
        assert live is not None
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            conn.execute(f"INSERT INTO {live.live('links')} SELECT * FROM {live.live('links')} LIMIT 1")
    finally:
        conn.close()


def test_rebuilt_tables_go_live_with_planner_statistics_and_visibility_maps_on_postgres(
    driver: Driver, runner: ProjectionRunner, settings: Settings
) -> None:
    if settings.database.kind != "postgres":
        pytest.skip("SQLite plans without gathered statistics")
    more_history(driver)
    runner.rebuild()
    conn = connect(settings)
    try:
        for view in default_views():
            live = st.read_pointer(conn, view.name)
            assert live is not None
            for table in view.table_names:
                row = conn.one(
                    "SELECT last_analyze, last_vacuum FROM pg_stat_user_tables WHERE relid = to_regclass(?)",
                    (live.live(table),),
                )
                assert row is not None and row["last_analyze"] is not None, live.live(table)
                if table in view.analyze_only:  # read through the heap: analyzed only
                    assert row["last_vacuum"] is None, live.live(table)
                else:  # a visibility map for index-only scans
                    assert row["last_vacuum"] is not None, live.live(table)
    finally:
        conn.close()


def test_runs_that_leave_a_rebuild_s_carried_state_and_come_back_are_written_whole(
    driver: Driver, runner: ProjectionRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild writes a run's rows when the run leaves the state carried between batches
    or at the end of the fill; with room for one run, every run leaves between its events
    (its rows are written, read back and written again), and the tables still equal what
    following built."""
    more_history(driver)
    runner.catch_up()
    before = {view.name: dump(settings, view) for view in default_views()}
    for module in (summaries, stats, audit):
        monkeypatch.setattr(module, "CARRY_RUNS", 1)
    for parts in (1, 2):
        forgetful = ProjectionRunner(settings, rebuild_batch_size=2, rebuild_parts=parts)
        try:
            forgetful.rebuild()
        finally:
            forgetful.stop()
        assert {view.name: dump(settings, view) for view in default_views()} == before


def test_a_rebuild_logs_its_progress_as_it_reads(
    driver: Driver, runner: ProjectionRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    more_history(driver)
    monkeypatch.setattr(fill_module, "PROGRESS_SECONDS", 0.0)
    with structlog.testing.capture_logs() as logs:
        ProjectionRunner(settings, rebuild_batch_size=4, rebuild_parts=1).rebuild()
    progress = [e for e in logs if e["event"] == "projection_rebuild_progress"]
    assert len(progress) >= 3
    positions = [e["position"] for e in progress]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    newest = driver.ledger.reader.max_position()
    assert all(e["upto"] == newest and 0 < e["percent"] <= 100 for e in progress)
