"""Fault injection: a real ``runledger serve`` is SIGKILLed several times while clients write
to it concurrently; after each restart every acknowledged write (a 202 with a run id) is in
the ledger, and at the end ``runledger verify`` passes. Both backends; a round is under a
second of writing plus a restart."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.e2e.conftest import Server
from tests.e2e.helpers import register

ROUNDS = 3
WRITERS = 3
WRITE_SECONDS = 0.7
QUICK = {"name": "quick", "tasks": [{"name": "say", "command": ["echo", "hi"]}]}


def write_until_killed(server: Server, token: str, workflow: str, acknowledged: list[str]) -> None:
    """Trigger runs from ``WRITERS`` threads until the server dies; the run ids it answered."""

    def writer() -> None:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
            while True:
                try:
                    response = client.post(
                        f"/api/workflows/{workflow}/trigger", json={"parameters": {}}, timeout=5
                    )
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 202:
                    acknowledged.append(str(response.json()["run_id"]))
                elif response.status_code >= 500:
                    return

    threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    time.sleep(WRITE_SECONDS)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=15)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_every_acknowledged_write_survives_repeated_sigkills_and_verify_passes(
    server_factory: Callable[..., Server],
) -> None:
    workflow = f"fault-{uuid.uuid4().hex[:8]}"
    server = server_factory()
    token = server.token("operator")
    with server.client("operator") as client:
        register(client, QUICK | {"name": workflow})
    acknowledged: list[str] = []
    for _ in range(ROUNDS):
        before = len(acknowledged)
        write_until_killed(server, token, workflow, acknowledged)
        assert server.process.returncode == -signal.SIGKILL
        assert len(acknowledged) > before, "the round acknowledged writes before the kill"
        server = server_factory()  # the same database, a new process
        with server.client(None, token=token) as client:
            for run_id in acknowledged[before:]:  # (earlier rounds' were checked already)
                events = client.get(f"/api/runs/{run_id}/events")
                assert events.status_code == 200, (run_id, events.text)
                assert events.json()["events"][0]["type"] == "Run.Triggered"
    assert len(set(acknowledged)) == len(acknowledged)
    with server.client(None, token=token) as client:  # and the earlier rounds' are still there
        for run_id in acknowledged[::7]:
            assert client.get(f"/api/runs/{run_id}/events").status_code == 200
    done = server.cli("verify", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
