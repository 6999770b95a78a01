"""Topics that stored events still carry after their classes moved.

The ``eventsourcing`` library stores each event's topic (``module:QualName``) and resolves it
when the event is read. Classes that have been stored must never be renamed; when one moves
to another module, its old topic is registered here, once, so that every ledger written
before the move keeps loading (``tests/integration/test_legacy_ledger.py`` reads one).
Registering an aggregate's old topic also resolves its nested events'
(``ledger.run:Run.Triggered`` through ``ledger.run:Run``).
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from ledger.domain.batch import Batch
from ledger.domain.idempotency import IdempotencyKey
from ledger.domain.run import Run
from ledger.domain.workflow import DefinitionIndex, Workflow

#: old topic -> the class it names now. Moved in issue 15 (the package layout, 2026-12).
MOVED: dict[str, type] = {
    "ledger.run:Run": Run,
    "ledger.workflow:Workflow": Workflow,
    "ledger.workflow:DefinitionIndex": DefinitionIndex,
    "ledger.idempotency:IdempotencyKey": IdempotencyKey,
    "ledger.idempotency:Batch": Batch,
}


def register_moved_topics() -> None:
    for topic, cls in MOVED.items():
        register_topic(topic, cls)
