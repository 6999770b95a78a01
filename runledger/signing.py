"""The body of ``POST /api/runs/{id}/signatures`` (SPEC section 10), signed on the client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rfc8785


def signature_body(
    run_id: str, head_hash: str, meaning: str, reason: str | None, signer: str, key: Any
) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    signed_at = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    message = {
        "run_id": run_id,
        "head_hash": head_hash,
        "meaning": meaning,
        "reason": reason,
        "signed_at": signed_at,
        "signer": signer,
    }
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    import hashlib

    return {
        "meaning": meaning,
        "reason": reason,
        "signed_at": signed_at,
        "head_hash": head_hash,
        "key_fingerprint": hashlib.sha256(raw).hexdigest(),
        "signature": key.sign(rfc8785.dumps(message)).hex(),
    }
