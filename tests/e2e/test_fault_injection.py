"""Fault injection: a real ``runledger serve`` is SIGKILLed several times while clients write
to it concurrently; after each restart every acknowledged write (a 202 with a run id) is in
the ledger, no run id was answered twice, and at the end ``runledger verify`` passes. Both
backends, a few seconds each: the servers are forked from a process that imported them
already (:mod:`tests.e2e.forked`), so a restart costs no interpreter start."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.e2e import forked
from tests.e2e.conftest import START_TIMEOUT, free_port
from tests.e2e.helpers import register

ROUNDS = 3
WRITERS = 3
#: A round's kill comes once this many writes were acknowledged (and a random moment more),
#: so it lands while the writers are busy, however slow the machine is.
ACKNOWLEDGED_BEFORE_KILL = 15
QUICK = {"name": "quick", "tasks": [{"name": "say", "command": ["echo", "hi"]}]}


@dataclass
class Killable:
    """One ``runledger serve`` (projections on, no executor) in a forked process."""

    url: str
    process: BaseProcess
    stderr: Path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process.is_alive(), f"serve exited {self.process.exitcode}: {self.logs()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer in time: {self.logs()}"
            time.sleep(0.05)

    def kill(self) -> int | None:
        self.process.kill()  # SIGKILL
        self.process.join(10)
        return self.process.exitcode

    def logs(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:]


def serve(database_url: str, workdir: Path, round_: int) -> Killable:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNLEDGER_DATABASE_URL": database_url,
        "RUNLEDGER_DATA_DIR": str(workdir / "state"),
        "RUNLEDGER_LOG_FORMAT": "json",
    }
    argv = ["serve", "--host", "127.0.0.1", "--port", str(port), "--no-executor"]
    stdout, stderr = workdir / f"serve{round_}.out", workdir / f"serve{round_}.err"
    process = forked.start(argv, env=env, cwd=workdir, stdout=stdout, stderr=stderr)
    server = Killable(f"http://127.0.0.1:{port}", process, stderr)
    try:
        server.wait_ready()
    except BaseException:
        server.kill()
        raise
    return server


def write_until_killed(server: Killable, token: str, workflow: str, acknowledged: list[str]) -> int | None:
    """Trigger runs from ``WRITERS`` threads, SIGKILL the server in the middle of it; the run
    ids it answered 202 for are appended to ``acknowledged``. Returns its exit code."""
    enough = len(acknowledged) + ACKNOWLEDGED_BEFORE_KILL

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
    deadline = time.monotonic() + 20
    while len(acknowledged) < enough and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    time.sleep(random.uniform(0, 0.05))
    code = server.kill()
    for thread in threads:
        thread.join(timeout=15)
    return code


def stored(server: Killable, token: str, run_ids: list[str]) -> list[str]:
    """Those of ``run_ids`` whose events start with ``Run.Triggered`` in the ledger."""
    found = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for run_id in run_ids:
            events = client.get(f"/api/runs/{run_id}/events")
            if events.status_code == 200 and events.json()["events"][0]["type"] == "Run.Triggered":
                found.append(run_id)
    return found


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_every_acknowledged_write_survives_repeated_sigkills_and_verify_passes(
    database_url: str, tmp_path: Path
) -> None:
    workflow = f"fault-{uuid.uuid4().hex[:8]}"
    server = serve(database_url, tmp_path, 0)
    admin = (tmp_path / "state" / "admin-token").read_text().strip()
    made = httpx.post(
        f"{server.url}/api/tokens",
        json={"role": "operator", "name": "fault-writer"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 201, made.text
    token = str(made.json()["token"])
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as client:
        register(client, QUICK | {"name": workflow})
    acknowledged: list[str] = []
    try:
        for round_ in range(1, ROUNDS + 1):
            before = len(acknowledged)
            assert write_until_killed(server, token, workflow, acknowledged) == -signal.SIGKILL
            assert len(acknowledged) > before, "the round acknowledged writes before the kill"
            server = serve(database_url, tmp_path, round_)  # the same database, a new process
            fresh = acknowledged[before:]  # (earlier rounds' were checked already)
            assert stored(server, token, fresh) == fresh
        assert len(set(acknowledged)) == len(acknowledged), "a run id was answered twice"
        sample = acknowledged[::7]  # and the earlier rounds' are still there
        assert stored(server, token, sample) == sample
    finally:
        server.kill()
    env = {
        "PATH": "/usr/bin:/bin",
        "RUNLEDGER_DATABASE_URL": database_url,
        "RUNLEDGER_DATA_DIR": str(tmp_path / "state"),
        "RUNLEDGER_LOG_FORMAT": "json",
    }
    code, out, err = forked.run(["verify", "--json"], env=env, cwd=tmp_path)
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] and report["problem_count"] == 0, report
    # every acknowledged trigger (one event each) and the workflow's registration, at least
    assert report["events_checked"] >= len(acknowledged) + 1, report
