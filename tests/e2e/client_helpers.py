"""What the client tests share: a worker that completes a run through the API (no executor
needed), and a client of a server for a role."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from runledger import AsyncClient, Client
from tests.builders import eventually
from tests.e2e.conftest import Server
from tests.e2e.test_api_runs import OUT_TXT, STDOUT, successful_reports, upload

#: A claim takes the oldest pending run, so reaching ours may first take every run other tests
#: of the shared server left pending; under load that is slow.
CLAIM_TIMEOUT = 90.0


def claim(worker: httpx.Client, run_id: str, worker_id: str) -> None:
    def attempt() -> bool:
        response = worker.post("/api/runs/claim", json={"worker_id": worker_id})
        assert response.status_code in (200, 204), response.text
        return response.status_code == 200 and response.json()["run_id"] == run_id

    eventually(attempt, timeout=CLAIM_TIMEOUT, interval=0.05)


def complete(server: Server, run_id: str, *, worker_id: str = "w1") -> None:
    """Claim ``run_id`` as a worker and report both tasks done and the run succeeded."""
    with server.client("operator") as operator, server.client("worker") as worker:
        out, stdout = upload(operator, OUT_TXT), upload(operator, STDOUT)
        claim(worker, run_id, worker_id)
        response = worker.post(
            f"/api/runs/{run_id}/events",
            json={"worker_id": worker_id, "events": successful_reports(out, stdout)},
        )
        assert response.status_code == 200, response.text


def client_for(server: Server, role: str, tmp_path: Path, **options: object) -> Client:
    token = server.admin_token if role == "admin" else server.token(role)
    return Client(server.url, token, trusted_digest=tmp_path / f"digest-{role}.json", **options)  # type: ignore[arg-type]


def async_client_for(server: Server, role: str, tmp_path: Path) -> AsyncClient:
    token = server.admin_token if role == "admin" else server.token(role)
    return AsyncClient(server.url, token, trusted_digest=tmp_path / f"digest-async-{role}.json")


def cli_env(server: Server, role: str = "operator", **extra: str) -> dict[str, str]:
    """The environment of a CLI process that talks to ``server`` over HTTP (no database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    token = server.admin_token if role == "admin" else server.token(role)
    return env | {"RUNLEDGER_URL": server.url, "RUNLEDGER_TOKEN": token} | extra
