"""Task processes outliving their executor, and how a starting executor ends them.

A task's own process gets SIGKILL the moment its executor dies (a parent-death signal, in
:mod:`executor.process`); what it spawned is only reached through its process group. Every
task's environment names its executor (``RUNLEDGER_EXECUTOR``: the executor's pid and its
start time, so a reused pid is told apart), and an executor starting kills the process group
of every process whose named executor is gone. Nothing is written per task: the marker
travels with the processes themselves.
"""

from __future__ import annotations

import os
import signal
from functools import cache
from pathlib import Path

import structlog

log = structlog.get_logger()

MARKER = "RUNLEDGER_EXECUTOR"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@cache
def _identity(pid: int) -> str:
    return f"{pid}:{_start_time(pid)}"


def executor_identity() -> str:
    """This process as tasks name it in ``RUNLEDGER_EXECUTOR``."""
    return _identity(os.getpid())


def _alive(identity: str) -> bool:
    pid, _, started = identity.partition(":")
    return pid.isdigit() and _start_time(int(pid)) == started


def reap_leftover_groups() -> list[int]:
    """SIGKILL the process groups of task processes whose executor is dead; those groups."""
    prefix = f"{MARKER}=".encode()
    orphaned: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            marks = [v for v in (entry / "environ").read_bytes().split(b"\0") if v.startswith(prefix)]
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and marks:
            owner = marks[0][len(prefix) :].decode(errors="replace")
            if not _alive(owner):
                orphaned[int(fields[2])] = owner
    for pgid, owner in orphaned.items():
        try:
            os.killpg(pgid, signal.SIGKILL)
            log.info("leftover_task_group_killed", pgid=pgid, executor=owner)
        except (ProcessLookupError, PermissionError):
            pass
    return sorted(orphaned)
