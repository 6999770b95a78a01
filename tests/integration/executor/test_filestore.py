"""The content-addressed file store on a real directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger.errors import NotFound
from ledger.store.filestore import CorruptFile, FileStore


def test_stored_bytes_are_kept_under_their_own_sha256_and_read_back(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    data = b"some bytes\n"

    sha256, size = store.put_bytes(data)

    assert sha256 == hashlib.sha256(data).hexdigest() and size == len(data)
    assert store.path_for(sha256) == tmp_path / "files" / sha256[:2] / sha256
    assert store.exists(sha256)
    assert store.read(sha256) == data


def test_a_file_from_disk_is_stored_streamed_and_storing_it_twice_changes_nothing(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "files")
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (3 * 1024 * 1024 + 7))

    first = store.put_path(source)
    second = store.put_path(source)

    assert first == second == (hashlib.sha256(source.read_bytes()).hexdigest(), source.stat().st_size)
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


def test_reading_a_file_changed_on_disk_raises_corrupt_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    sha256, _ = store.put_bytes(b"original")
    path = store.path_for(sha256)
    path.chmod(0o644)
    path.write_bytes(b"tampered")

    with pytest.raises(CorruptFile) as raised:
        store.read(sha256)
    assert raised.value.actual == hashlib.sha256(b"tampered").hexdigest()


def test_reading_an_absent_or_malformed_hash_is_not_found(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    with pytest.raises(NotFound):
        store.read("0" * 64)
    with pytest.raises(NotFound):
        store.read("../../etc/passwd")
    assert not store.exists("../x")
