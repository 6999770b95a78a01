"""Sensitive parameter values (SPEC section 11): sealed with AES-256-GCM under their run's key.

A sealed value is a JSON object ``{"sealed": "AES-256-GCM", "nonce": <b64>, "ciphertext":
<b64>}`` in the run's ``parameters``: no parameter type allows an object, so an object there
is always a sealed value. The associated data is the run id and the parameter name, so a
ciphertext moved to another run or parameter does not open. The event stores (and its hash
covers) the ciphertext; verification never needs the key, and once the key is destroyed the
value is gone for good (crypto-shredding).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
#: What a sensitive value reads as once its run's key is destroyed.
ERASED = "[erased]"
#: What a sensitive value reads as to a reader who may not see it (or a view, which has no key).
HIDDEN = "[sensitive]"


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _aad(run_id: str, name: str) -> bytes:
    return f"{run_id}\x00{name}".encode()


def seal(key: bytes, run_id: str, name: str, value: Any) -> dict[str, str]:
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, orjson.dumps(value), _aad(run_id, name))
    return {
        "sealed": ALGORITHM,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("sealed") == ALGORITHM


def unseal(key: bytes, run_id: str, name: str, value: Mapping[str, str]) -> Any:
    """The plain value; ``ValueError`` when the key or the associated data do not fit."""
    try:
        plain = AESGCM(key).decrypt(
            base64.b64decode(value["nonce"]), base64.b64decode(value["ciphertext"]), _aad(run_id, name)
        )
    except (InvalidTag, KeyError, ValueError) as exc:
        raise ValueError(f"sealed parameter {name!r} of run {run_id} does not open") from exc
    return orjson.loads(plain)


def seal_parameters(
    key: bytes, run_id: str, parameters: Mapping[str, Any], sensitive: frozenset[str]
) -> dict[str, Any]:
    """``parameters`` with the values of the ``sensitive`` names sealed (None stays None)."""
    return {
        name: seal(key, run_id, name, value) if name in sensitive and value is not None else value
        for name, value in parameters.items()
    }


def masked(parameters: Mapping[str, Any], *, erased: bool) -> dict[str, Any]:
    """``parameters`` as a reader without the key sees them: sealed values ``[sensitive]``,
    or ``[erased]`` once the run is expunged."""
    shown = ERASED if erased else HIDDEN
    return {name: shown if is_sealed(value) else value for name, value in parameters.items()}


def erased_text(text: str) -> str:
    """A text a reader without the key saw (a recorded command, with ``[sensitive]`` where a
    sealed value went) as it reads once the run is expunged."""
    return text.replace(HIDDEN, ERASED)


def revealed(
    key: bytes | None, run_id: str, parameters: Mapping[str, Any], *, erased: bool
) -> dict[str, Any]:
    """``parameters`` with sealed values opened with ``key`` (``[erased]`` without one)."""
    if key is None or erased:
        return masked(parameters, erased=True)
    return {
        name: unseal(key, run_id, name, value) if is_sealed(value) else value
        for name, value in parameters.items()
    }
