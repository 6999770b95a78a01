"""A small real HTTP proxy for tests: forwards every request to a server and lets the test
rewrite JSON answers on their way back (a lying server, without changing the server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

#: (method, path with query, JSON body) -> the body to send instead (or the same one).
Rewrite = Callable[[str, str, Any], Any]


@contextmanager
def rewriting_proxy(upstream: str, rewrite: Rewrite) -> Iterator[str]:
    forward = httpx.Client(base_url=upstream, timeout=30.0)

    class Handler(BaseHTTPRequestHandler):
        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
            answer = forward.request(self.command, self.path, content=body, headers=headers)
            content = answer.content
            if answer.headers.get("content-type", "").startswith("application/json"):
                content = json.dumps(rewrite(self.command, self.path, answer.json())).encode()
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in {
                    "content-length",
                    "transfer-encoding",
                    "content-encoding",
                    "connection",
                }:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = _relay

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        forward.close()
