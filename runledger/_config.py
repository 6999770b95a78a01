"""Where the client's settings come from: arguments first, then ``RUNLEDGER_URL``,
``RUNLEDGER_TOKEN`` and ``RUNLEDGER_WORKSPACE``; and the default trusted-digest file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT = 30.0
WORKSPACE_HEADER = "Runledger-Workspace"


def default_trusted_digest() -> Path:
    """``$XDG_CONFIG_HOME/runledger/trusted-digest-<host>.json`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "runledger" / "trusted-digest.json"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    token: str | None
    workspace: str | None
    timeout: float
    retries: int
    verify: bool
    trusted_digest: Path

    @classmethod
    def resolve(
        cls,
        url: str | None,
        token: str | None,
        workspace: str | None,
        timeout: float | None,
        retries: int,
        verify: bool,
        trusted_digest: str | os.PathLike[str] | None,
    ) -> ClientConfig:
        url = url or os.environ.get("RUNLEDGER_URL")
        if not url:
            raise ValueError("no server URL: pass url= or set RUNLEDGER_URL")
        digest_path = Path(trusted_digest) if trusted_digest is not None else default_trusted_digest()
        return cls(
            url=url.rstrip("/"),
            token=token or os.environ.get("RUNLEDGER_TOKEN") or None,
            workspace=workspace or os.environ.get("RUNLEDGER_WORKSPACE") or None,
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            retries=retries,
            verify=verify,
            trusted_digest=digest_path,
        )

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": "runledger-client", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.workspace:
            headers[WORKSPACE_HEADER] = self.workspace
        return headers
