"""The ledger's Ed25519 signing key: created on first use in ``state_dir`` with owner-only
permissions; the public key is published (PEM and raw hex) for anyone to check bundles."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.settings import Settings

log = structlog.get_logger()

KEY_FILE = "ledger-ed25519.key"
_lock = threading.Lock()


def key_path(settings: Settings) -> Path:
    return settings.state_dir / KEY_FILE


def load_or_create_key(settings: Settings) -> Ed25519PrivateKey:
    path = key_path(settings)
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:  # O_EXCL: a concurrent first start keeps whichever key was written first
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
                log.info("signing_key_created", path=str(path))
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return loaded


class Signer:
    def __init__(self, settings: Settings) -> None:
        self.key = load_or_create_key(settings)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)

    def public_key_hex(self) -> str:
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(text: str | bytes) -> Ed25519PublicKey:
    """A PEM public key, or the 32 raw bytes as 64 hex characters."""
    raw = text.encode() if isinstance(text, str) else text
    stripped = raw.strip()
    if len(stripped) == 64:
        try:
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(stripped.decode()))
        except ValueError:
            pass
    key = serialization.load_pem_public_key(stripped)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify_signature(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
