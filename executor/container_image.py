"""The executable inside a container image: its path, and its sha256 read from the image.

Podman mounts an image's root filesystem read-only (``podman image mount``); ``argv[0]`` is
looked up on the image's PATH the way ``exec`` would, symlinks followed *inside* that root.
An image ID names immutable content, so the answer is cached per image ID and program.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import subprocess
import threading
from pathlib import Path

MAX_SYMLINKS = 40
_cache: dict[tuple[str, str], tuple[str | None, str | None]] = {}
_cache_lock = threading.Lock()


class ImageFiles:
    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    def find(self, image_id: str, program: str, path: list[str]) -> tuple[str | None, str | None]:
        """(path in the image, sha256) of ``program``; (None, None) if the image lacks it."""
        key = (image_id, program + "\x00" + ":".join(path))
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        found = self._look(image_id, program, path)
        with _cache_lock:
            _cache[key] = found
        return found

    def _look(self, image_id: str, program: str, path: list[str]) -> tuple[str | None, str | None]:
        mounted = self._podman("image", "mount", image_id)
        if mounted.returncode != 0 or not mounted.stdout.strip():
            return (program if program.startswith("/") else None), None
        root = Path(mounted.stdout.strip())
        try:
            candidates = (
                [program] if program.startswith("/") else [posixpath.join(d, program) for d in path if d]
            )
            for candidate in candidates:
                real = resolve_in_root(root, candidate)
                if real is not None:
                    return candidate, self.hash_file(root / real.lstrip("/"))
            return None, None
        finally:
            self._podman("image", "unmount", image_id)

    @staticmethod
    def hash_file(path: Path) -> str | None:
        try:
            with path.open("rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            return None

    def _podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.runtime, *args], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(args, 125, "", str(exc))


def resolve_in_root(root: Path, path: str) -> str | None:
    """``path`` (absolute, inside the image) with symlinks followed as if ``root`` were ``/``;
    None unless it ends at an executable regular file."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        current = root.joinpath(*resolved, part)
        try:
            info = os.lstat(current)
        except OSError:
            return None
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                return None
            target = os.readlink(current)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        resolved.append(part)
    final = root.joinpath(*resolved)
    try:
        info = os.stat(final)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
        return None
    return "/" + "/".join(resolved)
