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
"""

from __future__ import annotations

import asyncio
import socket

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


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


#: uvicorn's ``http`` setting for ``serve``.
HTTP = NoDelayHttpToolsProtocol
