"""Signing a run on the client (SPEC section 10): the body of ``POST /api/runs/{id}/signatures``
and the Ed25519 key files of ``runledger keys create``. The private key never leaves the
client; the server checks the signature with the public key registered for the signer."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.hashing import format_timestamp, key_fingerprint, signature_message

MEANINGS = ("reviewed", "approved", "rejected", "responsibility", "authorship")


def fingerprint(key: Ed25519PrivateKey) -> str:
    """The key's fingerprint: the hex SHA-256 of its raw 32-byte public key."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key_fingerprint(raw)


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (PKCS 8, unencrypted); ValueError otherwise."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def create_key_files(out: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """A new key pair: the private key in ``out`` (mode 0600, never overwritten) and the public
    key in ``out.pub``; ``(private, public, fingerprint)``."""
    private = Path(out)
    public = private.with_name(private.name + ".pub")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # FileExistsError if there
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public.write_text(public_key_pem(key))
    return private, public, fingerprint(key)


def signature_body(
    run_id: str,
    head_hash: str,
    meaning: str,
    reason: str | None,
    signer: str,
    key: Ed25519PrivateKey,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The request body: the signed fields and the hex Ed25519 signature over the RFC 8785
    JSON of ``{run_id, head_hash, meaning, reason, signed_at, signer}``."""
    signed_at = format_timestamp(at or datetime.now(UTC))
    message = signature_message(
        run_id=run_id, head_hash=head_hash, meaning=meaning, reason=reason, signed_at=signed_at, signer=signer
    )
    return {
        "meaning": meaning,
        "reason": reason,
        "signed_at": signed_at,
        "head_hash": head_hash,
        "key_fingerprint": fingerprint(key),
        "signature": key.sign(message).hex(),
    }
