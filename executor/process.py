"""Running one command as its own process group, with a timeout and a way to stop it.

The command is exec'd (``shell=False``) in a new session, so it and everything it spawns
share one process group that can be signalled as a whole: SIGTERM first, SIGKILL after a
grace period. The command's own process also gets SIGKILL when the executor dies: a
parent-death signal, set after the child dropped to the task user (a change of user clears
it), by ``setpriv --pdeathsig`` exec'ing the command (``preexec_fn`` would do, but it makes
every spawn a full ``fork`` instead of a ``vfork``: about 15 ms more per task), else in
``preexec_fn`` where there is no ``setpriv``. What the command spawned is reached through
its group (:mod:`executor.groups`).
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from executor.sandbox import TaskUser

KILL_GRACE_SECONDS = 2.0
PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl
SETPRIV = shutil.which("setpriv")


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int | None
    pid: int | None
    timed_out: bool = False
    stopped: bool = False
    error: str | None = None


def kill_group(
    pid: int, grace: float = KILL_GRACE_SECONDS, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group ``pid``, then SIGKILL it if anything is left after ``grace``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            proc.poll()
        if not _group_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ExitWaiter:
    """Waits up to a timeout for a child to exit, waking the moment it does.

    With a pidfd (Linux 5.3+) the wait is a ``select`` on it; otherwise it falls back to
    ``Popen.wait(timeout)``, whose sleep-and-poll loop can add a few milliseconds per task.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        try:
            self.fd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self.fd = None

    def __call__(self, timeout: float) -> bool:
        if self.fd is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return bool(ready)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child, between fork and exec: no locks, no allocation
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the executor died before the signal was set
            os._exit(137)

    return preexec


def _program(name: str, cwd: str | os.PathLike[str], env: dict[str, str]) -> str | None:
    """Where ``exec`` would find ``name`` (None: nowhere), as ``setpriv`` will look."""
    if os.sep in name:
        path = os.path.join(cwd, name)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which(name, path=env.get("PATH", os.defpath))


def run_process(
    argv: list[str],
    *,
    cwd: str | os.PathLike[str],
    env: dict[str, str],
    stdout: BinaryIO,
    stderr: BinaryIO,
    timeout: float | None,
    stop: threading.Event,
    user: TaskUser | None = None,
) -> ProcessResult:
    """Run ``argv`` to completion, or until ``timeout`` seconds pass or ``stop`` is set."""
    if SETPRIV is not None and _program(argv[0], cwd, env) is None:
        return ProcessResult(exit_code=None, pid=None, error=f"could not start: no program {argv[0]!r}")
    launch = argv if SETPRIV is None else [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    try:
        proc = subprocess.Popen(
            launch,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            shell=False,
            start_new_session=True,
            close_fds=True,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
            preexec_fn=_die_with(os.getpid()) if SETPRIV is None else None,
        )
    except OSError as exc:
        return ProcessResult(exit_code=None, pid=None, error=f"could not start: {exc}")
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = stopped = False
    exited = _ExitWaiter(proc)
    while True:
        if exited(0.1):
            proc.wait()
            break
        if stop.is_set():
            stopped = True
        elif deadline is not None and time.monotonic() >= deadline:
            timed_out = True
        if stopped or timed_out:
            kill_group(proc.pid, proc=proc)
            proc.wait()
            break
    # Whatever the command left running in its group goes with it.
    if _group_alive(proc.pid):
        kill_group(proc.pid, grace=0.5)
    error = None
    exited.close()
    if timed_out:
        error = f"timed out after {timeout:g} s"
    elif stopped:
        error = "stopped"
    return ProcessResult(
        exit_code=proc.returncode, pid=proc.pid, timed_out=timed_out, stopped=stopped, error=error
    )
