"""Workspaces from the command line and the Python client (SPEC 9): ``runledger workspaces``,
``tokens create --workspace``, ``Client(workspace=...)`` and ``--workspace`` /
``RUNLEDGER_WORKSPACE`` on the commands through the server."""

from __future__ import annotations

import json
import subprocess
import uuid

from runledger import Client
from tests.builders import DEFINITION
from tests.e2e import forked
from tests.e2e.conftest import Server


def remote(server: Server, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``runledger ARGS`` through the server, with ``env`` over the server's environment (forked
    from a process that imported the CLI already)."""
    return forked.call(list(args), env=server.env | env)


def test_a_workspace_made_on_the_command_line_confines_its_tokens_client_and_commands(
    shared_server: Server,
) -> None:
    server = shared_server
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert server.cli("workspaces", "create", name).stdout.strip() == name
    again = server.cli("workspaces", "create", name, check=False)
    assert again.returncode == 2 and "exists" in again.stderr
    listed = server.cli("workspaces", "list").stdout.splitlines()
    assert listed[0] == "default" and name in listed
    missing = server.cli(
        "tokens", "create", "--role", "auditor", "--name", "x", "--workspace", "nope-x", check=False
    )
    assert missing.returncode == 2 and "no workspace 'nope-x'" in missing.stderr and missing.stdout == ""

    operator = server.cli(
        "tokens", "create", "--role", "operator", "--name", f"{name}-op", "--workspace", name
    )
    assert f"for workspaces {name}" in operator.stderr
    row = json.loads(
        next(
            line
            for line in server.cli("tokens", "list", "--json").stdout.splitlines()
            if f"{name}-op" in line
        )
    )
    assert row["workspaces"] == [name]

    with Client(server.url, operator.stdout.strip()) as client:  # (its only workspace)
        assert client.workspaces() == [name]
        client.workflows.register(DEFINITION)
        run = client.trigger("etl", {"query": f"{name}-q"})
    with Client(server.url, server.admin_token, workspace=name) as admin_there:
        assert admin_there.runs.get(run.run_id).workspace == name
        assert [w.name for w in admin_there.workflows.list()] == ["etl"]
        assert admin_there.workspaces()[0] == "default" and name in admin_there.workspaces()
    with Client(server.url, server.admin_token) as admin_default:  # (a '*' token: default)
        assert run.run_id not in {r.run_id for r in admin_default.runs.list(workflow="etl", limit=1000)}

    env = {"RUNLEDGER_URL": server.url, "RUNLEDGER_TOKEN": server.admin_token}
    shown = remote(server, "runs", "show", run.run_id, "--json", "--workspace", name, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["workspace"] == name
    hidden = remote(server, "runs", "show", run.run_id, "--json", "--workspace", "default", env=env)
    assert hidden.returncode == 2 and "404" in hidden.stderr, hidden.stderr
    from_env = remote(server, "runs", "show", run.run_id, "--json", env=env | {"RUNLEDGER_WORKSPACE": name})
    assert from_env.returncode == 0 and json.loads(from_env.stdout)["run_id"] == run.run_id
