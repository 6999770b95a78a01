"""The ``eventsourcing`` library's own recorder contract (``eventsourcing.tests.persistence``),
run against the recorders our Ledger builds from Settings, on a temporary SQLite file and on a
PostgreSQL schema of its own (dropped afterwards), as the library runs it against its own.

* the application recorder contract (positions, notifications, concurrent writers) and the
  non-interleaving one (a write's positions are one block) on the Ledger's recorder, and on
  the group commit in front of it, through which the Ledger's event store writes;
* the aggregate recorder contract (atomic writes, ``select_events`` with ``gt``, ``lte``,
  ``desc`` and ``limit``) on the same two, through :class:`PositionsHidden`;
* the tracking recorder contract on the library's tracking recorder as the read side
  configures it (:mod:`projections.tracking`).

The library's process recorder contract does not apply: no recorder of ours records tracking
with events (the read side keeps its positions itself).
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar, cast
from unittest import TestCase

import pytest
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, StoredEvent, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from eventsourcing.tests import persistence as contract

from ledger.service import Ledger
from ledger.settings import Settings
from projections.tracking import POSTGRES_TABLE
from tests.conftest import fresh_database_url, postgres_or_skip


#: A bug the contract found, to fix in ``PostgresLedgerRecorder.select_events``: its fast path
#: reads a whole stream as ``originator_version > gt or 0``, so an event at version 0 (which the
#: contract writes last) is never read back. Harmless today, as every stream of ours starts at
#: version 1; every other check of the case passes before that last one. Strict: once fixed,
#: this fails until the mark goes.
class OnLedgerDatabase(TestCase):
    """Each test on a fresh database of ``backend``; ``ledger()`` opens a Ledger on it."""

    backend: ClassVar[str] = "sqlite"

    def setUp(self) -> None:
        super().setUp()
        if self.backend == "postgres":
            postgres_or_skip()
        stack = ExitStack()
        self.addCleanup(stack.close)  # runs last: after every Ledger opened below is closed
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = stack.enter_context(fresh_database_url(self.backend, directory))
        self.settings = Settings(database_url=url, data_dir=directory / "state")
        self.threads_before = set(threading.enumerate())

    def ledger(self) -> Ledger:
        ledger = Ledger(self.settings)
        self.addCleanup(ledger.close)
        self.addCleanup(self.join_threads_left_running)  # runs first: before the close
        return ledger

    def join_threads_left_running(self) -> None:
        """The contract's concurrent test tells its reader threads to stop but does not wait
        for them; closing the store under a reader still inside a query crashes SQLite's C
        library. (The pools' own worker threads are daemons, and end with their pools.)"""
        for thread in set(threading.enumerate()) - self.threads_before:
            if not thread.daemon:
                thread.join(timeout=30)

    def new_originator_id(self) -> str:
        """Stream ids are text in our store (``ORIGINATOR_ID_TYPE=text``), as our streams'."""
        return str(uuid.uuid4())


class PositionsHidden(AggregateRecorder):
    """An application recorder seen as an aggregate recorder: its writes return None, as the
    aggregate contract asks, instead of the positions they took; the writes and reads are the
    recorder's own."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self.recorder.insert_events(stored_events, **kwargs)

    def select_events(
        self,
        originator_id: Any,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)


# ---- the Ledger's own recorder ---------------------------------------------------------------
class LedgerRecorder(OnLedgerDatabase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.ledger().recorder


class TestSQLiteLedgerRecorderKeepsTheApplicationContract(
    LedgerRecorder, contract.ApplicationRecorderTestCase[ApplicationRecorder]
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresLedgerRecorderKeepsTheApplicationContract(
    LedgerRecorder, contract.ApplicationRecorderTestCase[ApplicationRecorder]
):
    backend = "postgres"


class TestSQLiteLedgerRecorderNeverInterleavesTwoWrites(
    LedgerRecorder, contract.NonInterleavingNotificationIDsBaseCase
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresLedgerRecorderNeverInterleavesTwoWrites(
    LedgerRecorder, contract.NonInterleavingNotificationIDsBaseCase
):
    backend = "postgres"


class LedgerRecorderAsAggregateRecorder(OnLedgerDatabase):
    def create_recorder(self) -> AggregateRecorder:
        return PositionsHidden(self.ledger().recorder)


class TestSQLiteLedgerRecorderKeepsTheAggregateContract(
    LedgerRecorderAsAggregateRecorder, contract.AggregateRecorderTestCase
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresLedgerRecorderKeepsTheAggregateContract(
    LedgerRecorderAsAggregateRecorder, contract.AggregateRecorderTestCase
):
    backend = "postgres"


# ---- the group commit in front of it ----------------------------------------------------------
class GroupCommit(OnLedgerDatabase):
    def create_recorder(self) -> ApplicationRecorder:
        # Not an ApplicationRecorder by class: it writes itself and hands the rest to the recorder.
        return cast(ApplicationRecorder, self.ledger().group_commit)


class TestSQLiteGroupCommitKeepsTheApplicationContract(
    GroupCommit, contract.ApplicationRecorderTestCase[ApplicationRecorder]
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresGroupCommitKeepsTheApplicationContract(
    GroupCommit, contract.ApplicationRecorderTestCase[ApplicationRecorder]
):
    backend = "postgres"


class TestSQLiteGroupCommitNeverInterleavesTwoWrites(
    GroupCommit, contract.NonInterleavingNotificationIDsBaseCase
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresGroupCommitNeverInterleavesTwoWrites(
    GroupCommit, contract.NonInterleavingNotificationIDsBaseCase
):
    backend = "postgres"


class GroupCommitAsAggregateRecorder(OnLedgerDatabase):
    def create_recorder(self) -> AggregateRecorder:
        return PositionsHidden(cast(ApplicationRecorder, self.ledger().group_commit))


class TestSQLiteGroupCommitKeepsTheAggregateContract(
    GroupCommitAsAggregateRecorder, contract.AggregateRecorderTestCase
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresGroupCommitKeepsTheAggregateContract(
    GroupCommitAsAggregateRecorder, contract.AggregateRecorderTestCase
):
    backend = "postgres"


# ---- the read side's tracking recorder ---------------------------------------------------------
class ViewsTrackingRecorder(OnLedgerDatabase):
    """The library's tracking recorder with the table the read side gives it, on a datastore
    of the test's database (the read side writes through its own connections instead)."""

    def create_recorder(self) -> TrackingRecorder:
        db = self.settings.database
        recorder: TrackingRecorder
        if db.kind == "sqlite":
            assert db.sqlite_path is not None
            sqlite = SQLiteDatastore(db_name=db.sqlite_path)
            self.addCleanup(sqlite.close)
            recorder = SQLiteTrackingRecorder(sqlite)
        else:
            postgres = PostgresDatastore(
                dbname=db.dbname,
                host=db.host,
                port=str(db.port),
                user=db.user,
                password=db.password,
                schema=db.schema,
            )
            self.addCleanup(postgres.close)
            recorder = PostgresTrackingRecorder(postgres, tracking_table_name=POSTGRES_TABLE)
        recorder.create_table()
        return recorder


class TestSQLiteViewsTrackingRecorderKeepsTheTrackingContract(
    ViewsTrackingRecorder, contract.TrackingRecorderTestCase
):
    backend = "sqlite"


@pytest.mark.postgres
class TestPostgresViewsTrackingRecorderKeepsTheTrackingContract(
    ViewsTrackingRecorder, contract.TrackingRecorderTestCase
):
    backend = "postgres"
