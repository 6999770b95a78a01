"""The application service (:class:`Ledger`), the one way to write to the ledger."""

from ledger.service.app import Ledger
from ledger.service.batches import BatchTriggered
from ledger.service.triggers import Triggered
from ledger.service.workflows import Registration

__all__ = ["BatchTriggered", "Ledger", "Registration", "Triggered"]
