"""A small ledger with a few finished runs, and an attacker with direct database access."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ledger.hashing import event_hash
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.event_record import decode_row
from ledger.store.setup import postgres_conninfo
from tests.builders import reports

#: The integrity tests' workflow: one task, so a run finishes in three reports.
ONE_TASK_DEFINITION: dict[str, Any] = {
    "name": "etl",
    "params": {"query": {"type": "string", "required": True}},
    "tasks": [{"name": "extract", "command": ["echo", "{{ params.query }}"]}],
}


def finish_run(ledger: Ledger, query: str) -> str:
    run_id = ledger.trigger(workflow="etl", parameters={"query": query}, principal="carol").run_id
    assert ledger.claim(run_id, worker_id="w1") is not None
    ledger.report(
        run_id,
        worker_id="w1",
        reports=reports(
            {"type": "task_started", "task": "extract"},
            {"type": "task_finished", "task": "extract", "exit_code": 0, "output_vars": {"n": 1}},
            {"type": "run_succeeded"},
        ),
    )
    return run_id


@pytest.fixture
def populated(ledger: Ledger) -> Ledger:
    ledger.register_workflow(ONE_TASK_DEFINITION, principal="alice")
    for query in ("a", "b", "c"):
        finish_run(ledger, query)
    return ledger


class Attacker:
    """Direct SQL on the events table, after disabling the immutability guard."""

    def __init__(self, settings: Settings) -> None:
        self.db = settings.database
        self.sqlite = self.db.kind == "sqlite"
        if self.sqlite:
            self.table, self.pos = "stored_events", "rowid"
        else:
            self.table = f'"{self.db.schema}".runledger_events'
            self.pos = "notification_id"

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        if self.sqlite:
            assert self.db.sqlite_path is not None
            conn = sqlite3.connect(self.db.sqlite_path)
            try:
                yield conn.cursor()
                conn.commit()
            finally:
                conn.close()
        else:
            with psycopg.connect(postgres_conninfo(self.db)) as pg, pg.cursor() as cur:
                yield cur

    def q(self, text: str) -> str:
        return text if self.sqlite else text.replace("?", "%s")

    def disable_guard(self) -> None:
        with self.cursor() as cur:
            if self.sqlite:
                cur.execute(f"DROP TRIGGER {self.table}_refuse_update")
                cur.execute(f"DROP TRIGGER {self.table}_refuse_delete")
            else:
                cur.execute(f"ALTER TABLE {self.table} DISABLE TRIGGER ALL")

    def rows(self) -> list[tuple[int, str, int, str, bytes]]:
        with self.cursor() as cur:
            cur.execute(
                f"SELECT {self.pos}, originator_id, originator_version, topic, state "
                f"FROM {self.table} ORDER BY {self.pos}"
            )
            return [(r[0] - 1, r[1], r[2], r[3], bytes(r[4])) for r in cur.fetchall()]

    def row_of(self, type_suffix: str, nth: int = 0) -> tuple[int, str, int, str, bytes]:
        return [r for r in self.rows() if r[3].endswith(type_suffix)][nth]

    def set_state(self, position: int, state: bytes) -> None:
        with self.cursor() as cur:
            cur.execute(
                self.q(f"UPDATE {self.table} SET state = ? WHERE {self.pos} = ?"), (state, position + 1)
            )

    def delete(self, position: int) -> None:
        with self.cursor() as cur:
            cur.execute(self.q(f"DELETE FROM {self.table} WHERE {self.pos} = ?"), (position + 1,))

    def swap(self, a: int, b: int) -> None:
        """Swap two whole rows' contents (stream, sequence, type, state) between positions."""
        rows = {r[0]: r for r in self.rows()}
        ra, rb = rows[a], rows[b]
        with self.cursor() as cur:
            update = self.q(
                f"UPDATE {self.table} SET originator_id = ?, originator_version = ?, "
                f"topic = ?, state = ? WHERE {self.pos} = ?"
            )
            cur.execute(update, ("tmp", -1, rb[3], rb[4], a + 1))
            cur.execute(update, (ra[1], ra[2], ra[3], ra[4], b + 1))
            cur.execute(update, (rb[1], rb[2], rb[3], rb[4], a + 1))

    def insert(self, position: int, stream: str, sequence: int, topic: str, state: bytes) -> None:
        with self.cursor() as cur:
            cur.execute(
                self.q(
                    f"INSERT INTO {self.table} ({self.pos}, originator_id, "
                    f"originator_version, topic, state) VALUES (?, ?, ?, ?, ?)"
                ),
                (position + 1, stream, sequence, topic, state),
            )

    def skip_positions(self, count: int) -> None:
        """What rolled-back inserts do on PostgreSQL: consume notification ids."""
        with self.cursor() as cur:
            for _ in range(count):
                cur.execute(f"SELECT nextval(pg_get_serial_sequence('{self.table}', 'notification_id'))")


def forged_trigger(attacker: Attacker) -> tuple[str, int, str, bytes]:
    """A self-consistent first event of a new, fake run (hash computed by the rules)."""
    _, _, _, topic, state = attacker.row_of("Run.Triggered")
    payload = json.loads(state)
    payload["triggered_by"] = "mallory"
    stream = str(uuid.uuid4())
    record = decode_row(1, stream, 1, topic, json.dumps(payload).encode())
    payload["hash"] = event_hash(
        stream=stream,
        sequence=1,
        type=record.type,
        timestamp=record.timestamp,
        data=record.data,
        prev_hash=None,
    )
    return stream, 1, topic, json.dumps(payload).encode()


@pytest.fixture
def attacker(settings: Settings) -> Attacker:
    return Attacker(settings)
