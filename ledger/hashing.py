"""Pure hashing rules of SPEC section 1: canonical JSON, event hashes, file hashes.

Every hash in the product is the lowercase hex SHA-256 of some bytes; structured values are
hashed over their RFC 8785 canonical JSON.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

from ledger.types import JSONValue

HEX_SHA256_LENGTH = 64

# Fast path: when every string is ASCII, every integer within 15 digits and every float either
# integral or of a magnitude Python prints without an exponent, RFC 8785 is exactly
# ``orjson.dumps`` with sorted keys (compact, the same key order, escapes and shortest float
# digits as ``json.dumps(sort_keys=True)``, a dozen times faster) once integral floats are
# written as integers (ES6 prints 120.0 as 120). One walk checks that and converts; anything
# else takes the ``rfc8785`` path. tests/unit/test_hashing_fast_path.py pins the equality.
_MAX_FAST_INT = 10**15


class _NotFast(Exception):
    pass


def _fast_form(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        if not value.isascii():
            raise _NotFast
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                raise _NotFast
            out[key] = _fast_form(item)
        return out
    if kind is list or kind is tuple:
        return [_fast_form(item) for item in value]
    if kind is bool or value is None:
        return value
    if kind is int:
        if -_MAX_FAST_INT < value < _MAX_FAST_INT:
            return value
        raise _NotFast
    if kind is float:
        if value.is_integer() and -_MAX_FAST_INT < value < _MAX_FAST_INT:
            return int(value)
        if 1e-4 <= abs(value) < 1e15:
            return value
    raise _NotFast


def canonical_json(value: JSONValue | Mapping[str, Any]) -> bytes:
    """The RFC 8785 (JCS) serialisation of ``value``."""
    try:
        return orjson.dumps(_fast_form(value), option=orjson.OPT_SORT_KEYS)
    except (_NotFast, ValueError, RecursionError, orjson.JSONEncodeError):
        return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def definition_hash(definition: Mapping[str, Any]) -> str:
    """The hash of a workflow definition exactly as submitted (after YAML is parsed)."""
    return sha256_hex(canonical_json(definition))


@functools.lru_cache(maxsize=512)
def format_timestamp(at: datetime) -> str:
    """UTC ISO 8601 with microseconds and a ``Z``, the one timestamp format events show.
    Cached: a command formats the same instant for each event it records (equal instants
    in any zone give the same text, so the cache's equality is the right one)."""
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = at.astimezone(UTC)
    if utc.year >= 1000:  # isoformat is the same text, several times faster than strftime
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; also accepts any ISO 8601 with an offset (RFC 3339's
    lower-case ``t`` and ``z`` too). ValueError for anything else, a time outside years 1 to
    9999 in UTC included."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is in year 0 in UTC
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None


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


_HEX_DIGITS = frozenset("0123456789abcdef")


def is_sha256_hex(value: object) -> bool:
    """A lowercase hex SHA-256 (a set comparison: this is on the retention scan's hot path)."""
    return isinstance(value, str) and len(value) == HEX_SHA256_LENGTH and _HEX_DIGITS.issuperset(value)


#: The fields a run signature covers, in the body of ``POST /api/runs/{id}/signatures`` and in
#: ``Run.Signed`` (SPEC section 10).
SIGNED_FIELDS = ("run_id", "head_hash", "meaning", "reason", "signed_at", "signer")


def signature_message(
    *, run_id: str, head_hash: str, meaning: str, reason: str | None, signed_at: str, signer: str
) -> bytes:
    """The bytes an Ed25519 run signature is made over: the RFC 8785 JSON of the run id, the
    head hash signed, the meaning, the reason (None when absent), the time and the signer. The
    run id binds the signature to its record (21 CFR 11.70): copied to another run, it fails."""
    return canonical_json(
        {
            "run_id": run_id,
            "head_hash": head_hash,
            "meaning": meaning,
            "reason": reason,
            "signed_at": signed_at,
            "signer": signer,
        }
    )


def key_fingerprint(raw_public_key: bytes) -> str:
    """A signing key's fingerprint: the lowercase hex SHA-256 of its raw 32 bytes."""
    return sha256_hex(raw_public_key)
