"""``runledger`` commands in processes forked from one that imported the server already, for tests
that start (and SIGKILL) servers many times: a fresh ``runledger serve`` spends two or three
seconds of this machine importing FastAPI, uvicorn and the ledger before it listens; a fork of
a process that has them loaded starts in a fraction of that.

Each command is a real process of its own (``multiprocessing``'s fork server, with the CLI and
the app preloaded, forks it) that runs ``cli.main(argv)`` with the environment, working
directory and stdout/stderr files given: the same code path as the ``runledger`` script after
its imports (an exception ``main`` lets through is printed with its traceback, exit 1, as the
interpreter would). It can be signalled (SIGKILL included) and waited for like any child.

:func:`call` is ``subprocess.run([runledger, *argv], capture_output=True, text=True)`` for the
tests that run many short commands (each would spend a second or more of a loaded machine
importing the client before it sends its one request); what the console script itself does
(argv, a terminal, a closed pipe) stays tested with the real script.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

#: What ``runledger serve`` and ``runledger verify`` import before they do anything.
PRELOAD = [
    "cli",
    *(f"cli.{name}" for name in ("serve", "integrity", "runs", "workflows", "tokens", "files")),
    *(f"cli.{name}" for name in ("projections", "worker", "remote", "output", "progress")),
    *(f"api.{name}" for name in ("app", "runtime", "auth", "logging", "transport")),
    "runledger",
    "executor",
    "executor.leases",
    "projections.runner",
    "ledger.service",
    "ledger.integrity.verify",
    "ledger.integrity.merkle_follow",
    "uvicorn",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "uvicorn.loops.asyncio",
    "psycopg",
    "psycopg_pool",
]

_context: ForkServerContext | None = None


def _forkserver() -> ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _run_cli(argv: list[str], env: dict[str, str], cwd: str, stdout: str, stderr: str) -> None:
    """In the forked child: become ``runledger ARGV`` and exit with its code."""
    # What the fork server imported is never collected here: the collector would walk (and so
    # copy, page by page) the whole inherited heap the first time it runs.
    gc.freeze()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from cli import main

    code = 1
    try:
        code = main(argv)
    except SystemExit as exc:  # --help, argparse's usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # what the interpreter prints for an uncaught exception
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def start(argv: list[str], *, env: dict[str, str], cwd: Path, stdout: Path, stderr: Path) -> BaseProcess:
    """``runledger ARGV`` started in a forked process (not waited for)."""
    process = _forkserver().Process(
        target=_run_cli, args=(argv, env, str(cwd), str(stdout), str(stderr)), daemon=False
    )
    process.start()
    return process


class Forked:
    """A command started by :func:`start`, handled as a ``subprocess.Popen``: ``poll``,
    ``wait``, ``send_signal``, ``kill``, ``pid`` and ``returncode`` (negative: the signal that
    ended it)."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(["runledger"], timeout or 0.0)
        return self.process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.process.exitcode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def run(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60.0) -> tuple[int, str, str]:
    """``runledger ARGV`` to its end: its exit code, stdout and stderr."""
    out, err = cwd / "forked.out", cwd / "forked.err"
    process = start(argv, env=env, cwd=cwd, stdout=out, stderr=err)
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AssertionError(f"runledger {' '.join(argv)} did not end within {timeout} s")
    return int(process.exitcode), out.read_text(errors="replace"), err.read_text(errors="replace")


def call(
    argv: list[str], *, env: dict[str, str], cwd: Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``runledger ARGV`` to its end, its output captured as ``subprocess.run`` would (stdout and
    stderr kept in a directory of their own, so ``cwd`` gets nothing but what the command writes)."""
    with tempfile.TemporaryDirectory(prefix="runledger-forked-") as scratch:
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        process = start(argv, env=env, cwd=cwd or Path.cwd(), stdout=out, stderr=err)
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["runledger", *argv], timeout)
        stdout, stderr = (path.read_text() if path.exists() else "" for path in (out, err))
        return subprocess.CompletedProcess(["runledger", *argv], int(process.exitcode), stdout, stderr)
