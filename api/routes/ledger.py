"""``/api/ledger``: the Merkle digest, RFC 9162 inclusion and consistency proofs, a full
verification, and the public key that signs exports (SPEC section 2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from api.deps import Auditor, RuntimeDep
from api.params import MAX_POSITION
from ledger.errors import InvalidRequest, NotFound
from ledger.integrity.merkle_store import MerkleStore
from ledger.integrity.signing import Signer
from ledger.integrity.verify import verify_ledger

router = APIRouter(prefix="/api/ledger", tags=["ledger"])


def merkle_store(request: Request, runtime: RuntimeDep) -> MerkleStore:
    """One store per app: its tables are ensured once, then every request only catches up."""
    store: MerkleStore | None = getattr(request.app.state, "merkle_store", None)
    if store is None:
        store = MerkleStore(runtime.settings)
        request.app.state.merkle_store = store
    return store


@router.get("/digest")
def digest(request: Request, runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    """``{tree_size, root_hash, at}``: save it, and later ask for a consistency proof."""
    return merkle_store(request, runtime).digest()


@router.get("/proof/inclusion")
def inclusion_proof(
    request: Request,
    runtime: RuntimeDep,
    _: Auditor,
    position: Annotated[int, Query(ge=0, le=MAX_POSITION)],
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
) -> dict[str, Any]:
    """RFC 9162 2.1.3 audit path of the event at ``position`` in the tree of ``tree_size``."""
    try:
        return merkle_store(request, runtime).inclusion(position, tree_size)
    except KeyError as exc:
        raise NotFound(f"no event at position {position} in the ledger's tree") from exc
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


@router.get("/proof/consistency")
def consistency_proof(
    request: Request,
    runtime: RuntimeDep,
    _: Auditor,
    first: Annotated[int, Query(ge=1, le=MAX_POSITION)],
    second: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
) -> dict[str, Any]:
    """RFC 9162 2.1.4 proof that the tree of size ``second`` extends the one of ``first``."""
    try:
        return merkle_store(request, runtime).consistency(first, second)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


@router.post("/verify")
def verify(runtime: RuntimeDep, _: Auditor) -> dict[str, Any]:
    """Recheck every event, chain, sequence, position and the Merkle root."""
    return verify_ledger(runtime.settings, workers=1).to_json()  # no process pool in a server


PEM = "application/x-pem-file"


@router.get(
    "/public-key",
    response_model=None,
    responses={200: {"content": {PEM: {"schema": {"type": "string"}}}}},
)
def public_key(request: Request, runtime: RuntimeDep, _: Auditor) -> dict[str, Any] | Response:
    """The Ed25519 key that signs compliance bundles: JSON with the PEM and the raw hex, or
    the PEM file alone with ``Accept: application/x-pem-file`` (``curl ... > ledger.pub``)."""
    signer = Signer(runtime.settings)
    if PEM in request.headers.get("accept", ""):
        return PlainTextResponse(signer.public_key_pem(), media_type=PEM)
    return {
        "algorithm": "Ed25519",
        "public_key": signer.public_key_pem(),
        "public_key_hex": signer.public_key_hex(),
    }
