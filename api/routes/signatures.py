"""Signing keys (``/api/signing-keys``) and run signatures (``/api/runs/{id}/signatures``),
SPEC section 10: keys are registered and revoked as ledger events, and every signature is an
Ed25519 signature made on the client over the run's head."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Response

from api.deps import Auditor, RuntimeDep
from api.models import SignatureRequestBody, SigningKeyRequest
from api.runtime import Runtime
from api.scope import ScopedRunId, WorkspaceDep
from ledger.domain.access import SigningKey
from ledger.errors import NotFound
from ledger.service.signatures import SignatureRequest
from projections.views.rundetail import run_events
from projections.views.signatures import signatures_of
from runledger.models import SignaturePublic, SignaturesPublic, SigningKeyPublic, SigningKeysPublic

keys = APIRouter(prefix="/api/signing-keys", tags=["signatures"])
runs = APIRouter(prefix="/api/runs", tags=["signatures"])
log = structlog.get_logger()

Fingerprint = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the raw key")]


def _public(runtime: Runtime, key: SigningKey) -> dict[str, Any]:
    events = runtime.ledger.stream_events(key.id)
    revoked = [e.timestamp for e in events if e.type == "SigningKey.Revoked"]
    return {
        "fingerprint": key.fingerprint,
        "principal": key.principal,
        "public_key": key.public_key,
        "registered_at": events[0].timestamp,
        "revoked_at": revoked[0] if revoked else None,
    }


@keys.post("", status_code=201, response_model=SigningKeyPublic)
def register_key(
    body: SigningKeyRequest, runtime: RuntimeDep, principal: Auditor, _: WorkspaceDep
) -> dict[str, Any]:
    """Register an Ed25519 public key (PEM) for the calling principal (``SigningKey.Registered``)."""
    key = runtime.ledger.register_signing_key(body.public_key, principal=principal.name, role=principal.role)
    log.info("signing_key_registered", fingerprint=key.fingerprint, principal=principal.name)
    return _public(runtime, key)


@keys.get("", response_model=SigningKeysPublic)
def list_keys(runtime: RuntimeDep, principal: Auditor, _: WorkspaceDep) -> dict[str, Any]:
    """Every signing key ever registered, revoked ones with ``revoked_at``; to a token of
    some workspaces only, its own principal's (SPEC 9: no other workspace's names)."""
    found = []
    for stream in runtime.ledger.reader.stream_ids("signing-key:"):
        key = runtime.ledger.get_signing_key(stream.split(":", 1)[1])
        if principal.every_workspace or key.principal == principal.name:
            found.append(_public(runtime, key))
    return {"keys": found}


@keys.get("/{fingerprint}", response_model=SigningKeyPublic)
def show_key(
    fingerprint: Fingerprint, runtime: RuntimeDep, principal: Auditor, _: WorkspaceDep
) -> dict[str, Any]:
    key = runtime.ledger.get_signing_key(fingerprint)
    if not (principal.every_workspace or key.principal == principal.name):
        raise NotFound(f"no signing key {fingerprint!r}")
    return _public(runtime, key)


@keys.delete("/{fingerprint}", status_code=204, response_class=Response)
def revoke_key(
    fingerprint: Fingerprint, runtime: RuntimeDep, principal: Auditor, _: WorkspaceDep
) -> Response:
    """Revoke a key (its own principal, or an admin): it signs nothing from now on; the
    signatures it made stay valid (``SigningKey.Revoked``)."""
    runtime.ledger.revoke_signing_key(
        fingerprint, principal=principal.name, admin=principal.has("admin") and principal.every_workspace
    )
    log.info("signing_key_revoked", fingerprint=fingerprint, by=principal.name)
    return Response(status_code=204)


def key_lookup(runtime: Runtime) -> Any:
    def key_of(fingerprint: str) -> tuple[str, str] | None:
        try:
            key = runtime.ledger.get_signing_key(fingerprint)
        except NotFound:
            return None
        return key.public_key, key.principal

    return key_of


@runs.post("/{run_id}/signatures", status_code=201, response_model=SignaturePublic)
def sign_run(
    run_id: ScopedRunId, body: SignatureRequestBody, runtime: RuntimeDep, principal: Auditor
) -> dict[str, Any]:
    """Record ``Run.Signed``: the signature must verify with the signer's own registered,
    unrevoked key (403 otherwise) over the run's current head (409 when it moved on)."""
    request = SignatureRequest(**body.model_dump())
    runtime.ledger.sign_run(run_id, request, signer=principal.name, role=principal.role)
    log.info("run_signed", run_id=run_id, signer=principal.name, meaning=body.meaning)
    events = run_events(runtime.ledger, run_id)
    mine = [s for s in signatures_of(events, key_lookup(runtime)) if s["signature"] == body.signature]
    return mine[-1]


@runs.get("/{run_id}/signatures", response_model=SignaturesPublic)
def list_signatures(run_id: ScopedRunId, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    """The run's signatures: printed name, UTC time, meaning, reason and ``valid``."""
    return {"signatures": signatures_of(run_events(runtime.ledger, run_id), key_lookup(runtime))}
