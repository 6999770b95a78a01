"""A run's signatures (``GET /api/runs/{id}/signatures``, the report): each ``Run.Signed`` of
its events, checked again against the signing key it names (SPEC section 10)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ledger.integrity.run_signatures import signature_problem
from ledger.store.event_record import EventRecord

#: fingerprint -> (PEM, principal), or None for a key the ledger does not know.
KeyLookup = Callable[[str], tuple[str, str] | None]


def signatures_of(events: Sequence[EventRecord], key_of: KeyLookup) -> list[dict[str, Any]]:
    """The run's signatures in ledger order, each with ``valid`` and, when not, ``problem``."""
    found = []
    for event in events:
        if event.type != "Run.Signed":
            continue
        d = event.data
        key = key_of(str(d.get("key_fingerprint")))
        problem = (
            "the signing key is not registered"
            if key is None
            else signature_problem(event.stream, d, key[0], key[1])
        )
        found.append(
            {
                "signer": d.get("signer"),
                "role": d.get("role"),
                "meaning": d.get("meaning"),
                "reason": d.get("reason"),
                "signed_at": d.get("signed_at"),
                "recorded_at": event.timestamp,
                "head_hash": d.get("head_hash"),
                "key_fingerprint": d.get("key_fingerprint"),
                "signature": d.get("signature"),
                "hash": event.hash,
                "position": event.position,
                "valid": problem is None,
                "problem": problem,
            }
        )
    return found
