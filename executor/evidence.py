"""Evidence about a task attempt: the executable, and content hashes of its files."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any, BinaryIO

from executor.sandbox import UnsafeFile, open_inside
from ledger.store.filestore import CHUNK, FileStore, sha256_of_path

HOST = socket.gethostname()


class EvidenceError(Exception):
    """A declared file is missing, lies outside the run directory, or is a link."""


def inside(run_dir: Path, relative: str) -> Path:
    """``relative`` resolved inside ``run_dir``; symlinks may not lead out of it."""
    root = run_dir.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise EvidenceError(f"{relative!r} leaves the run directory")
    return path


def _hash_fd(fd: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_inputs(run_dir: Path, paths: list[str]) -> list[dict[str, Any]]:
    refs = []
    for relative in paths:
        try:
            with open_inside(run_dir, relative) as fd:
                sha256, size = _hash_fd(fd)
        except FileNotFoundError:
            raise EvidenceError(f"declared input {relative!r} does not exist") from None
        except UnsafeFile as exc:
            raise EvidenceError(f"declared input {exc}") from None
        refs.append({"path": relative, "sha256": sha256, "size": size})
    return refs


def store_outputs(run_dir: Path, paths: list[str], files: FileStore) -> list[dict[str, Any]]:
    """Each declared output stored, read through a descriptor that followed no link: a
    symlink, or a hard link to a file elsewhere, is refused rather than read."""
    refs = []
    for relative in paths:
        try:
            with (
                open_inside(run_dir, relative, single_link=True) as fd,
                os.fdopen(os.dup(fd), "rb") as handle,
            ):
                sha256, size = files.put_file(handle)
        except FileNotFoundError:
            raise EvidenceError(f"declared output {relative!r} was not produced") from None
        except UnsafeFile as exc:
            raise EvidenceError(f"declared output {exc}") from None
        refs.append({"path": relative, "sha256": sha256, "size": size})
    return refs


def store_log(handle: BinaryIO, files: FileStore) -> dict[str, Any]:
    """A capture file the executor opened itself, stored from its start (whatever a task
    did to the path meanwhile)."""
    handle.seek(0)
    sha256, size = files.put_file(handle)
    return {"sha256": sha256, "size": size}


class ExecutableHasher:
    """Resolves ``argv[0]`` like ``exec`` would and hashes the file, cached by stat."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int, int], str] = {}
        self._lock = threading.Lock()

    def resolve(self, program: str, *, cwd: Path, env: dict[str, str]) -> str | None:
        if os.sep in program:
            candidate = Path(program) if os.path.isabs(program) else cwd / program
            return str(candidate.resolve()) if candidate.is_file() else None
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        return str(Path(found).resolve()) if found else None

    def sha256(self, executable: str) -> str | None:
        try:
            stat = os.stat(executable)
        except OSError:
            return None
        key = (executable, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            digest, _ = sha256_of_path(Path(executable))
        except OSError:
            return None
        with self._lock:
            self._cache[key] = digest
        return digest
