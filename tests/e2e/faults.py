"""Real faults for end-to-end tests: a TCP proxy in front of PostgreSQL that can be cut (the
database unreachable), and a tiny tmpfs that can be filled (no space left)."""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; :meth:`cut` closes the listener and every
    open connection (clients then see a database that went away)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = self._listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.is_cut = False
        self._serve()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _serve(self) -> None:
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                if self.is_cut:  # accepted as the listener was closing: refuse it too
                    client.close()
                    return
                upstream = socket.create_connection(self.target)
                self.sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self.lock:
            self.is_cut = True
        # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux, and
        # a pool that replaces dead connections would then still get through.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def close(self) -> None:
        self.cut()


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root; the test is skipped otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write ``path`` until the filesystem holding it has no space left."""
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return path
