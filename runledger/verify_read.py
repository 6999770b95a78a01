"""Fetching what a verified read checks (sync and async): the run's events, today's digest,
an inclusion proof of the run's last event, and a consistency proof from the trusted digest.
The checks themselves are :mod:`runledger.verify`."""

from __future__ import annotations

import asyncio
import time

from runledger import _calls as calls
from runledger._transport import AsyncTransport, SyncTransport
from runledger.errors import VerificationError
from runledger.models import ConsistencyProofPublic, DigestPublic, EventPublic, InclusionProofPublic
from runledger.verify import TrustedDigest, check_consistency, check_events, check_inclusion

#: The Merkle tree follows the events table a moment behind; wait this long for it to cover
#: the run's last event.
TREE_LAG_SECONDS = 10.0


class VerifiedRead:
    def __init__(self, transport: SyncTransport, trusted: TrustedDigest) -> None:
        self._t = transport
        self.trusted = trusted

    def check(self, run_id: str) -> DigestPublic:
        body = self._t.json(calls.get_run(run_id, "/events"))
        last = check_events(run_id, [EventPublic.model_validate(e) for e in body["events"]])
        deadline = time.monotonic() + TREE_LAG_SECONDS
        digest = DigestPublic.model_validate(self._t.json(calls.digest()))
        while digest.tree_size <= last.position and time.monotonic() < deadline:
            time.sleep(0.1)
            digest = DigestPublic.model_validate(self._t.json(calls.digest()))
        if digest.tree_size <= last.position:
            raise VerificationError(
                f"the digest (size {digest.tree_size}) does not cover position {last.position}"
            )
        proof = self._t.json(calls.inclusion(last.position, digest.tree_size))
        check_inclusion(last, InclusionProofPublic.model_validate(proof), digest)
        trusted = self.trusted.load()
        if trusted is not None:
            consistency = None
            if digest.tree_size > trusted.tree_size:
                raw = self._t.json(calls.consistency(trusted.tree_size, digest.tree_size))
                consistency = ConsistencyProofPublic.model_validate(raw)
            check_consistency(trusted, consistency, digest)
        self.trusted.save(digest)
        return digest


class AsyncVerifiedRead:
    def __init__(self, transport: AsyncTransport, trusted: TrustedDigest) -> None:
        self._t = transport
        self.trusted = trusted

    async def check(self, run_id: str) -> DigestPublic:
        body = await self._t.json(calls.get_run(run_id, "/events"))
        last = check_events(run_id, [EventPublic.model_validate(e) for e in body["events"]])
        deadline = time.monotonic() + TREE_LAG_SECONDS
        digest = DigestPublic.model_validate(await self._t.json(calls.digest()))
        while digest.tree_size <= last.position and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            digest = DigestPublic.model_validate(await self._t.json(calls.digest()))
        if digest.tree_size <= last.position:
            raise VerificationError(
                f"the digest (size {digest.tree_size}) does not cover position {last.position}"
            )
        proof = await self._t.json(calls.inclusion(last.position, digest.tree_size))
        check_inclusion(last, InclusionProofPublic.model_validate(proof), digest)
        trusted = self.trusted.load()
        if trusted is not None:
            consistency = None
            if digest.tree_size > trusted.tree_size:
                raw = await self._t.json(calls.consistency(trusted.tree_size, digest.tree_size))
                consistency = ConsistencyProofPublic.model_validate(raw)
            check_consistency(trusted, consistency, digest)
        self.trusted.save(digest)
        return digest
