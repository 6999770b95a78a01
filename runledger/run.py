"""A run as the sync client answers it: the summary's fields as attributes, and the calls that
act on it (wait, events, tasks, logs, files, lineage, audit, cancel, replay, resume, label,
sign)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from runledger import _calls as calls
from runledger._transport import sse_data
from runledger.errors import RunledgerError
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

if TYPE_CHECKING:
    from runledger.client import Client

TERMINAL = frozenset({"success", "failed", "killed"})
PAGE_SIZE = 500


class WaitTimeout(RunledgerError):
    """``wait(timeout=)`` gave up before the run ended (the run goes on)."""


class Run:
    """One run: the summary's fields as attributes, and the calls that act on it."""

    def __init__(self, client: Client, summary: RunPublic) -> None:
        self._client = client
        self.summary = summary

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self.__dict__["summary"], name)
        except AttributeError:
            raise AttributeError(f"Run has no attribute {name!r}") from None

    def __repr__(self) -> str:
        summary = self.summary
        return f"Run(run_id={summary.run_id!r}, workflow={summary.workflow!r}, status={summary.status!r})"

    @property
    def run_id(self) -> str:
        return self.summary.run_id

    @property
    def status(self) -> str:
        return self.summary.status

    @property
    def done(self) -> bool:
        return self.summary.status in TERMINAL

    def refresh(self) -> Run:
        self.summary = RunPublic.model_validate(self._client._t.json(calls.get_run(self.run_id)))
        return self

    def wait(self, timeout: float | None = None) -> Run:
        """Follow the run's events over SSE until it ends, then refresh; ``WaitTimeout`` after
        ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise WaitTimeout(f"run {self.run_id} still {self.status} after {timeout} s")
            try:
                for _ in self.events(follow=True, timeout=left):
                    pass
            except (httpx.ReadTimeout, httpx.RemoteProtocolError):
                continue
        return self

    def events(self, follow: bool = False, *, timeout: float | None = None) -> Iterator[EventPublic]:
        """The run's events oldest first; with ``follow``, live over SSE until the run ends."""
        if not follow:
            body = self._client._t.json(calls.get_run(self.run_id, "/events"))
            yield from (EventPublic.model_validate(e) for e in body["events"])
            return
        call = calls.get_run(self.run_id, "/events", {"follow": "true"})
        with self._client._t.stream(call, timeout=timeout) as response:
            for data in sse_data(response.iter_lines()):
                yield EventPublic.model_validate(data)

    def tasks(self) -> list[TaskPublic]:
        body = self._client._t.json(calls.get_run(self.run_id, "/tasks"))
        return [TaskPublic.model_validate(t) for t in body["tasks"]]

    def task(self, name: str) -> TaskPublic:
        return TaskPublic.model_validate(
            self._client._t.json(calls.get_run(self.run_id, f"/tasks/{calls._q(name)}"))
        )

    def logs(self, task: str, stream: str = "stdout") -> str:
        call = calls.get_run(self.run_id, f"/tasks/{calls._q(task)}/logs", {"stream": stream})
        return self._client._t.send(call).text

    def files(self) -> FilesPublic:
        return FilesPublic.model_validate(self._client._t.json(calls.get_run(self.run_id, "/files")))

    def download(self, sha256: str, path: str | os.PathLike[str]) -> Path:
        return self._client.files.download(sha256, path)

    def lineage(self, depth: int = 1) -> LineagePublic:
        call = calls.get_run(self.run_id, "/lineage", {"depth": depth})
        return LineagePublic.model_validate(self._client._t.json(call))

    def audit(self) -> AuditPublic:
        return AuditPublic.model_validate(self._client._t.json(calls.get_run(self.run_id, "/audit")))

    def cancel(self, reason: str | None = None) -> Run:
        self._client._t.send(calls.cancel(self.run_id, reason))
        return self.refresh()

    def expunge(self, reason: str | None = None) -> ExpungePublic:
        """Erase the run (admin; SPEC section 11): its key, its files no other live run
        references, its working directory. A second expunge answers ``recorded=False``."""
        return ExpungePublic.model_validate(self._client._t.json(calls.expunge(self.run_id, reason)))

    def hold(self, reason: str | None = None) -> HoldPublic:
        """Put a legal hold on the run (admin): retention skips it, expunge answers 409."""
        return HoldPublic.model_validate(self._client._t.json(calls.hold(self.run_id, reason)))

    def release(self, reason: str | None = None) -> HoldPublic:
        """Take the legal hold off (admin)."""
        call = calls.hold(self.run_id, reason, release=True)
        return HoldPublic.model_validate(self._client._t.json(call))

    def replay(self, param_overrides: Mapping[str, Any] | None = None, reason: str | None = None) -> Run:
        body = self._client._t.json(calls.replay(self.run_id, param_overrides, reason))
        return self._client.runs.get(body["run_id"])

    def resume(
        self, from_task: str, param_overrides: Mapping[str, Any] | None = None, reason: str | None = None
    ) -> Run:
        body = self._client._t.json(calls.resume(self.run_id, from_task, param_overrides, reason))
        return self._client.runs.get(body["run_id"])

    def label(
        self, set: Mapping[str, str] | None = None, remove: list[str] | None = None, reason: str | None = None
    ) -> Run:
        """``POST /api/runs/{id}/labels`` (SPEC section 8)."""
        self._client._t.send(calls.label(self.run_id, set, remove, reason))
        return self.refresh()

    def sign(self, meaning: str, key: Any, reason: str | None = None, *, signer: str) -> SignaturePublic:
        """``POST /api/runs/{id}/signatures`` (SPEC section 10): sign the run's current head
        with ``key`` (an Ed25519 private key, or the path of its PEM file from ``runledger
        keys create``); ``signer`` is the token's name, which the server records. A run that
        moved on between reading its head and signing answers 409 (``ConflictError``)."""
        from runledger.signing import load_private_key, signature_body

        if isinstance(key, (str, os.PathLike)):
            key = load_private_key(key)
        head = list(self.events())[-1].hash
        body = signature_body(self.run_id, head, meaning, reason, signer, key)
        return SignaturePublic.model_validate(self._client._t.json(calls.sign(self.run_id, body)))

    def signatures(self) -> SignaturesPublic:
        """``GET /api/runs/{id}/signatures``: each with printed name, UTC time, meaning, ``valid``."""
        return SignaturesPublic.model_validate(
            self._client._t.json(calls.get_run(self.run_id, "/signatures"))
        )

    def report(self, format: str = "html") -> bytes:
        """``GET /api/runs/{id}/report?format=html|pdf``: the run's human-readable true copy."""
        return self._client._t.send(calls.get_run(self.run_id, "/report", {"format": format})).content
