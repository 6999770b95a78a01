"""``runledger tokens create|list|revoke`` as real processes against a served database."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem


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


@pytest.mark.parametrize("shared_server", ["sqlite"], indirect=True)  # argument handling only
def test_tokens_commands_refuse_bad_usage_with_exit_code_2(shared_server: Server) -> None:
    bad_role = shared_server.cli("tokens", "create", "--role", "root", "--name", "x", check=False)
    assert bad_role.returncode == 2 and bad_role.stdout == ""
    unknown = shared_server.cli("tokens", "revoke", "no-such-token", check=False)
    assert unknown.returncode == 2
    assert "no active token" in unknown.stderr
