"""A run as the async client answers it, mirroring :class:`runledger.run.Run`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from runledger import _calls as calls
from runledger.models import (
    AuditPublic,
    EventPublic,
    ExpungePublic,
    FilesPublic,
    HoldPublic,
    LineagePublic,
    RunPublic,
    SignaturePublic,
    SignaturesPublic,
    TaskPublic,
)
from runledger.run import TERMINAL, WaitTimeout

if TYPE_CHECKING:
    from runledger.aio import AsyncClient


async def _sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    buffer: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            buffer.append(line[5:].lstrip(" "))
        elif not line.strip() and buffer:
            yield json.loads("\n".join(buffer))
            buffer = []


class AsyncRun:
    def __init__(self, client: AsyncClient, summary: RunPublic) -> None:
        self._client = client
        self.summary = summary

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self.__dict__["summary"], name)
        except AttributeError:
            raise AttributeError(f"AsyncRun has no attribute {name!r}") from None

    def __repr__(self) -> str:
        return f"AsyncRun(run_id={self.summary.run_id!r}, status={self.summary.status!r})"

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def done(self) -> bool:
        return self.summary.status in TERMINAL

    async def refresh(self) -> AsyncRun:
        self.summary = RunPublic.model_validate(await self._client._t.json(calls.get_run(self.run_id)))
        return self

    async def wait(self, timeout: float | None = None) -> AsyncRun:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (await self.refresh()).done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(f"run {self.run_id} still {self.status} after {timeout} s")
            try:
                async for _ in self.events(follow=True, timeout=left):
                    pass
            except (httpx.ReadTimeout, httpx.RemoteProtocolError):
                continue
        return self

    async def events(
        self, follow: bool = False, *, timeout: float | None = None
    ) -> AsyncIterator[EventPublic]:
        if not follow:
            body = await self._client._t.json(calls.get_run(self.run_id, "/events"))
            for e in body["events"]:
                yield EventPublic.model_validate(e)
            return
        call = calls.get_run(self.run_id, "/events", {"follow": "true"})
        async with self._client._t.stream(call, timeout=timeout) as response:
            async for data in _sse(response):
                yield EventPublic.model_validate(data)

    async def tasks(self) -> list[TaskPublic]:
        body = await self._client._t.json(calls.get_run(self.run_id, "/tasks"))
        return [TaskPublic.model_validate(t) for t in body["tasks"]]

    async def logs(self, task: str, stream: str = "stdout") -> str:
        call = calls.get_run(self.run_id, f"/tasks/{calls._q(task)}/logs", {"stream": stream})
        return (await self._client._t.send(call)).text

    async def files(self) -> FilesPublic:
        return FilesPublic.model_validate(await self._client._t.json(calls.get_run(self.run_id, "/files")))

    async def download(self, sha256: str, path: str | os.PathLike[str]) -> Path:
        return await self._client.files.download(sha256, path)

    async def lineage(self, depth: int = 1) -> LineagePublic:
        call = calls.get_run(self.run_id, "/lineage", {"depth": depth})
        return LineagePublic.model_validate(await self._client._t.json(call))

    async def audit(self) -> AuditPublic:
        return AuditPublic.model_validate(await self._client._t.json(calls.get_run(self.run_id, "/audit")))

    async def cancel(self, reason: str | None = None) -> AsyncRun:
        await self._client._t.send(calls.cancel(self.run_id, reason))
        return await self.refresh()

    async def expunge(self, reason: str | None = None) -> ExpungePublic:
        """Erase the run (admin; SPEC section 11): its key, its files no other live run
        references, its working directory. A second expunge answers ``recorded=False``."""
        return ExpungePublic.model_validate(await self._client._t.json(calls.expunge(self.run_id, reason)))

    async def hold(self, reason: str | None = None) -> HoldPublic:
        """Put a legal hold on the run (admin): retention skips it, expunge answers 409."""
        return HoldPublic.model_validate(await self._client._t.json(calls.hold(self.run_id, reason)))

    async def release(self, reason: str | None = None) -> HoldPublic:
        """Take the legal hold off (admin)."""
        call = calls.hold(self.run_id, reason, release=True)
        return HoldPublic.model_validate(await self._client._t.json(call))

    async def replay(
        self, param_overrides: Mapping[str, Any] | None = None, reason: str | None = None
    ) -> AsyncRun:
        body = await self._client._t.json(calls.replay(self.run_id, param_overrides, reason))
        return await self._client.runs.get(body["run_id"])

    async def resume(
        self, from_task: str, param_overrides: Mapping[str, Any] | None = None, reason: str | None = None
    ) -> AsyncRun:
        body = await self._client._t.json(calls.resume(self.run_id, from_task, param_overrides, reason))
        return await self._client.runs.get(body["run_id"])

    async def label(
        self, set: Mapping[str, str] | None = None, remove: list[str] | None = None, reason: str | None = None
    ) -> AsyncRun:
        await self._client._t.send(calls.label(self.run_id, set, remove, reason))
        return await self.refresh()

    async def sign(
        self, meaning: str, key: Any, reason: str | None = None, *, signer: str
    ) -> SignaturePublic:
        """As :meth:`runledger.Run.sign`."""
        from runledger.signing import load_private_key, signature_body

        if isinstance(key, (str, os.PathLike)):
            key = load_private_key(key)
        head = [e async for e in self.events()][-1].hash
        body = signature_body(self.run_id, head, meaning, reason, signer, key)
        return SignaturePublic.model_validate(await self._client._t.json(calls.sign(self.run_id, body)))

    async def report(self, format: str = "html") -> bytes:
        """As :meth:`runledger.Run.report`: the run's human-readable true copy."""
        call = calls.get_run(self.run_id, "/report", {"format": format})
        return (await self._client._t.send(call)).content

    async def signatures(self) -> SignaturesPublic:
        body = await self._client._t.json(calls.get_run(self.run_id, "/signatures"))
        return SignaturesPublic.model_validate(body)
