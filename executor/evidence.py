"""Evidence about a task attempt: the executable, and content hashes of its files."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

from ledger.store.filestore import FileStore, sha256_of_path

HOST = socket.gethostname()


class EvidenceError(Exception):
    """A declared file is missing or lies outside the run directory."""


def inside(run_dir: Path, relative: str) -> Path:
    """``relative`` resolved inside ``run_dir``; symlinks may not lead out of it."""
    root = run_dir.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise EvidenceError(f"{relative!r} leaves the run directory")
    return path


def hash_inputs(run_dir: Path, paths: list[str]) -> list[dict[str, Any]]:
    refs = []
    for relative in paths:
        path = inside(run_dir, relative)
        if not path.is_file():
            raise EvidenceError(f"declared input {relative!r} does not exist")
        sha256, size = sha256_of_path(path)
        refs.append({"path": relative, "sha256": sha256, "size": size})
    return refs


def store_outputs(run_dir: Path, paths: list[str], files: FileStore) -> list[dict[str, Any]]:
    refs = []
    for relative in paths:
        path = inside(run_dir, relative)
        if not path.is_file():
            raise EvidenceError(f"declared output {relative!r} was not produced")
        sha256, size = files.put_path(path)
        refs.append({"path": relative, "sha256": sha256, "size": size})
    return refs


def store_log(path: Path, files: FileStore) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    sha256, size = files.put_path(path)
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
