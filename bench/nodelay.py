"""Whether a server's accepted TCP connections have Nagle's algorithm off (``TCP_NODELAY``).

Read from the server's own sockets, not guessed from its configuration: every established
connection on the server's port is found in ``/proc/net/tcp`` (and ``tcp6``), its socket inode
matched to a file descriptor of a process of the server's tree, the descriptor copied into this
process with ``pidfd_getfd(2)`` (Linux 5.6+, root or ptrace rights over the server) and asked
with ``getsockopt``. :class:`NoDelayProbe` samples while a benchmark phase runs.

    .venv/bin/python -m bench.nodelay --port 8000
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import socket
import threading
from pathlib import Path
from typing import Any

_SYS_PIDFD_GETFD = 438  # the same number on x86_64 and aarch64
_ESTABLISHED = "01"
_LISTEN = "0A"


def _tcp_inodes(port: int) -> tuple[set[int], set[int]]:
    """Socket inodes of connections whose local port is ``port``: (listening, established)."""
    listening: set[int] = set()
    established: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port != port:
                    continue
                if fields[3] == _LISTEN:
                    listening.add(int(fields[9]))
                elif fields[3] == _ESTABLISHED:
                    established.add(int(fields[9]))
    return listening, established


def _socket_fds() -> dict[int, tuple[int, int]]:
    """Every socket inode on the machine -> (pid, fd) of a process holding it."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = Path("/proc", entry, "fd")
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd_dir / fd)
                    if target.startswith("socket:["):
                        found.setdefault(int(target[8:-1]), (int(entry), int(fd)))
    return found


def _nodelay(pid: int, fd: int) -> bool | None:
    """TCP_NODELAY of descriptor ``fd`` of process ``pid``; None when it cannot be read."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    try:
        copy = libc.syscall(_SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copy < 0:
            return None
        sock = socket.socket(fileno=copy)
        try:
            return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        finally:
            sock.close()  # closes our copy only; the server's descriptor stays open
    finally:
        os.close(pidfd)


def probe(port: int) -> dict[str, Any]:
    """The listener's and the established connections' TCP_NODELAY on ``port`` (server side:
    sockets whose local port is ``port``, so the clients' ends are not counted)."""
    listening, established = _tcp_inodes(port)
    owners = _socket_fds()
    result: dict[str, Any] = {"listener": None, "connections": 0, "nodelay_on": 0, "nodelay_off": 0}
    for inode in listening:
        if inode in owners:
            result["listener"] = _nodelay(*owners[inode])
    for inode in established:
        if inode not in owners:
            continue
        value = _nodelay(*owners[inode])
        if value is None:
            continue
        result["connections"] += 1
        result["nodelay_on" if value else "nodelay_off"] += 1
    return result


class NoDelayProbe:
    """Samples :func:`probe` every ``interval`` seconds in a thread; keeps the sample that saw
    the most connections (a phase's keep-alive connections are all open in the middle of it)."""

    def __init__(self, port: int, interval: float = 1.0) -> None:
        self.port = port
        self.interval = interval
        self.best: dict[str, Any] = {"connections": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a sampler never stops the benchmark
                sample = probe(self.port)
                if sample["connections"] >= self.best["connections"]:
                    self.best = sample

    def __enter__(self) -> NoDelayProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        """``on (n/n connections)``, ``off (...)``, ``mixed (...)`` or ``not seen``."""
        best = self.best
        if not best.get("connections"):
            return "not seen"
        on, total = best["nodelay_on"], best["connections"]
        word = "on" if on == total else "off" if on == 0 else "mixed"
        return f"{word} ({on}/{total} connections)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    print(probe(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
