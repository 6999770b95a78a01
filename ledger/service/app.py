"""The application service: every write goes through here, as commands on aggregates.

A command loads what it needs, lets the aggregate check and record, and saves all the new
events of the request in one ``save()`` (one atomic write). Concurrent requests share
transactions through :class:`~ledger.store.groupcommit.GroupCommitRecorder`.

:class:`Ledger` is the commands of each caller, one module each, over the plumbing of
:mod:`ledger.service.base`:

* :mod:`~ledger.service.workflows`: registering workflows;
* :mod:`~ledger.service.triggers`: triggering runs (by name or hash, idempotent, replay, resume);
* :mod:`~ledger.service.batches`: triggering a batch and reading it;
* :mod:`~ledger.service.workers`: claims, leases and reports;
* :mod:`~ledger.service.operators`: cancel;
* :mod:`~ledger.service.openlineage`: recording OpenLineage RunEvents;
* :mod:`~ledger.service.signatures`: signing keys, run signatures, token lifecycle events;
* :mod:`~ledger.service.workspaces`: creating workspaces (SPEC 9).
* :mod:`~ledger.service.retention`: sensitive parameters, legal holds, expunge and retention.
"""

from __future__ import annotations

from ledger.service.base import LedgerBase
from ledger.service.batches import BatchCommands
from ledger.service.openlineage import LineageCommands
from ledger.service.operators import OperatorCommands
from ledger.service.retention import RetentionCommands
from ledger.service.signatures import SignatureCommands
from ledger.service.triggers import TriggerCommands
from ledger.service.workers import WorkerCommands
from ledger.service.workflows import WorkflowCommands
from ledger.service.workspaces import WorkspaceCommands
from ledger.store.setup import APPLICATION_NAME


class Ledger(
    WorkflowCommands,
    TriggerCommands,
    BatchCommands,
    WorkerCommands,
    OperatorCommands,
    SignatureCommands,
    LineageCommands,
    WorkspaceCommands,
    RetentionCommands,
    LedgerBase,
):
    """runledger's write side on the ``eventsourcing`` library."""

    name = APPLICATION_NAME  # (the library would name it "Ledger", and its tables after that)
