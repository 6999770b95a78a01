"""Nagle's algorithm is off on every connection, also behind a listener bound in advance
(``serve --workers N``), where uvicorn's own protocol leaves it on (uvicorn issue #3149); a
response's headers and body leave in one write."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.transport import CoalescingTransport, NoDelayH11Protocol, NoDelayHttpToolsProtocol

#: A real uvicorn server on a loopback port (serving a stub app), so: e2e.
pytestmark = pytest.mark.e2e


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def nodelay_of_served_connections(protocol: type[Any]) -> list[int]:
    """Serve ``app`` on a listener bound first, the way uvicorn's supervisor binds it; make
    keep-alive requests; the ``TCP_NODELAY`` option of the server's side of the connection."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=protocol, lifespan="off", log_config=None, access_log=False
    )
    listener = config.bind_socket()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        port = listener.getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert [client.get("/").text for _ in range(3)] == ["ok"] * 3
            connections = list(server.server_state.connections)
            return [
                conn.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                for conn in connections
            ]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def test_a_connection_on_a_listener_bound_in_advance_has_nagle_off() -> None:
    assert nodelay_of_served_connections(NoDelayH11Protocol) == [1]


def test_uvicorn_s_own_protocol_leaves_nagle_on_there() -> None:
    """The control: the setup above reproduces the fault that ``api.transport`` works around."""
    if nodelay_of_served_connections(H11Protocol) != [0]:
        pytest.skip("uvicorn now sets TCP_NODELAY behind a bound listener: api.transport can go")


def test_the_httptools_protocol_of_serve_has_nagle_off_and_answers_keep_alive_requests() -> None:
    assert nodelay_of_served_connections(NoDelayHttpToolsProtocol) == [1]


class Writes:
    """A real transport, counting the writes that reach it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.count = 0

    def write(self, data: bytes) -> None:
        self.count += 1
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def test_writes_of_one_turn_of_the_loop_leave_as_one_and_close_sends_what_is_held() -> None:
    async def main() -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        counted = Writes(transport)
        coalescing = CoalescingTransport(counted, loop)  # type: ignore[arg-type]
        coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        coalescing.write(b"ok")
        await asyncio.sleep(0)  # the loop's next turn
        coalescing.write(b"held")
        coalescing.close()  # before the next turn: written first
        await asyncio.sleep(0.05)
        theirs.settimeout(5)
        received = b""
        while chunk := theirs.recv(4096):
            received += chunk
        theirs.close()
        return received, counted.count

    received, writes = asyncio.run(main())
    assert received == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokheld"
    assert writes == 2
