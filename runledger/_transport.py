"""Sending :class:`~runledger._calls.Call` objects over one pooled httpx client, sync or
async: errors raised as :mod:`runledger.errors`, and 5xx answers and connection failures
retried with exponential backoff, for idempotent calls only."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from runledger._calls import Call
from runledger._config import ClientConfig
from runledger.errors import ServerError, TransportError, error_from_response

BACKOFF_SECONDS = 0.2


def _retryable(call: Call, attempt: int, retries: int) -> bool:
    return call.idempotent and attempt < retries


def _delay(attempt: int) -> float:
    return float(BACKOFF_SECONDS * 2**attempt)


def _request(client: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    return client.build_request(
        call.method, call.path, params=call.params, json=call.json, content=call.content, headers=call.headers
    )


def _check(call: Call, response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    raise error_from_response(response, not_found=call.not_found)


def sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON of each ``data:`` field of a Server-Sent Events stream."""
    buffer: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            buffer.append(line[5:].lstrip(" "))
        elif not line.strip() and buffer:
            yield json.loads("\n".join(buffer))
            buffer = []
    if buffer:
        yield json.loads("\n".join(buffer))


class SyncTransport:
    def __init__(self, config: ClientConfig, http: httpx.Client | None = None) -> None:
        self.config = config
        self.http = http or httpx.Client(
            base_url=config.url, headers=config.headers(), timeout=config.timeout
        )

    def close(self) -> None:
        self.http.close()

    def send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.http.send(_request(self.http, call))
            except httpx.TransportError as exc:
                if not _retryable(call, attempt, self.config.retries):
                    raise TransportError(f"{call.method} {call.path}: {exc}") from exc
            else:
                if response.status_code < 500 or not _retryable(call, attempt, self.config.retries):
                    return _check(call, response)
            time.sleep(_delay(attempt))
            attempt += 1

    def json(self, call: Call) -> Any:
        return self.send(call).json()

    @contextmanager
    def stream(self, call: Call, timeout: float | None = None) -> Iterator[httpx.Response]:
        """An answer read as it arrives (SSE, downloads, exports); not retried once started."""
        request = _request(self.http, call)
        if timeout is not None or call.params.get("follow"):
            request.extensions["timeout"] = httpx.Timeout(self.config.timeout, read=timeout).as_dict()
        try:
            response = self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        try:
            if not response.is_success:
                response.read()
                _check(call, response)
            yield response
        finally:
            response.close()


class AsyncTransport:
    def __init__(self, config: ClientConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.http = http or httpx.AsyncClient(
            base_url=config.url, headers=config.headers(), timeout=config.timeout
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self.http.send(_request(self.http, call))
            except httpx.TransportError as exc:
                if not _retryable(call, attempt, self.config.retries):
                    raise TransportError(f"{call.method} {call.path}: {exc}") from exc
            else:
                if response.status_code < 500 or not _retryable(call, attempt, self.config.retries):
                    return _check(call, response)
            await asyncio.sleep(_delay(attempt))
            attempt += 1

    async def json(self, call: Call) -> Any:
        return (await self.send(call)).json()

    @asynccontextmanager
    async def stream(self, call: Call, timeout: float | None = None) -> AsyncIterator[httpx.Response]:
        request = _request(self.http, call)
        if timeout is not None or call.params.get("follow"):
            request.extensions["timeout"] = httpx.Timeout(self.config.timeout, read=timeout).as_dict()
        try:
            response = await self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise TransportError(f"{call.method} {call.path}: {exc}") from exc
        try:
            if not response.is_success:
                await response.aread()
                _check(call, response)
            yield response
        finally:
            await response.aclose()


__all__ = ["AsyncTransport", "ServerError", "SyncTransport", "sse_data"]
