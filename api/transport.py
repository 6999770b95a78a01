"""uvicorn's HTTP/1.1 protocols with Nagle's algorithm off on every connection, and the event
loop and HTTP parser ``runledger serve`` runs on.

asyncio turns on ``TCP_NODELAY`` for an accepted connection only when the listening socket
says ``proto == IPPROTO_TCP``. uvicorn's single-process path lets asyncio build the listener
(from ``getaddrinfo``: proto 6), but ``--workers N`` binds it in the supervisor with proto 0
(uvicorn issue #3149, open at 0.54). Nagle then holds each response's second write until the
client's delayed ACK: every keep-alive request past the first took 44 ms instead of 2 ms.
Setting the option on the connection itself works whichever way the listener was made.

``serve`` runs on uvloop with the httptools parser (:data:`LOOP`, :data:`HTTP`): against
asyncio's loop and h11, the parser and the loop's callbacks were a third of an API process's
CPU per ingest request (``bench/README.md``). ``NoDelayH11Protocol`` stays for h11.
:class:`CoalescingTransport` sends a response's headers and body in one write.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: uvicorn's ``loop`` setting for ``serve``.
LOOP = "uvloop"


def _no_delay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


class CoalescingTransport:
    """The connection's transport, with the writes of one turn of the event loop sent as one.

    uvicorn writes a response's status line and headers when the app sends
    ``http.response.start`` and the body on ``http.response.body``: two ``send`` calls and,
    with Nagle off, two TCP segments for every small answer, and two reads for the client.
    Here the writes made before the loop's next turn are joined and written once (right after
    the current callback: the ASGI app sends both messages without waiting in between).
    ``close`` writes what is held first; everything else is the transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self._flush)
        else:
            self._held.append(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _no_delay(transport)
        coalescing = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(coalescing)  # type: ignore[arg-type]


#: uvicorn's ``http`` setting for ``serve``.
HTTP = NoDelayHttpToolsProtocol
