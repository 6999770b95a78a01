"""The ``server`` fixture: a real ``runledger serve`` subprocess on a free 127.0.0.1 port with a
database of its own (SQLite or PostgreSQL, via ``database_url``), stopped after the test.

``server_factory(executor=False, projections=True, workers=1, env=None, script=False)`` starts
more (or differently configured) servers; ``server`` is one with the defaults (no executor).
Servers are forked from a process that imported ``runledger serve`` already
(:mod:`tests.e2e.forked`), but for ``script=True`` or several workers: the console script.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, fresh_database_url
from tests.e2e import forked

RUNLEDGER = str(Path(sys.executable).with_name("runledger"))
START_TIMEOUT = 30.0
SHARED_BODY_LIMIT = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    admin_token: str
    database_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | forked.Forked
    state_dir: Path
    stdout_path: Path
    stderr_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list, repr=False)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``runledger ARGS`` against this server's database (forked from a process that
        imported the CLI already, or the real script when it reads ``input``)."""
        if input is None:
            done = forked.call(list(args), env=self.env, timeout=timeout)
        else:
            done = subprocess.run(
                [RUNLEDGER, *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                check=False,
            )
        if check and done.returncode != 0:
            raise AssertionError(f"runledger {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def token(self, role: str, name: str | None = None, *, via_cli: bool = False) -> str:
        """A token of ``role`` (cached per role), made through the admin API, or with
        ``runledger tokens create`` when ``via_cli``."""
        if name is None and role in self.tokens:
            return self.tokens[role]
        name = name or f"test-{role}"
        if via_cli:
            token = self.cli("tokens", "create", "--role", role, "--name", name).stdout.strip()
        else:
            response = httpx.post(
                f"{self.url}/api/tokens",
                json={"role": role, "name": name},
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
            assert response.status_code == 201, response.text
            token = str(response.json()["token"])
        if name == f"test-{role}":
            self.tokens[role] = token
        return token

    def client(self, role: str | None = "admin", *, token: str | None = None) -> httpx.Client:
        """A client of this server as ``role`` (or with ``token``); the fixture that started
        the server closes it afterwards, if the test did not."""
        headers = {}
        if token is None and role is not None:
            token = self.admin_token if role == "admin" else self.token(role)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.wait())


@contextmanager
def serving(
    backend: str, tmp_path_factory: pytest.TempPathFactory, name: str, **options: Any
) -> Iterator[Server]:
    """A ``runledger serve`` (``start_server`` ``options``) on a fresh database of
    ``backend`` in a new temporary directory, stopped afterwards."""
    workdir = tmp_path_factory.mktemp(name)
    with fresh_database_url(backend, workdir) as url:
        server = start_server(url, workdir, **options)
        try:
            yield server
        finally:
            server.stop()
            server.close_clients()


def start_server(
    database_url: str,
    workdir: Path,
    *,
    executor: bool = False,
    projections: bool = True,
    workers: int = 1,
    env: dict[str, str] | None = None,
    script: bool = False,
) -> Server:
    """``runledger serve`` in a process forked from one that imported it already (a fraction
    of the seconds a fresh interpreter spends importing it), or, with ``script`` or more than
    one worker, the console script itself."""
    workdir.mkdir(parents=True, exist_ok=True)
    state_dir = workdir / "state"
    port = free_port()
    full_env = {
        **os.environ,
        "RUNLEDGER_DATABASE_URL": database_url,
        "RUNLEDGER_DATA_DIR": str(state_dir),
        "RUNLEDGER_LOG_FORMAT": "json",
        # the views follow a test's writes within 20 ms (the default window, 100 ms, saves CPU
        # per event in production; tests that read a listing right after a write wait less)
        "RUNLEDGER_PROJECTION_BATCH_MS": "20",
        **(env or {}),
    }
    args = [RUNLEDGER, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not executor:
        args.append("--no-executor")
    if not projections:
        args.append("--no-projections")
    if workers != 1:
        args += ["--workers", str(workers)]
    stdout_path, stderr_path = workdir / "serve.out", workdir / "serve.err"
    process: subprocess.Popen[bytes] | forked.Forked
    if script or workers != 1:
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(args, env=full_env, stdout=out, stderr=err, cwd=workdir)
    else:
        started = forked.start(args[1:], env=full_env, cwd=workdir, stdout=stdout_path, stderr=stderr_path)
        process = forked.Forked(started)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"runledger serve exited {process.returncode}:\n"
                f"{stderr_path.read_text(errors='replace')[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(
                "runledger serve did not answer /healthz in time:\n"
                f"{stderr_path.read_text(errors='replace')[-4000:]}"
            )
        time.sleep(0.1)
    token_file = state_dir / "admin-token"
    admin_token = token_file.read_text().strip() if token_file.exists() else ""
    return Server(
        url=url,
        admin_token=admin_token,
        database_url=database_url,
        env=full_env,
        process=process,
        state_dir=state_dir,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
    )


@pytest.fixture
def server_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def factory(**options: Any) -> Server:
        server = start_server(database_url, tmp_path / f"server{len(started)}", **options)
        if not server.admin_token and started:  # same database: the first admin token holds
            server.admin_token = started[0].admin_token
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
            server.close_clients()


@pytest.fixture
def server(server_factory: Callable[..., Server]) -> Server:
    return server_factory()


@pytest.fixture(scope="session", params=BACKENDS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per test session and backend, for tests that do not need an empty ledger
    (they use names of their own and never revoke the shared tokens). Saves a server start
    per test. Its body limit is ``SHARED_BODY_LIMIT`` bytes."""
    env = {"RUNLEDGER_MAX_BODY_BYTES": str(SHARED_BODY_LIMIT)}
    with serving(request.param, tmp_path_factory, "shared", env=env) as server:
        yield server
