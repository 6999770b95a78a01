"""The synchronous client: ``Client(url=, token=, workspace=, timeout=, verify=)``.

``client.workflows``, ``client.runs``, ``client.files`` and ``client.ledger`` group the calls
of SPEC section 6; ``client.runs.get(id)`` answers a :class:`Run` whose methods act on that
run. One pooled httpx client carries every call (close it with ``close()`` or ``with``).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from runledger import _calls as calls
from runledger._config import ClientConfig
from runledger._transport import SyncTransport
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
from runledger.run import Run, WaitTimeout
from runledger.verify import TrustedDigest
from runledger.verify_read import VerifiedRead
from runledger.workflows import definition_from

PAGE_SIZE = 500

__all__ = ["Client", "Run", "WaitTimeout"]


class Workflows:
    def __init__(self, client: Client) -> None:
        self._t = client._t

    def register(self, definition_or_path: Mapping[str, Any] | str | os.PathLike[str]) -> WorkflowRegistered:
        return WorkflowRegistered.model_validate(
            self._t.json(calls.register_workflow(definition_from(definition_or_path)))
        )

    def list(self) -> list[WorkflowSummary]:
        return [WorkflowSummary.model_validate(w) for w in self._t.json(calls.list_workflows())["workflows"]]

    def get(self, name: str, version: int | None = None) -> WorkflowPublic:
        return WorkflowPublic.model_validate(self._t.json(calls.get_workflow(name, version)))


class Runs:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._t = client._t

    def list(
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
    ) -> Iterator[RunPublic]:
        """Newest first, fetched a page at a time as the iterator is consumed; at most
        ``limit`` runs (all when ``None``)."""
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
            body = self._t.json(calls.list_runs(query, params or {}, labels or {}, size, cursor))
            for item in body["runs"]:
                yield RunPublic.model_validate(item)
            if left is not None:
                left -= len(body["runs"])
            cursor = body.get("next_cursor")
            if not cursor or not body["runs"]:
                return

    def page(
        self, *, limit: int = 100, cursor: str | None = None, **filters: Any
    ) -> tuple[builtins.list[RunPublic], str | None]:
        """One page as the server cut it, with its ``next_cursor`` (the CLI's listing)."""
        params = filters.pop("params", None) or {}
        labels = filters.pop("labels", None) or {}
        body = self._t.json(calls.list_runs(calls.filters(**filters), params, labels, limit, cursor))
        return [RunPublic.model_validate(r) for r in body["runs"]], body.get("next_cursor")

    def get(self, run_id: str, verify: bool | None = None) -> Run:
        run = Run(self._client, RunPublic.model_validate(self._t.json(calls.get_run(run_id))))
        if verify if verify is not None else self._client.config.verify:
            self._client._verified.check(run_id)
        return run

    def compare(self, a: str, b: str) -> ComparePublic:
        return ComparePublic.model_validate(self._t.json(calls.compare(a, b)))


class Files:
    def __init__(self, client: Client) -> None:
        self._t = client._t

    def upload(self, path_or_bytes: bytes | str | os.PathLike[str]) -> FileStored:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        return FileStored.model_validate(self._t.json(calls.upload(data)))

    def download(self, sha256: str, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        with self._t.stream(calls.download(sha256)) as response, target.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
        return target


class LedgerAPI:
    def __init__(self, client: Client) -> None:
        self._t = client._t

    def digest(self) -> DigestPublic:
        return DigestPublic.model_validate(self._t.json(calls.digest()))

    def verify(self) -> VerifyReportPublic:
        return VerifyReportPublic.model_validate(self._t.json(calls.verify_ledger()))


class SigningKeys:
    """``/api/signing-keys`` (SPEC section 10): the public keys principals sign runs with."""

    def __init__(self, client: Client) -> None:
        self._t = client._t

    def register(self, public_key: str | os.PathLike[str]) -> SigningKeyPublic:
        """Register a PEM public key (its text, or the path of a ``.pub`` file) for this token."""
        text = public_key if isinstance(public_key, str) and "BEGIN" in public_key else None
        pem = text if text is not None else Path(public_key).read_text()
        return SigningKeyPublic.model_validate(self._t.json(calls.register_signing_key(pem)))

    def list(self) -> builtins.list[SigningKeyPublic]:
        body = self._t.json(calls.list_signing_keys())
        return [SigningKeyPublic.model_validate(k) for k in body["keys"]]

    def revoke(self, fingerprint: str) -> None:
        self._t.send(calls.revoke_signing_key(fingerprint))


class Client:
    """The runledger HTTP API from Python (SPEC section 6)."""

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
        http: httpx.Client | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(url, token, workspace, timeout, retries, verify, trusted_digest)
        self._t = SyncTransport(self.config, http)
        self.workflows = Workflows(self)
        self.runs = Runs(self)
        self.files = Files(self)
        self.ledger = LedgerAPI(self)
        self.signing_keys = SigningKeys(self)
        self._verified = VerifiedRead(self._t, TrustedDigest(self.config.trusted_digest))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._t.close()

    def trigger(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Run:
        body = RunTriggered.model_validate(
            self._t.json(calls.trigger(name, None, params, idempotency_key, labels))
        )
        return self._started(body.run_id, wait, timeout)

    def trigger_by_hash(
        self,
        definition_hash: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        wait: bool = False,
        timeout: float | None = None,
    ) -> Run:
        call = calls.trigger(None, definition_hash, params, idempotency_key, labels)
        return self._started(RunTriggered.model_validate(self._t.json(call)).run_id, wait, timeout)

    def trigger_batch(
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
            self._t.json(calls.trigger(name, None, params, None, labels, batch))
        )

    def batch(self, batch_id: str) -> BatchPublic:
        return BatchPublic.model_validate(self._t.json(calls.get_batch(batch_id)))

    def _started(self, run_id: str, wait: bool, timeout: float | None) -> Run:
        run = self.runs.get(run_id)
        return run.wait(timeout) if wait else run

    def workspaces(self) -> list[str]:
        """The names of the workspaces the token covers (SPEC 9), ``default`` first."""
        found = WorkspacesPublic.model_validate(self._t.json(calls.list_workspaces()))
        return [workspace.name for workspace in found.workspaces]

    def stats(self, **filters: Any) -> StatsPublic:
        return StatsPublic.model_validate(self._t.json(calls.stats(calls.filters(**filters))))

    def audit(self, **filters: Any) -> Any:
        """``GET /api/audit`` (SPEC section 10): one page, ``{entries, next_cursor}``."""
        return self._t.json(calls.audit(calls.filters(**filters)))

    def audit_entries(self, **filters: Any) -> Iterator[LedgerAuditEntry]:
        """Every entry of ``GET /api/audit`` with these filters, oldest first, page by page."""
        cursor = None
        while True:
            page = LedgerAuditPublic.model_validate(self.audit(**filters, cursor=cursor, limit=PAGE_SIZE))
            yield from page.entries
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def export(self, out: str | os.PathLike[str], **filters: Any) -> Path:
        """Stream a compliance bundle to ``out``."""
        target = Path(out)
        with self._t.stream(calls.export(calls.filters(**filters))) as response, target.open("wb") as fh:
            for chunk in response.iter_bytes():
                fh.write(chunk)
        return target
