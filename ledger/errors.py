"""Domain errors. The API maps each to one HTTP status in ``api/errors.py``."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: a request the ledger refused; nothing was written."""

    title = "Ledger error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, object]] | None = None,
        extensions: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        #: Extra members of the problem document (RFC 9457 section 3.2), e.g. ``run_id``.
        self.extensions = extensions or {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class NotFound(LedgerError):
    title = "Not found"


class Gone(LedgerError):
    """What was asked for existed and was erased on purpose (an expunged run's logs and files)."""

    title = "Gone"


class InvalidDefinition(LedgerError):
    title = "Invalid workflow definition"


class InvalidParameters(LedgerError):
    title = "Invalid parameters"


class InvalidRequest(LedgerError):
    title = "Invalid request"


class IllegalTransition(LedgerError):
    title = "Illegal state transition"


class Forbidden(LedgerError):
    """The principal may not do this with what it holds (another principal's signing key, a
    revoked one)."""

    title = "Forbidden"


class Conflict(LedgerError):
    """Another writer got there first (optimistic concurrency), or a stale worker."""

    title = "Conflict"


class IdempotencyKeyReused(Conflict):
    """An idempotency key sent again with other parameters than its first run's."""

    title = "Idempotency key reused"

    def __init__(self, *, key: str, run_id: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was first used for run {run_id} with other parameters; "
            "use a new key for other parameters",
            extensions={"run_id": run_id},
        )
        self.run_id = run_id
