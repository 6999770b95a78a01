"""A real ``runledger serve`` subprocess for the benchmarks, with its tokens and its peak RSS."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench.common import ROOT, rss_kb, tree_pids

RUNLEDGER = str(Path(sys.executable).parent / "runledger")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def runledger_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RUNLEDGER_DATABASE_URL": database_url,
            "RUNLEDGER_DATA_DIR": str(data_dir),
            "RUNLEDGER_LOG_LEVEL": "warning",
            "RUNLEDGER_LOG_FORMAT": "json",
        }
    )
    return env


def tree_env(env: dict[str, str], tree: Path) -> dict[str, str]:
    """``env`` for running the code of ``tree`` (first on ``PYTHONPATH``) when it is not this one."""
    return env if tree == ROOT else env | {"PYTHONPATH": str(tree)}


def cli(env: dict[str, str], *args: str, timeout: float = 600, cwd: Path = ROOT) -> str:
    """Run ``runledger ARGS`` and return its stdout (raises with stderr on failure)."""
    done = subprocess.run(
        [RUNLEDGER, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    if done.returncode != 0:
        raise RuntimeError(f"runledger {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


class PeakRss:
    """Samples the process tree's RSS every ``interval`` seconds; keeps the peak of the sum."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def sample(self) -> None:
        current = sum(rss_kb(p)[0] for p in tree_pids(self.pid))
        self.peak_kb = max(self.peak_kb, current)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> int:
        self.sample()
        self._stop.set()
        self._thread.join()
        return self.peak_kb


class RunledgerServer:
    """``runledger serve --no-executor`` on a free port of 127.0.0.1; stopped by its own pid.

    ``tree``: the source tree whose code runs (another checkout of the project, on
    ``PYTHONPATH``, with this venv's dependencies); this one by default."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        *,
        extra: tuple[str, ...] = (),
        log_path: Path | None = None,
        tree: Path = ROOT,
    ) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tree = tree
        self.env = tree_env(runledger_env(database_url, data_dir), tree)
        self.extra = extra
        self.log_path = log_path or data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss: PeakRss | None = None
        self.peak_rss_kb = 0

    def token(self, role: str) -> str:
        return (
            cli(
                self.env,
                *("tokens", "create", "--role", role, "--name", f"bench-{role}-{time.monotonic_ns()}"),
                cwd=self.tree,
            )
            .strip()
            .splitlines()[-1]
        )

    def command(self) -> list[str]:
        return [
            RUNLEDGER,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-executor",
            *self.extra,
        ]

    def start(self) -> RunledgerServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tree,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"runledger serve exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError(f"runledger serve did not become healthy; see {self.log_path}")
        self.rss = PeakRss(self.proc.pid).start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.rss is not None:
            self.peak_rss_kb = max(self.peak_rss_kb, self.rss.stop())
            self.rss = None
        pids = tree_pids(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for pid in pids[1:]:  # stragglers of the tree we started, one by one
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc = None

    def __enter__(self) -> RunledgerServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "database_url": self.database_url, "extra": list(self.extra)}


class NullServer(RunledgerServer):
    """:mod:`bench.null_server` (runledger's HTTP stack, no store) in place of the ledger."""

    def __init__(self, data_dir: Path, *, log_path: Path | None = None) -> None:
        super().__init__("none", data_dir, log_path=log_path)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.null_server", "--port", str(self.port)]

    def token(self, role: str) -> str:
        return f"null-{role}"  # the null server only checks that a bearer token is sent
