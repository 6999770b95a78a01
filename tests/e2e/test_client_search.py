"""Labels and ``q`` through the Python client and the ``runledger`` CLI against a real server:
``trigger(labels=)``, ``run.label(...)``, ``runs.list(q=, labels=, status=[...])``,
``stats(q=)``; ``--label``, ``runs label``, ``runs list -q`` and repeated ``--status``; a bad
expression as a 422 error naming the position (exit 2 for the CLI)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from runledger import RunledgerError
from tests.builders import eventually
from tests.e2e.client_helpers import async_client_for, client_for
from tests.e2e.conftest import Server
from tests.e2e.helpers import pipeline
from tests.e2e.test_cli_client import registered, rl


def test_the_client_labels_runs_and_searches_them(shared_server: Server, tmp_path: Path) -> None:
    team = f"t-{uuid.uuid4().hex[:8]}"
    with client_for(shared_server, "operator", tmp_path) as client:
        name = client.workflows.register(pipeline()).name
        run = client.trigger(name, {"query": "a"}, labels={"team": team})
        other = client.trigger(name, {"query": "b"})
        assert run.labels == {"team": team}
        labelled = run.label({"stage": "qa"}, ["team"], reason="handover")
        assert labelled.labels == {"stage": "qa"}
        other.cancel()
        q = f'workflow = "{name}" AND (label.stage = "qa" OR status = "killed")'
        found = eventually(
            lambda: (
                [r.run_id for r in client.runs.list(q=q)] if len(list(client.runs.list(q=q))) == 2 else None
            )
        )
        assert found == [other.run_id, run.run_id]
        assert [r.run_id for r in client.runs.list(labels={"stage": "qa"}, workflow=name)] == [run.run_id]
        both = client.runs.list(status=["killed", "pending"], workflow=name)
        assert [r.run_id for r in both] == [other.run_id, run.run_id]
        assert client.stats(q=q).total_runs == 2
        with pytest.raises(RunledgerError) as caught:
            list(client.runs.list(q="status = "))
        assert caught.value.status == 422 and "at position 10" in caught.value.detail
        reasons = eventually(
            lambda: (
                [e.reason for e in run.audit().entries if e.action == "labelled"] or None
                if len([e for e in run.audit().entries if e.action == "labelled"]) == 2
                else None
            )
        )
        assert reasons == [None, "handover"]


def test_a_batch_from_the_client_labels_every_run_and_q_finds_them(
    shared_server: Server, tmp_path: Path
) -> None:
    team = f"t-{uuid.uuid4().hex[:8]}"
    with client_for(shared_server, "operator", tmp_path) as client:
        name = client.workflows.register(pipeline()).name
        batch = client.trigger_batch(name, ["a", "b", "c"], "query", parallelism=2, labels={"team": team})
        assert [client.runs.get(run_id).labels for run_id in batch.run_ids] == [{"team": team}] * 3
        q = f'label.team = "{team}"'
        found = eventually(lambda: sorted(r.run_id for r in client.runs.list(q=q)) or None)
        assert found == sorted(batch.run_ids)
        unlabelled = client.trigger_batch(name, ["d"], "query")
        assert client.runs.get(unlabelled.run_ids[0]).labels == {}


def test_a_batch_from_the_async_client_labels_every_run(shared_server: Server, tmp_path: Path) -> None:
    team = f"t-{uuid.uuid4().hex[:8]}"

    async def main() -> list[dict[str, str]]:
        async with async_client_for(shared_server, "operator", tmp_path) as client:
            name = (await client.workflows.register(pipeline())).name
            batch = await client.trigger_batch(name, ["a", "b"], "query", labels={"team": team})
            return [(await client.runs.get(run_id)).labels for run_id in batch.run_ids]

    assert asyncio.run(main()) == [{"team": team}] * 2


def test_the_cli_labels_and_searches(shared_server: Server, tmp_path: Path) -> None:
    name = registered(shared_server, tmp_path)
    run_id = rl(
        shared_server, "trigger", name, "-p", "query=x", "--label", "team=ml", "--label", "env=dev"
    ).stdout.strip()
    done = rl(
        shared_server,
        "runs",
        "label",
        run_id,
        "--set",
        "env=prod",
        "--remove",
        "team",
        "--reason",
        "promoted",
    )
    assert '{"env": "prod"}' in done.stderr + done.stdout
    expression = f'workflow = "{name}" AND label.env = "prod" AND label.team IS NULL'

    def listed() -> list[str] | None:
        out = rl(shared_server, "runs", "list", "-q", expression, "--json", role="auditor").stdout
        ids = [json.loads(line)["run_id"] for line in out.splitlines()]
        return ids or None

    assert eventually(listed) == [run_id]
    statuses = rl(
        shared_server,
        "runs",
        "list",
        "--workflow",
        name,
        "--status",
        "killed",
        "--status",
        "pending",
        "--json",
    )
    assert [json.loads(line)["run_id"] for line in statuses.stdout.splitlines()] == [run_id]
    bad = rl(shared_server, "runs", "list", "-q", 'label.env = "prod" AND', check=False)
    assert bad.returncode == 2 and "position 23" in bad.stderr
