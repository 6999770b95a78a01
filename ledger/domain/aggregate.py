"""A hash-chained aggregate base on the ``eventsourcing`` library.

Every event carries ``hash`` and ``prev_hash`` (SPEC section 1), computed when the command
records it, from exactly the JSON the API will show: the event's own fields are its ``data``.
Streams are named by strings (a run's id, ``workflow:<name>``, ...).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)

from ledger.hashing import event_hash, format_timestamp

#: Event attributes that are envelope, not ``data``.
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "hash", "prev_hash", "originator_topic"}
)


#: Per event class, its data fields' defaults (see :meth:`StreamEvent.with_defaults`).
_DEFAULTS: dict[type, dict[str, Any]] = {}


class StreamEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """Base of every stored event: envelope fields plus the hash chain."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    hash: str
    prev_hash: str | None

    #: The stable name shown as ``type`` (and hashed); defaults to ``Aggregate.Event``.
    TYPE: ClassVar[str] = ""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "TYPE" not in cls.__dict__:
            cls.TYPE = cls.__qualname__

    @classmethod
    def data_fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.name not in ENVELOPE_FIELDS]  # type: ignore[arg-type]

    def data(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.data_fields()}

    @classmethod
    def with_defaults(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with the defaults of the fields it leaves out (a field added later, such as
        ``workspace``): the event stores them, so its hash must cover them too."""
        defaults = _DEFAULTS.get(cls)
        if defaults is None:
            defaults = _DEFAULTS[cls] = {
                f.name: f.default
                for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.name not in ENVELOPE_FIELDS and f.default is not dataclasses.MISSING
            }
        if not defaults or defaults.keys() <= data.keys():
            return data
        return {name: value for name, value in defaults.items() if name not in data} | data

    def mutate(self, aggregate: Any) -> Any:
        aggregate = super().mutate(aggregate)
        aggregate._last_hash = self.hash
        return aggregate


class StreamCreated(CanInitAggregate[str], StreamEvent):
    """Base of the first event of a stream."""

    originator_topic: str

    def mutate(self, aggregate: Any) -> Any:
        aggregate = CanInitAggregate.mutate(self, aggregate)
        aggregate._last_hash = self.hash
        return aggregate


class FrozenAggregate(RuntimeError):
    """A command on an aggregate kept as saved, which readers share (a programming error)."""


TEvent = TypeVar("TEvent", bound=StreamEvent)
TAgg = TypeVar("TAgg", bound="ChainedAggregate")


class ChainedAggregate(BaseAggregate[str]):
    """An aggregate whose events form a hash chain.

    Subclasses keep state in plain attributes set by event ``apply`` methods; class-level
    annotations would make the library turn the aggregate into a dataclass.
    """

    Event = StreamEvent
    Created = StreamCreated

    @classmethod
    def create_stream(
        cls: type[TAgg], event_class: type[StreamCreated], *, stream: str, at: datetime, **data: Any
    ) -> TAgg:
        """A new aggregate whose stream ``stream`` begins with ``event_class`` and ``data``."""
        data = event_class.with_defaults(data)
        digest = event_hash(
            stream=stream,
            sequence=cls.INITIAL_VERSION,
            type=event_class.TYPE,
            timestamp=format_timestamp(at),
            data=data,
            prev_hash=None,
        )
        return cls._create(event_class, id=stream, timestamp=at, hash=digest, prev_hash=None, **data)

    def record(self, event_class: type[StreamEvent], *, at: datetime, **data: Any) -> None:
        """Append ``event_class`` with ``data`` to this stream, chained to the previous event."""
        if self._frozen:
            raise FrozenAggregate(f"{self.id} is kept as saved: run commands on a copy of it")
        data = event_class.with_defaults(data)
        digest = event_hash(
            stream=self.id,
            sequence=self.version + 1,
            type=event_class.TYPE,
            timestamp=format_timestamp(at),
            data=data,
            prev_hash=self.last_hash,
        )
        self.trigger_event(event_class, timestamp=at, hash=digest, prev_hash=self.last_hash, **data)

    def freeze(self) -> None:
        """Refuse commands from now on: the object is shared as it was saved (a copy of it
        can take commands again)."""
        self._frozen = True

    @property
    def last_hash(self) -> str | None:
        """Hash of the newest event applied, whether stored or still pending."""
        return self._last_hash

    def __base_init__(self, originator_id: Any, originator_version: int, timestamp: datetime) -> None:
        super().__base_init__(originator_id, originator_version, timestamp)
        self._last_hash: str | None = None
        self._frozen = False
