"""A real PostgreSQL restart under a running ``runledger serve`` (its own throwaway cluster, see
:mod:`tests.e2e.pgcluster`; the shared server is never restarted): while the database is down
``/readyz`` says not ready and names the loops that are down; once it is back every long-lived
loop (projection runner, executor, lease monitor, Merkle follower) reports ``ok`` again, runs
are executed and listed, and the Merkle tree follows the ledger."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.builders import eventually
from tests.e2e.conftest import Server, start_server
from tests.e2e.helpers import register
from tests.e2e.pgcluster import Cluster, throwaway_cluster
from tests.e2e.test_outages import QUICK, run_to_success

LOOPS = {"projections", "executor", "lease-monitor", "merkle-follower"}


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        yield cluster


def tree_size(url: str) -> int:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute("SELECT tree_size FROM runledger_merkle_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def readiness(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    try:
        response = client.get("/readyz", timeout=5)  # it answers within 2 s
    except httpx.HTTPError as exc:
        return 0, {"error": repr(exc)}
    body: dict[str, Any] = response.json()
    return response.status_code, body


@pytest.mark.postgres
def test_every_loop_survives_a_postgresql_restart_and_readyz_reports_the_outage(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Loops waiting for a pooled connection give up (and report down) after 2 s, not 10.
    env = {"RUNLEDGER_POOL_TIMEOUT_SECONDS": "2"}
    server: Server = start_server(cluster.url, tmp_path / "server", executor=True, env=env)
    try:
        workflow = f"restart-{uuid.uuid4().hex[:8]}"
        with server.client("operator") as client:
            register(client, QUICK | {"name": workflow})
            before = run_to_success(client, workflow)

            def all_ok() -> dict[str, Any]:
                status, body = readiness(client)
                assert status == 200, body
                assert set(body["loops"]) >= LOOPS, body
                assert set(body["loops"].values()) == {"ok"}, body
                return body

            eventually(all_ok, timeout=30)

            cluster.stop()
            outage: list[dict[str, Any]] = []
            deadline = time.monotonic() + 12
            # Every loop notices on its own (the executor and lease monitor poll, the runner
            # and follower wait on their connections): wait until all four are reported down.
            while time.monotonic() < deadline:
                status, body = readiness(client)
                assert status != 200, f"/readyz said ready with the database down: {body}"
                outage.append(body)
                if set(body.get("loops_down", {})) >= LOOPS:
                    break
                time.sleep(0.2)
            down = set().union(*(b.get("loops_down", {}) for b in outage))
            assert down >= LOOPS, f"loops never reported down during the outage: {outage[-3:]}"
            assert server.process.poll() is None, "the server survives the outage"

            cluster.start()
            body = eventually(all_ok, timeout=40)  # every loop reconnects with backoff
            assert "loops_down" not in body

            after = run_to_success(client, workflow)  # claimed, executed, projected
            listed = client.get("/api/runs", params={"workflow": workflow, "limit": 10}).json()
            assert {before, after} <= {r["run_id"] for r in listed["runs"]}
            size = int(client.get("/readyz").json()["ledger_size"])
            eventually(lambda: tree_size(cluster.url) >= size, timeout=20)
        logged = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
        failed = {e.get("loop") for e in logged if e.get("event") == "loop_failed"}
        recovered = {e.get("loop") for e in logged if e.get("event") == "loop_recovered"}
        assert failed >= LOOPS, failed
        assert recovered >= LOOPS, recovered
    finally:
        server.stop()
        server.close_clients()
