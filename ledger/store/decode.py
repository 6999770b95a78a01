"""Decoding stored rows into the contract's event shape and recomputing their hashes, fast.

:func:`ledger.store.event_record.decode_row` plus :meth:`EventRecord.recompute_hash` are the reference;
this module gives the same results at several times the speed for verification and exports:
when a stored row is pure ASCII with no ``\\u`` escapes, no floats outside 1e-4..1e16 and
no integers beyond 2**53, RFC 8785 canonical JSON is exactly ``json.dumps(sort_keys=True)``
with compact separators, and ``orjson.dumps(OPT_SORT_KEYS)`` (same key order, string escapes,
number digits; pinned by the tests against ``rfc8785``), so a C encoder can be used; every
other row takes the ``rfc8785`` path.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from ledger.hashing import canonical_json, format_timestamp, parse_timestamp
from ledger.store.event_record import _NOT_DATA, EventRecord, type_from_topic


class _FloatSeen(Exception):
    pass


def _checked_float(text: str) -> float | int:
    """Floats whose ECMAScript rendering (RFC 8785) equals Python's ``repr``: integral values
    below 2**53 (ECMAScript prints them without ``.0``, so they become ``int``) and the others
    between 1e-4 and 1e16 (where neither switches to exponent notation). Others: slow path."""
    value = float(text)
    if value.is_integer():
        if abs(value) < 2**53:
            return int(value)
    elif 1e-4 <= abs(value) < 1e16:
        return value
    raise _FloatSeen(text)


def _timestamp(stamp: Any) -> str:
    if isinstance(stamp, dict):  # the library's transcoding of datetimes
        stamp = stamp.get("_data_")
    text = str(stamp)
    if len(text) == 32 and text.endswith("+00:00") and text[19] == ".":
        return text[:26] + "Z"
    return format_timestamp(parse_timestamp(text))


def _checked_int(text: str) -> int:
    value = int(text)
    if -(2**53) < value < 2**53:
        return value
    raise _FloatSeen(text)  # beyond the I-JSON range: let rfc8785 decide


_DECODER = json.JSONDecoder(parse_float=_checked_float, parse_int=_checked_int)
_MAX_FAST_INT = 10**15


def _orjson_safe(value: Any) -> bool:
    """Whether every number in ``value`` prints the same under orjson as under RFC 8785:
    integers within 15 digits, floats non-integral within 1e-4..1e16 (a plain walk: cheaper
    than decoding with per-number hooks)."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return bool(-_MAX_FAST_INT < value < _MAX_FAST_INT)
    if kind is float:
        return bool(not value.is_integer() and 1e-4 <= abs(value) < 1e16)
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for item in value:  # noqa: SIM110 (a loop: all() with a generator is slower here)
        if type(item) is not str and not _orjson_safe(item):
            return False
    return True


def load_json(raw: bytes) -> tuple[Any, bool]:
    """``json.loads`` plus whether the value may take the fast canonical path."""
    if raw.isascii() and b"\\u" not in raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # e.g. NaN or a huge integer: the stdlib decoder below decides
        else:
            if _orjson_safe(value):
                return value, True
        try:
            return _DECODER.decode(raw.decode()), True
        except _FloatSeen:
            pass
    return json.loads(raw), False


def canonical(value: Any, *, fast: bool) -> bytes:
    """RFC 8785 canonical JSON; ``fast`` only for values :func:`load_json` cleared."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS) if fast else canonical_json(value)


def contract_hash(event: dict[str, Any], *, fast: bool) -> str:
    """The hash of an event shown as the contract shows it (``position``/``hash`` ignored)."""
    hashed = {key: event.get(key) for key in ("stream", "sequence", "type", "timestamp", "data", "prev_hash")}
    return hashlib.sha256(canonical(hashed, fast=fast)).hexdigest()


def decode_and_hash(
    position: int, stream: str, sequence: int, topic: str, state: bytes
) -> tuple[EventRecord, str]:
    """The event as the contract shows it, and the hash recomputed from its content."""
    payload, fast = load_json(state)
    record = EventRecord(
        stream=str(stream),
        sequence=int(sequence),
        position=position,
        type=type_from_topic(topic),
        timestamp=_timestamp(payload.get("timestamp")),
        data={k: v for k, v in payload.items() if k not in _NOT_DATA},
        hash=str(payload.get("hash")),
        prev_hash=payload.get("prev_hash"),
    )
    hashed = {
        "stream": record.stream,
        "sequence": record.sequence,
        "type": record.type,
        "timestamp": record.timestamp,
        "data": record.data,
        "prev_hash": record.prev_hash,
    }
    fast = fast and record.stream.isascii() and record.type.isascii()
    return record, hashlib.sha256(canonical(hashed, fast=fast)).hexdigest()


#: What :func:`check_row` answers: (position, stream, sequence, stored hash, prev_hash,
#: recomputed hash).
Checked = tuple[int, str, int, str, Any, str]


def check_row(position: int, stream: str, sequence: int, topic: str, state: bytes) -> Checked:
    """The hashes of one stored row, without building the event (verification's hot path).
    A row that cannot be read or hashed at all (tampered with) gets an explanation instead of
    a recomputed hash, so it is reported, never a crash."""
    try:
        payload, fast = load_json(state)
        if not isinstance(payload, dict):
            raise ValueError("the stored state is not a JSON object")
        stored = payload.pop("hash", None)
        prev_hash = payload.pop("prev_hash", None)
        stamp = payload.pop("timestamp", None)
        for key in _ENVELOPE_REST:
            payload.pop(key, None)
        kind = type_from_topic(topic)
        hashed = {
            "data": payload,
            "prev_hash": prev_hash,
            "sequence": sequence,
            "stream": stream,
            "timestamp": _timestamp(stamp),
            "type": kind,
        }
        fast = fast and stream.isascii() and kind.isascii()
        recomputed = hashlib.sha256(canonical(hashed, fast=fast)).hexdigest()
    except (ValueError, TypeError) as exc:  # rfc8785's errors are ValueErrors too
        return position, stream, sequence, "", None, f"<unreadable row: {exc}>"
    return position, stream, sequence, str(stored), prev_hash, recomputed


_ENVELOPE_REST = tuple(_NOT_DATA - {"hash", "prev_hash", "timestamp"})


def decode(position: int, stream: str, sequence: int, topic: str, state: bytes) -> EventRecord:
    """The event as the contract shows it (no hash recomputation: exports, summaries)."""
    try:
        payload = orjson.loads(state)
    except orjson.JSONDecodeError:  # e.g. integers beyond 64 bits
        payload = json.loads(state)
    stamp = payload.pop("timestamp", None)
    stored = payload.pop("hash", None)
    prev_hash = payload.pop("prev_hash", None)
    for key in _ENVELOPE_REST:
        payload.pop(key, None)
    return EventRecord(
        stream=str(stream),
        sequence=int(sequence),
        position=position,
        type=type_from_topic(topic),
        timestamp=_timestamp(stamp),
        data=payload,
        hash=str(stored),
        prev_hash=prev_hash,
    )
