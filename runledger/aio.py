"""The asynchronous client, mirroring :mod:`runledger.client` (``await``, ``async for``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from runledger import _calls as calls
from runledger._config import ClientConfig
from runledger._transport import AsyncTransport
from runledger.aio_run import AsyncRun
from runledger.client import PAGE_SIZE
from runledger.models import (
    BatchPublic,
    BatchTriggered,
    ComparePublic,
    DigestPublic,
    FileStored,
    LedgerAuditEntry,
    LedgerAuditPublic,
    RunPublic,
    RunTriggered,
    SigningKeyPublic,
    StatsPublic,
    VerifyReportPublic,
    WorkflowPublic,
    WorkflowRegistered,
    WorkflowSummary,
    WorkspacesPublic,
)
from runledger.verify import TrustedDigest
from runledger.verify_read import AsyncVerifiedRead
from runledger.workflows import definition_from


class AsyncWorkflows:
    def __init__(self, client: AsyncClient) -> None:
        self._t = client._t

    async def register(
        self, definition_or_path: Mapping[str, Any] | str | os.PathLike[str]
    ) -> WorkflowRegistered:
        call = calls.register_workflow(definition_from(definition_or_path))
        return WorkflowRegistered.model_validate(await self._t.json(call))

    async def list(self) -> list[WorkflowSummary]:
        body = await self._t.json(calls.list_workflows())
        return [WorkflowSummary.model_validate(w) for w in body["workflows"]]

    async def get(self, name: str, version: int | None = None) -> WorkflowPublic:
        return WorkflowPublic.model_validate(await self._t.json(calls.get_workflow(name, version)))


class AsyncRuns:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._t = client._t

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow: str | None = None,
        triggered_by: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        q: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[RunPublic]:
        query = calls.filters(
            status=status,
            workflow=workflow,
            triggered_by=triggered_by,
            created_after=created_after,
            created_before=created_before,
            q=q,
        )
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            body = await self._t.json(calls.list_runs(query, params or {}, labels or {}, size, cursor))
            for item in body["runs"]:
                yield RunPublic.model_validate(item)
            if left is not None:
                left -= len(body["runs"])
            cursor = body.get("next_cursor")
            if not cursor or not body["runs"]:
                return

    async def get(self, run_id: str, verify: bool | None = None) -> AsyncRun:
        run = AsyncRun(self._client, RunPublic.model_validate(await self._t.json(calls.get_run(run_id))))
        if verify if verify is not None else self._client.config.verify:
            await self._client._verified.check(run_id)
        return run

    async def compare(self, a: str, b: str) -> ComparePublic:
        return ComparePublic.model_validate(await self._t.json(calls.compare(a, b)))


class AsyncFiles:
    def __init__(self, client: AsyncClient) -> None:
        self._t = client._t

    async def upload(self, path_or_bytes: bytes | str | os.PathLike[str]) -> FileStored:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        return FileStored.model_validate(await self._t.json(calls.upload(data)))

    async def download(self, sha256: str, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        async with self._t.stream(calls.download(sha256)) as response:
            with target.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        return target


class AsyncLedgerAPI:
    def __init__(self, client: AsyncClient) -> None:
        self._t = client._t

    async def digest(self) -> DigestPublic:
        return DigestPublic.model_validate(await self._t.json(calls.digest()))

    async def verify(self) -> VerifyReportPublic:
        return VerifyReportPublic.model_validate(await self._t.json(calls.verify_ledger()))


class AsyncSigningKeys:
    """``/api/signing-keys`` (SPEC section 10), as :class:`runledger.client.SigningKeys`."""

    def __init__(self, client: AsyncClient) -> None:
        self._t = client._t

    async def register(self, public_key: str | os.PathLike[str]) -> SigningKeyPublic:
        text = public_key if isinstance(public_key, str) and "BEGIN" in public_key else None
        pem = text if text is not None else Path(public_key).read_text()
        return SigningKeyPublic.model_validate(await self._t.json(calls.register_signing_key(pem)))

    async def list(self) -> list[SigningKeyPublic]:
        body = await self._t.json(calls.list_signing_keys())
        return [SigningKeyPublic.model_validate(k) for k in body["keys"]]

    async def revoke(self, fingerprint: str) -> None:
        await self._t.send(calls.revoke_signing_key(fingerprint))


class AsyncClient:
    """The async twin of :class:`runledger.Client`."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        workspace: str | None = None,
        timeout: float | None = None,
        retries: int = 3,
        verify: bool = False,
        trusted_digest: str | os.PathLike[str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(url, token, workspace, timeout, retries, verify, trusted_digest)
        self._t = AsyncTransport(self.config, http)
        self.workflows = AsyncWorkflows(self)
        self.runs = AsyncRuns(self)
        self.files = AsyncFiles(self)
        self.ledger = AsyncLedgerAPI(self)
        self.signing_keys = AsyncSigningKeys(self)
        self._verified = AsyncVerifiedRead(self._t, TrustedDigest(self.config.trusted_digest))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._t.close()

    async def trigger(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> AsyncRun:
        body = await self._t.json(calls.trigger(name, None, params, idempotency_key, labels))
        return await self._started(RunTriggered.model_validate(body).run_id, wait, timeout)

    async def trigger_by_hash(
        self,
        definition_hash: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> AsyncRun:
        body = await self._t.json(calls.trigger(None, definition_hash, params, idempotency_key, labels))
        return await self._started(RunTriggered.model_validate(body).run_id, wait, timeout)

    async def trigger_batch(
        self,
        name: str,
        items: list[Any],
        input_param: str,
        parallelism: int = 5,
        params: Mapping[str, Any] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> BatchTriggered:
        """One run per item (``input_param`` set to it), at most ``parallelism`` running at
        once; every run carries ``labels`` (SPEC 8)."""
        batch = {"items": items, "input_param": input_param, "parallelism": parallelism}
        return BatchTriggered.model_validate(
            await self._t.json(calls.trigger(name, None, params, None, labels, batch))
        )

    async def batch(self, batch_id: str) -> BatchPublic:
        return BatchPublic.model_validate(await self._t.json(calls.get_batch(batch_id)))

    async def _started(self, run_id: str, wait: bool, timeout: float | None) -> AsyncRun:
        run = await self.runs.get(run_id)
        return await run.wait(timeout) if wait else run

    async def workspaces(self) -> list[str]:
        """The names of the workspaces the token covers (SPEC 9), ``default`` first."""
        found = WorkspacesPublic.model_validate(await self._t.json(calls.list_workspaces()))
        return [workspace.name for workspace in found.workspaces]

    async def stats(self, **filters: Any) -> StatsPublic:
        return StatsPublic.model_validate(await self._t.json(calls.stats(calls.filters(**filters))))

    async def audit(self, **filters: Any) -> Any:
        return await self._t.json(calls.audit(calls.filters(**filters)))

    async def audit_entries(self, **filters: Any) -> AsyncIterator[LedgerAuditEntry]:
        """Every entry of ``GET /api/audit`` with these filters, oldest first, page by page."""
        cursor = None
        while True:
            body = await self.audit(**filters, cursor=cursor, limit=PAGE_SIZE)
            page = LedgerAuditPublic.model_validate(body)
            for entry in page.entries:
                yield entry
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def export(self, out: str | os.PathLike[str], **filters: Any) -> Path:
        target = Path(out)
        async with self._t.stream(calls.export(calls.filters(**filters))) as response:
            with target.open("wb") as fh:
                async for chunk in response.aiter_bytes():
                    fh.write(chunk)
        return target
