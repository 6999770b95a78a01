"""Workspaces in the service and the token table (SPEC 9), on both backends: workflow names
unique per workspace with the old stream ids kept for ``default``, claims confined, every new
event verifying, and a token table made before workspaces taking the column on open."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from api.auth import TokenStore, hash_token
from ledger.errors import Conflict, InvalidRequest, NotFound
from ledger.integrity.bundle import ExportFilters, write_bundle
from ledger.integrity.bundle_verify import verify_bundle
from ledger.integrity.verify import verify_ledger
from ledger.service import Ledger
from ledger.settings import Settings
from projections.views.summaries_fold import summary_from_events
from tests.builders import DEFINITION


def test_two_workspaces_share_a_workflow_name_and_a_claim_stays_in_its_workspace(
    ledger: Ledger, settings: Settings, tmp_path: Path
) -> None:
    ledger.create_workspace("red", principal="admin")
    with pytest.raises(Conflict):
        ledger.create_workspace("red", principal="admin")
    with pytest.raises(Conflict):
        ledger.create_workspace("default", principal="admin")
    with pytest.raises(InvalidRequest):
        ledger.create_workspace("Red!", principal="admin")
    assert ledger.workspace_names() == ["default", "red"]

    plain = ledger.register_workflow(DEFINITION, principal="ops")
    red = ledger.register_workflow(DEFINITION, principal="ops", workspace="red")
    assert red.created and plain.created and red.definition_hash == plain.definition_hash
    # default keeps the stream ids ledgers were written with; red's are its own
    streams = set(ledger.reader.stream_ids("workflow:")) | set(ledger.reader.stream_ids("definition:"))
    assert {"workflow:etl", "workflow:red/etl", f"definition:{plain.definition_hash}"} <= streams
    assert f"definition:red/{plain.definition_hash}" in streams

    in_red = ledger.trigger(workflow="etl", parameters={"query": "r"}, principal="ops", workspace="red")
    in_default = ledger.trigger(workflow="etl", parameters={"query": "d"}, principal="ops")
    keyed = ledger.trigger(
        workflow="etl", parameters={"query": "r"}, principal="ops", workspace="red", idempotency_key="k"
    )
    other_keyed = ledger.trigger(
        workflow="etl", parameters={"query": "d"}, principal="ops", idempotency_key="k"
    )
    assert keyed.created and other_keyed.created  # (keys are per workspace too)
    assert ledger.get_run(in_red.run_id).workspace == "red"
    assert ledger.run_workspace(in_default.run_id) == "default"
    with pytest.raises(NotFound):
        ledger.get_workflow("etl", "blue")
    with pytest.raises(NotFound):
        ledger.trigger(workflow="etl", parameters={"query": "x"}, principal="ops", workspace="blue")

    replayed = ledger.replay(in_red.run_id, principal="ops")
    assert ledger.get_run(replayed.run_id).workspace == "red"

    candidates = [in_red.run_id, in_default.run_id]
    claimed = ledger.claim_first(candidates, worker_id="w-default", workspaces=("default",))
    assert claimed is not None and claimed.id == in_default.run_id
    assert ledger.claim(in_red.run_id, worker_id="w-default", workspaces=("default",)) is None
    assert ledger.get_run(in_red.run_id).status.value == "pending"
    assert ledger.claim(in_red.run_id, worker_id="w-red", workspaces=("red",)) is not None
    assert verify_ledger(settings, workers=1).ok

    # an export of one workspace (``runledger export --workspace`` on the database)
    bundle = write_bundle(
        settings, tmp_path / "red.tar", filters=ExportFilters(workspace="red"), summarise=summary_from_events
    )
    with tarfile.open(bundle.path) as tar:
        text = "".join((tar.extractfile(m) or io.BytesIO()).read().decode() for m in tar.getmembers())
    assert bundle.runs == 3 and in_red.run_id in text and in_default.run_id not in text
    assert verify_bundle(bundle.path) == []


def test_workspace_names_follow_the_ledger_by_position_and_see_another_process_s_workspaces(
    ledger: Ledger, settings: Settings
) -> None:
    """The names are read incrementally (the events after the last call's position): a
    workspace another process creates in between, and only a workspace, shows at the next call."""
    assert ledger.workspace_names() == ["default"]
    other = Ledger(settings)  # another process: nothing it writes passes through ``ledger``
    try:
        other.create_workspace("blue", principal="admin")
        other.register_workflow(DEFINITION, principal="ops", workspace="blue")
        assert ledger.workspace_names() == ["default", "blue"]
        other.create_workspace("amber", principal="admin")
        other.trigger(workflow="etl", parameters={"query": "x"}, principal="ops", workspace="blue")
        assert ledger.workspace_names() == ["default", "amber", "blue"]
        assert ledger.workspace_names() == other.workspace_names()
    finally:
        other.close()
    head, amber = ledger.reader.max_position(), ledger.reader.first("workspace:amber")
    assert amber is not None
    begun = ledger.reader.stream_ids_begun
    assert begun("workspace:", after=-1, upto=head) == ["workspace:blue", "workspace:amber"]  # by position
    assert begun("workspace:", after=-1, upto=amber.position - 1) == ["workspace:blue"]
    assert begun("workspace:", after=amber.position - 1, upto=amber.position) == ["workspace:amber"]
    assert begun("workspace:", after=amber.position, upto=head) == []


def test_a_token_table_made_before_workspaces_gets_the_column_and_its_tokens_cover_every_one(
    ledger: Ledger, settings: Settings
) -> None:
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    store = TokenStore(datastore, settings.database)
    with datastore.transaction(commit=True) as cursor:  # the table as it was made before
        cursor.execute(f"DROP TABLE {store.table}")
        cursor.execute(
            f"CREATE TABLE {store.table} (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, "
            "token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT)"
        )
        cursor.execute(
            f"INSERT INTO {store.table} (id, name, role, token_hash, created_at) VALUES "
            + ("(%s, %s, %s, %s, %s)" if store.postgres else "(?, ?, ?, ?, ?)"),
            ("old-id", "old", "auditor", hash_token("rl_old-secret"), "2026-01-01T00:00:00.000000Z"),
        )
    reopened = TokenStore(datastore, settings.database)
    TokenStore(datastore, settings.database)  # (a second open finds the column there)
    old = reopened.authenticate("rl_old-secret")
    assert old is not None and old.every_workspace and old.covers("anything")
    ledger.create_workspace("red", principal="admin")
    _, secret = reopened.create(name="red-only", role="worker", workspaces=["red"])
    scoped = reopened.authenticate(secret)
    assert scoped is not None and scoped.workspaces == ("red",) and not scoped.covers("default")
    assert [t.workspaces for t in reopened.list()] == [("*",), ("red",)]
    with pytest.raises(ValueError):
        reopened.create(name="x", role="auditor", workspaces=["*", "red"])
    with pytest.raises(ValueError):
        reopened.create(name="x", role="auditor", workspaces=["Bad Name"])
