"""Verified reads (SPEC section 6): the checks a client makes without trusting the server.

Pure functions over what the server sent: every event's hash recomputed (RFC 8785 + SHA-256,
SPEC section 1) and its chain, an RFC 9162 inclusion proof of the run's last event under the
digest, and a consistency proof from the digest this client last trusted (kept in a file, the
way immudb's client keeps its state) to the new one. Any mismatch raises
:class:`~runledger.errors.VerificationError`; only then is the new digest trusted.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ledger.hashing import event_hash
from ledger.integrity.merkle import leaf_hash, verify_consistency, verify_inclusion
from runledger.errors import VerificationError
from runledger.models import ConsistencyProofPublic, DigestPublic, EventPublic, InclusionProofPublic


def _hex(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise VerificationError(f"{what} is not hex: {value!r}") from None
    if len(raw) != 32:
        raise VerificationError(f"{what} is not 32 bytes: {value!r}")
    return raw


def check_events(run_id: str, events: Sequence[EventPublic]) -> EventPublic:
    """Every event's hash recomputed and the chain followed; the last event is returned."""
    if not events:
        raise VerificationError(f"run {run_id}: the server sent no events")
    prev: str | None = None
    for number, event in enumerate(events, start=1):
        where = f"run {run_id} event {number} ({event.type})"
        if event.stream != run_id:
            raise VerificationError(f"{where}: belongs to stream {event.stream!r}")
        if event.sequence != number:
            raise VerificationError(f"{where}: sequence {event.sequence}, expected {number}")
        if event.prev_hash != prev:
            raise VerificationError(f"{where}: prev_hash {event.prev_hash} does not chain to {prev}")
        recomputed = event_hash(
            stream=event.stream,
            sequence=event.sequence,
            type=event.type,
            timestamp=event.timestamp,
            data=event.data,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            raise VerificationError(f"{where}: hash {event.hash} but its content hashes to {recomputed}")
        prev = event.hash
    return events[-1]


def check_inclusion(event: EventPublic, proof: InclusionProofPublic, digest: DigestPublic) -> None:
    if proof.leaf_index != event.position or proof.tree_size != digest.tree_size:
        raise VerificationError(
            f"inclusion proof is for leaf {proof.leaf_index} of {proof.tree_size}, "
            f"asked for {event.position} of {digest.tree_size}"
        )
    path = [_hex(node, "inclusion proof node") for node in proof.audit_path]
    leaf = leaf_hash(_hex(event.hash, "event hash"))
    if not verify_inclusion(
        leaf, event.position, digest.tree_size, path, _hex(digest.root_hash, "root hash")
    ):
        raise VerificationError(
            f"event at position {event.position} is not in the tree of size {digest.tree_size} "
            f"with root {digest.root_hash}"
        )


def check_consistency(trusted: DigestPublic, proof: ConsistencyProofPublic | None, new: DigestPublic) -> None:
    if new.tree_size < trusted.tree_size:
        raise VerificationError(
            f"the ledger shrank: trusted size {trusted.tree_size}, the server now says {new.tree_size}"
        )
    if new.tree_size == trusted.tree_size:
        if new.root_hash != trusted.root_hash:
            raise VerificationError(f"the root of size {new.tree_size} changed since it was trusted")
        return
    assert proof is not None
    if proof.first != trusted.tree_size or proof.second != new.tree_size:
        raise VerificationError("consistency proof is for other tree sizes than asked")
    path = [_hex(node, "consistency proof node") for node in proof.proof]
    if not verify_consistency(
        trusted.tree_size,
        new.tree_size,
        _hex(trusted.root_hash, "trusted root"),
        _hex(new.root_hash, "root hash"),
        path,
    ):
        raise VerificationError(
            f"the tree of size {new.tree_size} does not extend the trusted one of size {trusted.tree_size}: "
            "history was rewritten"
        )


class TrustedDigest:
    """The last digest this client verified, in a JSON file (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> DigestPublic | None:
        try:
            return DigestPublic.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise VerificationError(f"trusted digest {self.path} is unreadable: {exc}") from None

    def save(self, digest: DigestPublic) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".digest-")
        with os.fdopen(fd, "w") as out:
            json.dump({"tree_size": digest.tree_size, "root_hash": digest.root_hash, "at": digest.at}, out)
        os.replace(tmp, self.path)
