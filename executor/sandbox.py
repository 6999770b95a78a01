"""What a task may see of the host: its environment, the user it runs as, and files the
executor reads back from its run directory without following links a task could plant.

Threat model (README, "What a task can see"): a task is code an operator chose; it must not
reach the server's secrets (the admin token, the signing key, the database and its URL) nor
make the executor read a host file into the ledger. So a task gets a declared environment
only, runs as ``task_user`` when one is configured (the server running as root), and every
file the executor reads after a task ran (declared inputs and outputs, stdout, stderr, the
output-variables file) is opened without following symbolic links, through descriptors the
executor opened itself where it can, and a declared output with other hard links is refused.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from executor.groups import MARKER, executor_identity
from ledger.settings import Settings

#: Server variables a task sees (when set): a search path, a language and a time zone.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class UnsafeFile(Exception):
    """A file in the run directory is a link, not a regular file, or leaves the directory."""


@dataclass(frozen=True)
class TaskUser:
    name: str
    uid: int
    gid: int


def task_user(settings: Settings) -> TaskUser | None:
    """The configured task user, or None (tasks run as the server's user)."""
    if not settings.task_user:
        return None
    spec = settings.task_user
    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except (KeyError, ValueError):
        raise ValueError(f"RUNLEDGER_TASK_USER names no user: {spec!r}") from None
    return TaskUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def task_environment(
    settings: Settings, *, params: Mapping[str, str], run_id: str, run_dir: Path
) -> dict[str, str]:
    """A task's whole environment: never the server's secrets, tokens or database URL."""
    source = os.environ
    env = {name: source[name] for name in PASSED_THROUGH if name in source}
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    env.update({name: source[name] for name in settings.task_env_names if name in source})
    env.update(params)
    env["HOME"] = str(run_dir)
    env["RUNLEDGER_RUN_ID"] = run_id
    env[MARKER] = executor_identity()  # which executor's: see executor.groups
    return env


def prepare_run_dir(run_dir: Path, user: TaskUser | None) -> None:
    """Hand the run directory (and what the executor placed in it) to the task user."""
    if user is None:
        return
    for root, dirs, names in os.walk(run_dir):
        os.chown(root, user.uid, user.gid, follow_symlinks=False)
        for name in dirs + names:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)


def harden_data_dir(settings: Settings) -> None:
    """With a task user, the data directory can be crossed (run directories live below it)
    but not listed, and its secrets, database and file store are the server's alone."""
    if not settings.task_user:
        return
    state = settings.state_dir
    for directory in (state, settings.run_work_dir):
        if directory.is_dir():
            os.chmod(directory, 0o711)
    for secret in state.iterdir() if state.is_dir() else []:
        if secret.is_symlink() or secret == settings.run_work_dir:
            continue
        os.chmod(secret, 0o700 if secret.is_dir() else 0o600)
    database = settings.database.sqlite_path
    if database is not None and database != ":memory:":  # wherever it lives
        for path in (Path(database), Path(f"{database}-wal"), Path(f"{database}-shm")):
            if path.is_file():
                os.chmod(path, 0o600)


def _relative_parts(relative: str) -> list[str]:
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if relative.startswith("/") or ".." in parts or not parts:
        raise UnsafeFile(f"{relative!r} leaves the run directory")
    return parts


@contextmanager
def open_inside(run_dir: Path, relative: str, *, single_link: bool = False) -> Iterator[int]:
    """A read-only descriptor of the regular file ``relative`` in ``run_dir``, reached one
    component at a time without following any symbolic link; with ``single_link``, a file
    with other hard links (which could be a host file) is refused too."""
    parts = _relative_parts(relative)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    opened: list[int] = []
    try:
        current = os.open(run_dir, flags | os.O_DIRECTORY)
        opened.append(current)
        for part in parts[:-1]:
            current = os.open(part, flags | os.O_DIRECTORY, dir_fd=current)
            opened.append(current)
        fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=current)
        opened.append(fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafeFile(
            f"{relative!r} is a symbolic link (never followed: it could leave the run directory)"
            " or no plain path"
        ) from exc
    finally:
        for descriptor in opened[:-1]:
            os.close(descriptor)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{relative!r} is not a regular file")
        if single_link and info.st_nlink > 1:
            raise UnsafeFile(f"{relative!r} has other hard links; copy it instead of linking")
        yield fd
    finally:
        os.close(fd)


def create_private(path: Path, user: TaskUser | None = None) -> int:
    """A new empty file for reading and writing, refusing to follow or reuse anything that
    is already at ``path``; owned by the task user when there is one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if user is not None:
        os.fchown(fd, user.uid, user.gid)
    return fd
