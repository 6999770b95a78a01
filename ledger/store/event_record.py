"""Events as the contract shows them: ``{stream, sequence, position, type, timestamp, data,
hash, prev_hash}``, decoded straight from stored rows (no domain classes involved), so the
read side, verification and exports never depend on today's aggregate code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.domain.aggregate import ENVELOPE_FIELDS
from ledger.hashing import event_hash, format_timestamp, parse_timestamp

#: Keys of the stored state that are not the event's ``data``.
_NOT_DATA = ENVELOPE_FIELDS | {"class_version"}


@dataclass(frozen=True, slots=True)
class EventRecord:
    stream: str
    sequence: int
    position: int
    type: str
    timestamp: str
    data: dict[str, Any]
    hash: str
    prev_hash: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "sequence": self.sequence,
            "position": self.position,
            "type": self.type,
            "timestamp": self.timestamp,
            "data": self.data,
            "hash": self.hash,
            "prev_hash": self.prev_hash,
        }

    def recompute_hash(self) -> str:
        return event_hash(
            stream=self.stream,
            sequence=self.sequence,
            type=self.type,
            timestamp=self.timestamp,
            data=self.data,
            prev_hash=self.prev_hash,
        )


def type_from_topic(topic: str) -> str:
    """``ledger.domain.run:Run.Triggered`` -> ``Run.Triggered``."""
    return topic.split(":", 1)[-1]


def decode_row(
    notification_id: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes | memoryview | str,
) -> EventRecord:
    raw = bytes(state) if isinstance(state, memoryview) else state
    payload: dict[str, Any] = json.loads(raw)
    stamp = payload.get("timestamp")
    if isinstance(stamp, dict):  # the library's transcoding of datetimes
        stamp = stamp.get("_data_")
    timestamp = format_timestamp(parse_timestamp(str(stamp)))
    return EventRecord(
        stream=str(originator_id),
        sequence=int(originator_version),
        position=int(notification_id) - 1,
        type=type_from_topic(topic),
        timestamp=timestamp,
        data={k: v for k, v in payload.items() if k not in _NOT_DATA},
        hash=str(payload.get("hash")),
        prev_hash=payload.get("prev_hash"),
    )
