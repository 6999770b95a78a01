"""``runledger.Client`` against a real ``runledger serve`` on both backends: every method of
SPEC section 6 that the server has a route for, and the error mapping.

Labels and ``q`` belong to SPEC section 8 and are not driven here; signatures, signing keys and
``/api/audit`` (SPEC section 10) are driven in ``tests/e2e/test_signatures.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from runledger import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RunledgerError,
    RunNotFoundError,
    ValidationError,
    WaitTimeout,
    WorkflowNotFoundError,
)
from tests.builders import eventually
from tests.e2e.client_helpers import client_for, complete
from tests.e2e.conftest import Server
from tests.e2e.helpers import pipeline
from tests.e2e.test_api_runs import OUT_TXT


def test_workflows_register_list_and_get_through_the_client(shared_server: Server, tmp_path: Path) -> None:
    definition = pipeline()
    yaml_file = tmp_path / "wf.yaml"
    changed = pipeline(name=definition["name"], description="second version")
    import yaml

    yaml_file.write_text(yaml.safe_dump(changed))
    with client_for(shared_server, "operator", tmp_path) as client:
        first = client.workflows.register(definition)
        assert (first.name, first.version) == (definition["name"], 1)
        second = client.workflows.register(yaml_file)
        assert second.version == 2
        assert client.workflows.register(definition).version == 1  # identical: the existing version
        listed = {w.name: w for w in client.workflows.list()}
        assert listed[definition["name"]].active_version == 2
        shown = client.workflows.get(definition["name"])
        assert (shown.version, shown.definition["description"]) == (2, "second version")
        assert [v.version for v in shown.versions] == [1, 2]
        older = client.workflows.get(definition["name"], version=1)
        assert (older.version, older.active_version, older.definition) == (1, 2, definition)
        with pytest.raises(WorkflowNotFoundError):
            client.workflows.get(definition["name"], version=9)
        with pytest.raises(WorkflowNotFoundError) as caught:
            client.workflows.get("no-such-workflow")
        assert caught.value.status == 404 and caught.value.detail


def test_a_triggered_run_is_waited_for_over_sse_and_every_read_answers(
    shared_server: Server, tmp_path: Path
) -> None:
    definition = pipeline()
    with client_for(shared_server, "operator", tmp_path) as client:
        client.workflows.register(definition)
        run = client.trigger(definition["name"], {"query": "alpha"})
        assert (run.status, run.parameters, run.triggered_by) == (
            "pending",
            {"query": "alpha", "limit": 5},
            "test-operator",
        )
        with pytest.raises(WaitTimeout):
            run.wait(timeout=0.5)
        worker = threading.Timer(0.5, complete, args=(shared_server, run.run_id))
        worker.start()
        started = time.monotonic()
        live = [e.type for e in run.events(follow=True, timeout=30)]
        worker.join()
        assert live[0] == "Run.Triggered" and live[-1] == "Run.Succeeded"
        assert run.wait(timeout=30).status == "success" and time.monotonic() - started < 30
        assert [e.type for e in run.events()] == live
        assert [t.name for t in run.tasks()] == ["fetch", "summarise"]
        assert run.task("fetch").attempts[0].exit_code == 0
        assert run.logs("fetch") == "fetched 3 urls\n"
        files = run.files().files
        out = next(f for f in files if f.role == "output")
        assert run.download(out.sha256, tmp_path / "out.txt").read_bytes() == OUT_TXT
        # the lineage and audit views follow the ledger a moment behind the run's own events
        assert eventually(lambda: {n["kind"] for n in run.lineage(depth=1).nodes} >= {"run", "task", "file"})
        assert eventually(
            lambda: [e.to_status for e in run.audit().entries if e.to_status][-1:] == ["success"]
        )
        assert run.outputs["fetch"] == {"urls": 3}


def test_replay_resume_compare_cancel_and_trigger_by_hash(shared_server: Server, tmp_path: Path) -> None:
    definition = pipeline()
    with client_for(shared_server, "operator", tmp_path) as client:
        registered = client.workflows.register(definition)
        original = client.trigger(definition["name"], {"query": "alpha"})
        complete(shared_server, original.run_id)
        replayed = original.replay({"query": "gamma"})
        assert (replayed.trigger_kind, replayed.replay_of, replayed.parameters["query"]) == (
            "replay",
            original.run_id,
            "gamma",
        )
        resumed = original.resume("summarise")
        assert (resumed.trigger_kind, resumed.resume_of) == ("resume", original.run_id)
        compared = client.runs.compare(original.run_id, replayed.run_id)
        assert compared.parameters == {"query": {"a": "alpha", "b": "gamma"}}
        assert replayed.cancel().status == "killed"
        with pytest.raises(ConflictError) as caught:
            replayed.cancel()
        assert caught.value.status == 409
        pinned = client.trigger_by_hash(registered.definition_hash, {"query": "h"}, idempotency_key="k-1")
        assert (pinned.trigger_kind, pinned.definition_hash) == ("hash", registered.definition_hash)
        again = client.trigger_by_hash(registered.definition_hash, {"query": "h"}, idempotency_key="k-1")
        assert again.run_id == pinned.run_id
        batch = client.trigger_batch(definition["name"], ["a", "b", "c"], "query", parallelism=2)
        assert len(batch.run_ids) == 3
        assert client.batch(batch.batch_id).progress.total_items == 3


def test_runs_list_follows_cursors_lazily_with_filters(shared_server: Server, tmp_path: Path) -> None:
    definition = pipeline()
    with client_for(shared_server, "operator", tmp_path) as client:
        client.workflows.register(definition)
        ids = [client.trigger(definition["name"], {"query": f"q{i}"}).run_id for i in range(5)]
        # The list comes from a view that follows the ledger a moment behind: wait for all five.
        eventually(lambda: len(list(client.runs.list(workflow=definition["name"]))) == 5, timeout=60)
        listed = client.runs.list(workflow=definition["name"], page_size=2)
        assert next(listed).run_id == ids[-1]  # newest first, one page fetched so far
        assert [r.run_id for r in listed] == ids[-2::-1]  # the rest, across two more pages
        assert [r.run_id for r in client.runs.list(workflow=definition["name"], limit=3, page_size=2)] == ids[
            :1:-1
        ]
        by_param = client.runs.list(workflow=definition["name"], params={"query": "q2"})
        assert [r.run_id for r in by_param] == [ids[2]]
        assert list(client.runs.list(workflow=definition["name"], status="success")) == []
        page, cursor = client.runs.page(workflow=definition["name"], limit=4)
        assert len(page) == 4 and cursor

        def counted() -> bool:  # stats come from a view that follows the ledger a moment behind
            stats = client.stats(workflow=definition["name"])
            return stats.total_runs == 5 and sum(stats.by_status.values()) == 5

        assert eventually(counted, timeout=60)


def test_files_ledger_and_export_through_the_client(shared_server: Server, tmp_path: Path) -> None:
    source = tmp_path / "seed.txt"
    source.write_bytes(b"seed data\n")
    with client_for(shared_server, "operator", tmp_path) as client:
        stored = client.files.upload(source)
        assert stored.size == 10 and client.files.upload(b"seed data\n").sha256 == stored.sha256
        assert client.files.download(stored.sha256, tmp_path / "back").read_bytes() == b"seed data\n"
        digest = client.ledger.digest()
        assert digest.tree_size >= 0 and len(digest.root_hash) == 64
        report = client.ledger.verify()
        assert report.ok is True and report.events_checked > 0
        bundle = client.export(tmp_path / "bundle.tar")
        assert bundle.stat().st_size > 0


def test_problem_json_becomes_the_exception_of_its_status(shared_server: Server, tmp_path: Path) -> None:
    definition = pipeline()
    with client_for(shared_server, "operator", tmp_path) as operator:
        operator.workflows.register(definition)
        with pytest.raises(ValidationError) as invalid:
            operator.trigger(definition["name"], {"query": 1, "nope": 2})
        assert invalid.value.status == 422 and "nope" in invalid.value.detail
        with pytest.raises(ValidationError):
            list(operator.runs.list(status="completed"))
        with pytest.raises(RunNotFoundError) as missing:
            operator.runs.get("no-such-run")
        assert isinstance(missing.value, NotFoundError) and missing.value.status == 404
        with pytest.raises(WorkflowNotFoundError):
            operator.trigger("no-such-workflow")
    with client_for(shared_server, "auditor", tmp_path) as auditor:
        with pytest.raises(PermissionDeniedError) as denied:
            auditor.trigger(definition["name"], {"query": "x"})
        assert denied.value.status == 403
    from runledger import Client

    with Client(shared_server.url, "not-a-token") as stranger:
        with pytest.raises(AuthenticationError) as unknown:
            stranger.workflows.list()
        assert unknown.value.status == 401 and isinstance(unknown.value, RunledgerError)
        assert "AuthenticationError(status=401" in repr(unknown.value)
