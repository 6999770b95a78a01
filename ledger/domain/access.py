"""Who may act on the ledger, as ledger events (SPEC section 10, 21 CFR 11.10(d)): the
lifecycle of bearer tokens (:class:`Token`, stream ``token:<id>``) and of the Ed25519 keys
principals sign runs with (:class:`SigningKey`, stream ``signing-key:<fingerprint>``).

A token's events hold a prefix of its SHA-256, never the token; the token table of
``api/auth.py`` stays the lookup a request is authenticated by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.domain.aggregate import ChainedAggregate, StreamCreated, StreamEvent
from ledger.errors import Conflict

#: Roles in the order they include each other (a worker is outside the order).
ROLE_RANK = {"auditor": 1, "operator": 2, "admin": 3}
#: How many hex digits of a token's SHA-256 its events keep.
TOKEN_HASH_PREFIX = 12


def role_at_least(role: str, required: str) -> bool:
    """Whether ``role`` includes ``required`` (admin > operator > auditor; worker includes none)."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK.get(required, 99)


def token_stream(token_id: str) -> str:
    return f"token:{token_id}"


def signing_key_stream(fingerprint: str) -> str:
    return f"signing-key:{fingerprint}"


class Token(ChainedAggregate):
    """A bearer token's life: issued to a name with a role, then perhaps revoked."""

    def __init__(self, token_id: str, name: str, role: str, hash_prefix: str, issued_by: str) -> None:
        self.token_id = token_id
        self.name = name
        self.role = role
        self.revoked = False

    class Issued(StreamCreated):
        token_id: str
        name: str
        role: str
        #: The first ``TOKEN_HASH_PREFIX`` hex digits of the token's SHA-256 (never the token).
        hash_prefix: str
        issued_by: str

    class Revoked(StreamEvent):
        token_id: str
        by: str
        reason: str | None

        def apply(self, token: Token) -> None:
            token.revoked = True

    @classmethod
    def issue(cls, *, at: datetime, **facts: Any) -> Token:
        return cls.create_stream(cls.Issued, stream=token_stream(facts["token_id"]), at=at, **facts)

    def revoke(self, *, by: str, reason: str | None, at: datetime) -> None:
        if self.revoked:
            raise Conflict(f"token {self.token_id} is already revoked")
        self.record(self.Revoked, at=at, token_id=self.token_id, by=by, reason=reason)


class SigningKey(ChainedAggregate):
    """A principal's Ed25519 public key for signing runs: registered, then perhaps revoked."""

    def __init__(self, fingerprint: str, public_key: str, principal: str, role: str) -> None:
        self.fingerprint = fingerprint
        self.public_key = public_key
        self.principal = principal
        self.role = role
        self.revoked = False

    class Registered(StreamCreated):
        #: Lowercase hex SHA-256 of the raw 32-byte public key.
        fingerprint: str
        #: PEM, SubjectPublicKeyInfo.
        public_key: str
        #: The token name the key signs for (the signer's printed name).
        principal: str
        role: str

    class Revoked(StreamEvent):
        fingerprint: str
        by: str
        reason: str | None

        def apply(self, key: SigningKey) -> None:
            key.revoked = True

    @classmethod
    def register(cls, *, at: datetime, **facts: Any) -> SigningKey:
        stream = signing_key_stream(facts["fingerprint"])
        return cls.create_stream(cls.Registered, stream=stream, at=at, **facts)

    def revoke(self, *, by: str, reason: str | None, at: datetime) -> None:
        if self.revoked:
            raise Conflict(f"signing key {self.fingerprint} is already revoked")
        self.record(self.Revoked, at=at, fingerprint=self.fingerprint, by=by, reason=reason)


class Export(ChainedAggregate):
    """A compliance bundle made (SPEC 10: exports are in the audit trail), stream ``export:<id>``."""

    def __init__(
        self, by: str, filters: dict[str, Any], tree_size: int, root_hash: str, events: int, runs: int
    ) -> None:
        self.by = by

    class Created(StreamCreated):
        by: str
        filters: dict[str, Any]
        #: The digest the bundle was made against.
        tree_size: int
        root_hash: str
        events: int
        runs: int

    @classmethod
    def made(cls, *, export_id: str, at: datetime, **facts: Any) -> Export:
        return cls.create_stream(cls.Created, stream=f"export:{export_id}", at=at, **facts)
