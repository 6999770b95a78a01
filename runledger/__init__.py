"""The runledger Python client (SPEC section 6).

from runledger import Client

with Client() as client:  # RUNLEDGER_URL, RUNLEDGER_TOKEN
    run = client.trigger("pipeline", {"query": "hello"}, wait=True)
    for failed in client.runs.list(status="failed", limit=10):
        print(failed.run_id, failed.error)
"""

from runledger.aio import AsyncClient
from runledger.aio_run import AsyncRun
from runledger.client import Client, Run, WaitTimeout
from runledger.errors import (
    AuthenticationError,
    ConflictError,
    GoneError,
    NotFoundError,
    PermissionDeniedError,
    RunledgerError,
    RunNotFoundError,
    ServerError,
    TransportError,
    ValidationError,
    VerificationError,
    WorkflowNotFoundError,
)

__all__ = [
    "AsyncClient",
    "AsyncRun",
    "AuthenticationError",
    "Client",
    "ConflictError",
    "GoneError",
    "NotFoundError",
    "PermissionDeniedError",
    "Run",
    "RunNotFoundError",
    "RunledgerError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "VerificationError",
    "WaitTimeout",
    "WorkflowNotFoundError",
]
