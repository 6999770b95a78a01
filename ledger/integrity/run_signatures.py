"""Checking the Ed25519 signatures principals make over runs (SPEC section 10), the same
way on the server (before ``Run.Signed`` is recorded), in ``GET /api/runs/{id}/signatures``
and in ``verify-bundle`` (offline, from the bundle alone)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.hashing import key_fingerprint, signature_message
from ledger.integrity.signing import load_public_key, public_key_pem, verify_signature


def fingerprint_of(key: Ed25519PublicKey) -> str:
    return key_fingerprint(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def parse_signing_key(pem: str) -> tuple[str, str]:
    """``(fingerprint, normalised PEM)`` of an Ed25519 public key in PEM (SubjectPublicKeyInfo);
    ValueError for anything else."""
    if "BEGIN PUBLIC KEY" not in pem:
        raise ValueError("public_key must be an Ed25519 public key in PEM (SubjectPublicKeyInfo)")
    key = load_public_key(pem)
    return fingerprint_of(key), public_key_pem(key)


def signature_problem(run_id: str, signed: Mapping[str, Any], key_pem: str, key_principal: str) -> str | None:
    """Why the signature in ``signed`` (the fields of ``Run.Signed``) is not a valid signature
    by the key ``key_pem`` of ``key_principal`` over run ``run_id``; None when it is."""
    try:
        key = load_public_key(key_pem)
    except ValueError:
        return "the signing key is not an Ed25519 public key"
    if fingerprint_of(key) != signed.get("key_fingerprint"):
        return "the signing key's fingerprint differs from the one the signature names"
    if signed.get("signer") != key_principal:
        return f"the key belongs to {key_principal!r}, not to the signer {signed.get('signer')!r}"
    try:
        signature = bytes.fromhex(str(signed.get("signature", "")))
        message = signature_message(
            run_id=run_id,
            head_hash=str(signed["head_hash"]),
            meaning=str(signed["meaning"]),
            reason=signed.get("reason"),
            signed_at=str(signed["signed_at"]),
            signer=str(signed["signer"]),
        )
    except (KeyError, ValueError, TypeError):
        return "the signature or its fields are malformed"
    if len(signature) != 64 or not verify_signature(key, signature, message):
        return "the Ed25519 signature does not match the run, head hash, meaning, reason, time and signer"
    return None
