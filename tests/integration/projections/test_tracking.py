"""The views' positions live in the ``eventsourcing`` library's tracking table, where the
library's own recorder reads them; positions kept in the table used before move over."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from ledger.settings import Settings
from projections import state as st
from projections.db import connect
from projections.runner import ProjectionRunner, default_views
from projections.tracking import POSTGRES_TABLE, StaleTracking, tracking
from tests.integration.projections.conftest import Driver
from tests.integration.projections.test_runner import some_history


def library_recorder(settings: Settings) -> PostgresTrackingRecorder | SQLiteTrackingRecorder:
    """The library's tracking recorder on the ledger's database, with its own datastore."""
    db = settings.database
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        return SQLiteTrackingRecorder(SQLiteDatastore(db_name=db.sqlite_path))
    return PostgresTrackingRecorder(
        PostgresDatastore(
            dbname=db.dbname,
            host=db.host,
            port=str(db.port),
            user=db.user,
            password=db.password,
            schema=db.schema or "public",
        ),
        tracking_table_name=POSTGRES_TABLE,
    )


def test_the_library_s_recorder_reads_every_view_s_position(
    driver: Driver, runner: ProjectionRunner, settings: Settings
) -> None:
    some_history(driver)
    runner.catch_up()
    newest = driver.ledger.reader.max_position()
    recorder = library_recorder(settings)
    try:
        for view in default_views():
            prefix = f"rl_{view.name}_v{view.schema_version}_g1"
            assert recorder.max_tracking_id(prefix) == newest + 1  # notification ids from 1
        with pytest.raises(IntegrityError):  # and it refuses to move one back, as ever
            recorder.insert_tracking(Tracking(f"rl_audit_v{default_views()[3].schema_version}_g1", newest))
    finally:
        recorder.datastore.close()


def test_a_position_moves_only_from_the_one_a_batch_started_at(
    driver: Driver, runner: ProjectionRunner, settings: Settings
) -> None:
    some_history(driver)
    runner.catch_up()
    conn = connect(settings)
    try:
        live = st.read_pointer(conn, "stats")
        assert live is not None
        at = st.position_of(conn, live.live)
        assert at is not None
        for expected, to in ((at - 1, at + 1), (at + 1, at + 2)):  # behind, ahead
            with pytest.raises(StaleTracking), conn.transaction():
                st.advance(conn, live.live, expected=expected, to=to)
        with pytest.raises(StaleTracking), conn.transaction():  # never backwards
            st.advance(conn, live.live, expected=at, to=at - 1)
        assert st.position_of(conn, live.live) == at
    finally:
        conn.close()


def test_views_from_before_the_library_s_tracking_keep_their_positions_and_follow_on(
    driver: Driver, runner: ProjectionRunner, settings: Settings
) -> None:
    """A database whose positions are still in the former table (as the previous release
    left it): the next runner moves them to the library's table and follows on from them,
    without rebuilding anything."""
    some_history(driver)
    runner.catch_up()
    runner.stop()
    conn = connect(settings)
    try:
        positions = {
            view.name: st.position_of(conn, st.read_pointer(conn, view.name).live)  # type: ignore[union-attr]
            for view in default_views()
        }
        with conn.transaction():  # back to the former layout
            conn.execute(
                f"CREATE TABLE {st.LEGACY_TRACKING_TABLE} (prefix TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            )
            for view in default_views():
                prefix = f"rl_{view.name}_v{view.schema_version}_g1"
                conn.execute(
                    f"INSERT INTO {st.LEGACY_TRACKING_TABLE} VALUES (?, ?)", (prefix, positions[view.name])
                )
            conn.execute(f"DROP TABLE {tracking(conn).table}")
    finally:
        conn.close()
    driver.trigger("after-upgrade")
    upgraded = ProjectionRunner(settings)
    try:
        upgraded.catch_up()
        newest = driver.ledger.reader.max_position()
        assert all(row["position"] == newest for row in upgraded.status())
    finally:
        upgraded.stop()
    conn = connect(settings)
    try:
        assert st.LEGACY_TRACKING_TABLE not in st.tables_named(conn)
        for view in default_views():  # followed on in generation 1: nothing was rebuilt
            assert st.read_pointer(conn, view.name).generation == 1  # type: ignore[union-attr]
    finally:
        conn.close()
