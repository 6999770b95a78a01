"""Task process groups outliving their executor, and how a restarted executor ends them.

A task's direct process gets SIGKILL the moment its executor dies (``PR_SET_PDEATHSIG``, in
:mod:`executor.process`); what it spawned in its group is only reached through the group.
So each running attempt leaves a note, ``<logs dir>/<task>.<attempt>.pgid``, naming its group,
its run and the executor process; an executor starting on the same run directories kills
every noted group whose executor is gone and which still holds a process of that run (its
environment names the run: a reused process group id is never touched).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import structlog

log = structlog.get_logger()


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def record_group(note: Path, *, pgid: int, run_id: str) -> None:
    owner = os.getpid()
    facts = {"pgid": pgid, "run_id": run_id, "owner_pid": owner, "owner_start": _start_time(owner)}
    note.write_text(json.dumps(facts))


def _members(pgid: int, run_id: str) -> list[int]:
    """Live processes of group ``pgid`` whose environment names ``run_id``."""
    marker = f"RUNLEDGER_RUN_ID={run_id}".encode()
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                members.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return members


def reap_leftover_groups(run_work_dir: Path) -> list[int]:
    """SIGKILL the task groups that executors now dead left behind; the groups killed."""
    killed = []
    for note in sorted(run_work_dir.glob(".logs/*/*.pgid")):
        try:
            facts = json.loads(note.read_text())
            pgid, run_id = int(facts["pgid"]), str(facts["run_id"])
            owner, owner_start = int(facts["owner_pid"]), facts.get("owner_start")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner_start is not None and _start_time(owner) == owner_start:
            continue  # its executor still runs: the group is that executor's to end
        if _members(pgid, run_id):
            try:
                os.killpg(pgid, signal.SIGKILL)
                killed.append(pgid)
                log.info("leftover_task_group_killed", run_id=run_id, pgid=pgid)
            except (ProcessLookupError, PermissionError):
                pass
        note.unlink(missing_ok=True)
    return killed
