"""Sensitive parameters sealed under a run key, and expunge (SPEC section 11), on both backends."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.errors import Conflict
from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.store.keystore import KEYS_TABLE
from tests.integration.retention.conftest import SECRET_DEFINITION, finish

SECRET = "hunter2-correct-horse-battery"


def raw_database_bytes(settings: Settings) -> bytes:
    """Everything the database holds, as an attacker with the file or a dump would see it."""
    db = settings.database
    if db.kind == "sqlite":
        assert db.sqlite_path is not None
        conn = sqlite3.connect(db.sqlite_path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        data = Path(db.sqlite_path).read_bytes()
        wal = Path(db.sqlite_path + "-wal")
        return data + (wal.read_bytes() if wal.exists() else b"")
    dump = subprocess.run(
        ["pg_dump", "-h", db.host, "-p", str(db.port), "-U", db.user, "-n", db.schema, db.dbname],
        capture_output=True,
        check=True,
        env=os.environ | {"PGPASSWORD": db.password},
    )
    return dump.stdout


def holds(raw: bytes, key: bytes) -> bool:
    """The key's bytes are there (as stored by SQLite, or hex in a dump's ``bytea``)."""
    return key in raw or key.hex().encode() in raw


def key_rows(ledger: Ledger, run_id: str) -> int:
    keys = ledger.keys
    with keys.raw.connect() as conn:
        row = conn.execute(
            keys.raw.sql(f"SELECT COUNT(*) FROM {keys.raw.table(KEYS_TABLE)} WHERE run_id = ?"), (run_id,)
        ).fetchone()
    return int(row[0])


@pytest.fixture
def vault(ledger: Ledger) -> Ledger:
    ledger.register_workflow(SECRET_DEFINITION, principal="alice")
    return ledger


def test_a_sensitive_value_is_sealed_in_the_database_and_opened_with_the_run_key(
    vault: Ledger, settings: Settings
) -> None:
    source, _ = vault.files.put_bytes(b"shared input")
    run_id = finish(vault, token=SECRET, source=source, output=b"out-1")
    stored = vault.get_run(run_id).parameters["token"]
    assert stored["sealed"] == "AES-256-GCM" and SECRET not in str(stored)
    assert SECRET.encode() not in raw_database_bytes(settings)
    assert vault.run_parameters(vault.get_run(run_id))["token"] == SECRET
    assert key_rows(vault, run_id) == 1


def test_expunge_destroys_the_key_deletes_unique_files_keeps_shared_ones_and_verify_passes(
    vault: Ledger, settings: Settings
) -> None:
    source, _ = vault.files.put_bytes(b"shared input")
    gone = finish(vault, token=SECRET, source=source, output=b"only mine")
    kept = finish(vault, token="other", source=source, output=b"theirs")
    mine = vault.files.path_for(vault.files.put_bytes(b"only mine")[0])
    my_log = vault.files.path_for(vault.files.put_bytes(b"log of only mine")[0])
    run_dir = settings.run_work_dir / gone
    run_dir.mkdir(parents=True)
    (run_dir / "left.txt").write_text("x")

    key = vault.keys.get(gone)
    assert key is not None and holds(raw_database_bytes(settings), key)

    done = vault.expunge(gone, principal="admin", reason="GDPR art. 17 request")

    assert done.recorded and done.key_destroyed
    assert sorted(done.files_deleted) == sorted([mine.name, my_log.name])
    assert not mine.exists() and not my_log.exists() and not run_dir.exists()
    assert vault.files.exists(source)  # the other run still reads it
    assert key_rows(vault, gone) == 0 and key_rows(vault, kept) == 1
    assert not holds(raw_database_bytes(settings), key)  # not left in a free page either
    assert vault.run_parameters(vault.get_run(gone))["token"] == "[erased]"
    assert vault.run_parameters(vault.get_run(kept))["token"] == "other"
    assert vault.keys.was_erased(mine.name) and not vault.keys.was_erased(source)
    assert verify_ledger(settings).ok
    events = [e.type for e in vault.stream_events(gone)]
    assert events.count("Run.Expunged") == 1

    again = vault.expunge(gone, principal="admin", reason="again")
    assert not again.recorded and again.files_deleted == done.files_deleted
    assert [e.type for e in vault.stream_events(gone)].count("Run.Expunged") == 1

    vault.expunge(kept, principal="admin", reason=None)  # the last reader goes: so does the file
    assert not vault.files.exists(source)
    assert verify_ledger(settings).ok


def test_a_held_run_refuses_expunge_until_the_hold_is_released(vault: Ledger) -> None:
    source, _ = vault.files.put_bytes(b"input")
    run_id = finish(vault, token=SECRET, source=source, output=b"held output")
    assert vault.place_hold(run_id, principal="legal", reason="litigation 42")
    assert not vault.place_hold(run_id, principal="legal", reason="twice")  # nothing new recorded
    with pytest.raises(Conflict, match="legal hold"):
        vault.expunge(run_id, principal="admin", reason=None)
    assert vault.run_parameters(vault.get_run(run_id))["token"] == SECRET
    assert vault.files.exists(vault.files.put_bytes(b"held output")[0])
    assert vault.release_hold(run_id, principal="legal", reason="settled")
    assert vault.expunge(run_id, principal="admin", reason=None).recorded
    types = [e.type for e in vault.stream_events(run_id)]
    assert types[-3:] == ["Run.HoldPlaced", "Run.HoldReleased", "Run.Expunged"]


def test_a_run_still_running_refuses_expunge(vault: Ledger) -> None:
    source, _ = vault.files.put_bytes(b"input")
    run_id = vault.trigger(workflow="vault", parameters={"source": source}, principal="carol").run_id
    with pytest.raises(Conflict, match="cancel it"):
        vault.expunge(run_id, principal="admin", reason=None)


def test_retention_dry_run_lists_what_would_go_and_deletes_nothing(vault: Ledger, settings: Settings) -> None:
    source, _ = vault.files.put_bytes(b"input")
    run_id = finish(vault, token=SECRET, source=source, output=b"dry")
    later = vault.clock() + timedelta(days=400)
    settings.retention_days = 30
    preview = vault.apply_retention(now=later, dry_run=True)
    assert [p.run_id for p in preview.picked] == [run_id]
    assert len(preview.picked[0].files_deleted) == 3  # input, output and log: no other run names them
    assert all(vault.files.exists(sha) for sha in preview.picked[0].files_deleted)
    assert key_rows(vault, run_id) == 1
    assert "Run.Expunged" not in [e.type for e in vault.stream_events(run_id)]

    applied = vault.apply_retention(now=later, dry_run=False)
    assert [p.run_id for p in applied.picked] == [run_id] and applied.removed.files == 3
    assert not any(vault.files.exists(sha) for sha in preview.picked[0].files_deleted)
    assert key_rows(vault, run_id) == 0
    assert vault.apply_retention(now=later, dry_run=False).picked == []


def test_a_replay_seals_the_value_again_under_its_own_key_and_needs_it_again_after_an_expunge(
    vault: Ledger,
) -> None:
    source, _ = vault.files.put_bytes(b"input")
    original = finish(vault, token=SECRET, source=source, output=b"replayed")
    copy = vault.replay(original, principal="carol").run_id
    sealed = vault.get_run(copy).parameters["token"]
    assert sealed != vault.get_run(original).parameters["token"]  # its own key and nonce
    assert vault.keys.get(copy) not in (None, vault.keys.get(original))
    assert vault.run_parameters(vault.get_run(copy))["token"] == SECRET
    vault.cancel(copy, principal="op")
    vault.expunge(original, principal="admin", reason=None)
    with pytest.raises(Conflict, match="give them again"):
        vault.replay(original, principal="carol")
    again = vault.replay(original, overrides={"token": "new"}, principal="carol").run_id
    assert vault.run_parameters(vault.get_run(again))["token"] == "new"
