"""Domain errors. The API maps each to one HTTP status in ``api/errors.py``."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refused; nothing was written."""

    title = "Ledger error"

    def __init__(self, detail: str, *, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class NotFound(LedgerError):
    title = "Not found"


class InvalidDefinition(LedgerError):
    title = "Invalid workflow definition"


class InvalidParameters(LedgerError):
    title = "Invalid parameters"


class InvalidRequest(LedgerError):
    title = "Invalid request"


class IllegalTransition(LedgerError):
    title = "Illegal state transition"


class Conflict(LedgerError):
    """Another writer got there first (optimistic concurrency), or a stale worker."""

    title = "Conflict"
