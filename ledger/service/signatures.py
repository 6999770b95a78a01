"""Signing keys, run signatures and the lifecycle of tokens, as ledger events (SPEC section 10):
:class:`SignatureCommands`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ledger.domain.access import (
    TOKEN_HASH_PREFIX,
    Export,
    SigningKey,
    Token,
    signing_key_stream,
    token_stream,
)
from ledger.domain.run import Run
from ledger.errors import Conflict, Forbidden, InvalidRequest, NotFound
from ledger.hashing import parse_timestamp
from ledger.integrity.run_signatures import parse_signing_key, signature_problem
from ledger.reasons import check_reason
from ledger.service.base import LedgerBase

#: How far a signature's ``signed_at`` may be from the server's clock.
SIGNED_AT_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class SignatureRequest:
    """The body of ``POST /api/runs/{id}/signatures``, as checked by the API's model."""

    meaning: str
    reason: str | None
    signed_at: str
    head_hash: str
    key_fingerprint: str
    signature: str


class SignatureCommands(LedgerBase):
    """Keys registered and revoked, runs signed, tokens issued and revoked."""

    # ---- signing keys ---------------------------------------------------------------------
    def get_signing_key(self, fingerprint: str) -> SigningKey:
        key = self._get(signing_key_stream(fingerprint)) if len(fingerprint) <= 64 else None
        if not isinstance(key, SigningKey):
            raise NotFound(f"no signing key {fingerprint!r}")
        return key

    def register_signing_key(self, public_key: str, *, principal: str, role: str) -> SigningKey:
        """Register ``public_key`` (PEM) as ``principal``'s; 409 when it is registered already."""
        try:
            fingerprint, pem = parse_signing_key(public_key)
        except ValueError as exc:
            raise InvalidRequest(f"public_key: {exc}") from None
        if isinstance(self._get(signing_key_stream(fingerprint)), SigningKey):
            raise Conflict(f"signing key {fingerprint} is registered already")
        key = SigningKey.register(
            at=self.clock(), fingerprint=fingerprint, public_key=pem, principal=principal, role=role
        )
        self._save(key)
        return key

    def revoke_signing_key(
        self, fingerprint: str, *, principal: str, admin: bool, reason: str | None = None
    ) -> SigningKey:
        """Revoke a key: its own principal or an admin may; it can sign nothing from now on."""
        reason = check_reason(reason, required=False, action="revoking a signing key")
        key = self.get_signing_key(fingerprint)
        if key.principal != principal and not admin:
            raise Forbidden(f"signing key {fingerprint} belongs to another principal")
        key.revoke(by=principal, reason=reason, at=self.clock())
        self._save(key)
        return key

    # ---- run signatures -------------------------------------------------------------------
    def sign_run(self, run_id: str, body: SignatureRequest, *, signer: str, role: str) -> Run:
        """Record ``Run.Signed`` after SPEC 10's checks: the key is the signer's and not revoked
        (403), ``signed_at`` is within 5 minutes of the clock and the signature verifies
        (422), and ``head_hash`` is the run's last event's (409)."""
        check_reason(body.reason, required=False, action="a signature")
        key = self._get(signing_key_stream(body.key_fingerprint))
        if not isinstance(key, SigningKey):
            raise Forbidden(f"no signing key {body.key_fingerprint} is registered")
        if key.principal != signer:
            raise Forbidden(f"signing key {body.key_fingerprint} belongs to another principal")
        if key.revoked:
            raise Forbidden(f"signing key {body.key_fingerprint} is revoked")
        try:
            signed_at = parse_timestamp(body.signed_at)
        except ValueError:
            raise InvalidRequest(f"signed_at: not an ISO 8601 time: {body.signed_at!r}") from None
        if abs(signed_at - self.clock()) > SIGNED_AT_TOLERANCE:
            raise InvalidRequest("signed_at is more than 5 minutes from the server's clock")
        fields = {**body.__dict__, "signer": signer}
        problem = signature_problem(run_id, fields, key.public_key, key.principal)
        if problem is not None:
            raise InvalidRequest(f"signature: {problem}")

        def command(run: Run) -> None:
            run.sign(signer=signer, role=role, at=self.clock(), **body.__dict__)

        return self._command(run_id, command)

    # ---- tokens ---------------------------------------------------------------------------
    def record_token_issued(self, *, token_id: str, name: str, role: str, token_hash: str, by: str) -> None:
        """``Token.Issued``: the token's id, name, role and a prefix of its hash (never the token)."""
        token = Token.issue(
            at=self.clock(),
            token_id=token_id,
            name=name,
            role=role,
            hash_prefix=token_hash[:TOKEN_HASH_PREFIX],
            issued_by=by,
        )
        self._save(token)

    def record_token_revoked(self, token_id: str, *, by: str, reason: str | None = None) -> None:
        """``Token.Revoked``; a token issued before tokens were ledger events gets its
        ``Token.Issued`` first, without a hash prefix it no longer knows."""
        token = self._get(token_stream(token_id))
        if not isinstance(token, Token):
            token = Token.issue(
                at=self.clock(), token_id=token_id, name="", role="", hash_prefix="", issued_by="unknown"
            )
        token.revoke(by=by, reason=reason, at=self.clock())
        self._save(token)

    # ---- exports --------------------------------------------------------------------------
    def record_export(self, manifest: dict[str, Any], *, by: str) -> None:
        """``Export.Created``: who made a bundle, of what, against which digest (SPEC 10)."""
        digest, counts = manifest["digest"], manifest["counts"]
        export = Export.made(
            export_id=str(uuid.uuid4()),
            at=self.clock(),
            by=by,
            filters=manifest["filters"],
            tree_size=int(digest["tree_size"]),
            root_hash=str(digest["root_hash"]),
            events=int(counts["events"]),
            runs=int(counts["runs"]),
        )
        self._save(export)
