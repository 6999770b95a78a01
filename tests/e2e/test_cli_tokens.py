"""``runledger tokens create|list|revoke`` as real processes against a served database."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger


def test_tokens_create_prints_the_token_alone_and_it_works_until_revoked(
    shared_server: Server,
) -> None:
    created = shared_server.cli("tokens", "create", "--role", "auditor", "--name", "cli-made")
    assert re.fullmatch(r"rl_[A-Za-z0-9_-]{40,}\n", created.stdout)
    token = created.stdout.strip()
    with shared_server.client(None, token=token) as client:
        assert client.get("/api/runs").status_code == 200

        listed = shared_server.cli("tokens", "list").stdout
        line = next(row for row in listed.splitlines() if "\tcli-made\t" in row)
        assert "\tauditor\t" in line and line.split("\t")[4:] == ["active", "*"]
        assert token not in listed

        shared_server.cli("tokens", "revoke", "cli-made")
        assert_problem(client.get("/api/runs"), 401)


def test_a_worker_token_revoked_by_the_cli_is_refused_by_the_next_report_and_claim(server: Server) -> None:
    """The ingest fast path (``api/fastpath.py``) checks the token on every request: a
    revocation by another process holds from the next request on, and writes nothing."""
    definition = pipeline()
    with server.client("operator") as operator:
        register(operator, definition)
        trigger(operator, definition["name"])
        trigger(operator, definition["name"])
    token = server.cli("tokens", "create", "--role", "worker", "--name", "engine-x").stdout.strip()
    started = {"events": [{"type": "task_started", "task": "fetch", "attempt": 1}]}
    renewed = {"events": [{"type": "lease_renewed"}]}
    with server.client(None, token=token) as worker, server.client("auditor") as auditor:
        claimed = worker.post("/api/runs/claim", json={})
        assert claimed.status_code == 200, claimed.text
        run_id = claimed.json()["run_id"]
        assert worker.post(f"/api/runs/{run_id}/events", json=started).status_code == 200
        assert worker.post(f"/api/runs/{run_id}/events", json=renewed).status_code == 200

        server.cli("tokens", "revoke", "engine-x")
        events = auditor.get("/api/ledger/digest").json()["tree_size"]
        assert_problem(worker.post(f"/api/runs/{run_id}/events", json=renewed), 401)
        assert_problem(worker.post("/api/runs/claim", json={}), 401)
        assert auditor.get("/api/ledger/digest").json()["tree_size"] == events  # nothing written


@pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)  # argument handling only
def test_tokens_commands_refuse_bad_usage_with_exit_code_2(shared_server: Server) -> None:
    bad_role = shared_server.cli("tokens", "create", "--role", "root", "--name", "x", check=False)
    assert bad_role.returncode == 2 and bad_role.stdout == ""
    unknown = shared_server.cli("tokens", "revoke", "no-such-token", check=False)
    assert unknown.returncode == 2
    assert "no active token" in unknown.stderr
