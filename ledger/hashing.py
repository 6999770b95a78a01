"""Pure hashing rules of SPEC section 1: canonical JSON, event hashes, file hashes.

Every hash in the product is the lowercase hex SHA-256 of some bytes; structured values are
hashed over their RFC 8785 canonical JSON.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from ledger.types import JSONValue

HEX_SHA256_LENGTH = 64


def canonical_json(value: JSONValue | Mapping[str, Any]) -> bytes:
    """The RFC 8785 (JCS) serialisation of ``value``."""
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def definition_hash(definition: Mapping[str, Any]) -> str:
    """The hash of a workflow definition exactly as submitted (after YAML is parsed)."""
    return sha256_hex(canonical_json(definition))


def format_timestamp(at: datetime) -> str:
    """UTC ISO 8601 with microseconds and a ``Z``, the one timestamp format events show."""
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; also accepts any ISO 8601 with an offset."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def event_hash(
    *,
    stream: str,
    sequence: int,
    type: str,
    timestamp: str,
    data: Mapping[str, Any],
    prev_hash: str | None,
) -> str:
    """SHA-256 of the canonical JSON of ``{stream, sequence, type, timestamp, data, prev_hash}``."""
    return sha256_hex(
        canonical_json(
            {
                "stream": stream,
                "sequence": sequence,
                "type": type,
                "timestamp": timestamp,
                "data": data,
                "prev_hash": prev_hash,
            }
        )
    )


def is_sha256_hex(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == HEX_SHA256_LENGTH
        and all(c in "0123456789abcdef" for c in value)
    )
