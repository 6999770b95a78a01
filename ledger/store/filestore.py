"""A content-addressed file store: every file is kept under its own SHA-256.

Layout: ``<root>/<first two hex>/<sha256>``. Files are written to a temporary name in the same
directory and renamed into place, so a reader never sees half a file and storing the same
content twice is harmless. Reading re-checks the hash, so a file changed on disk is reported
(:class:`CorruptFile`) instead of served.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from ledger.errors import NotFound
from ledger.hashing import is_sha256_hex

CHUNK = 1024 * 1024


class CorruptFile(Exception):
    """A stored file's content no longer matches the hash it is stored under."""

    def __init__(self, sha256: str, actual: str) -> None:
        super().__init__(f"stored file {sha256} is corrupt (its content hashes to {actual})")
        self.sha256 = sha256
        self.actual = actual

    def __repr__(self) -> str:
        return f"CorruptFile(sha256={self.sha256!r}, actual={self.actual!r})"


def sha256_of_path(path: Path) -> tuple[str, int]:
    """The SHA-256 and size of a file on disk, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class FileStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        if not is_sha256_hex(sha256):
            raise NotFound(f"{sha256!r} is not a sha256")
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return is_sha256_hex(sha256) and self.path_for(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        """The stored file's size in bytes, or None when no such file is stored."""
        return self.path_for(sha256).stat().st_size if self.exists(sha256) else None

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha256 = hashlib.sha256(data).hexdigest()
        if not self.exists(sha256):
            self._write_new(sha256, [data])
        return sha256, len(data)

    def put_path(self, path: Path | str) -> tuple[str, int]:
        """Store a file from disk (streamed: large files are never held in memory)."""
        with Path(path).open("rb") as handle:
            return self.put_file(handle)

    def put_file(self, handle: BinaryIO) -> tuple[str, int]:
        """Store what is left to read in ``handle`` (streamed), e.g. a descriptor the caller
        opened without following links."""
        directory = self.root / "tmp"
        directory.mkdir(exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            sha256 = digest.hexdigest()
            target = self.path_for(sha256)
            if target.is_file():
                os.unlink(tmp_name)
            else:
                target.parent.mkdir(exist_ok=True)
                os.chmod(tmp_name, 0o444)
                os.replace(tmp_name, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return sha256, size

    def _write_new(self, sha256: str, chunks: list[bytes]) -> None:
        target = self.path_for(sha256)
        target.parent.mkdir(exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def read(self, sha256: str) -> bytes:
        """The stored bytes, after checking they still hash to ``sha256``."""
        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no stored file {sha256}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise CorruptFile(sha256, actual)
        return data

    def copy_to(self, sha256: str, destination: Path) -> int:
        """Write the stored file to ``destination`` after re-checking its hash; its size."""
        data = self.read(sha256)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)
        return len(data)
