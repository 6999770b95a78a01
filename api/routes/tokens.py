"""``/api/tokens`` (admin): create, list and revoke bearer tokens, like ``runledger tokens``."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Response

from api.auth import record_issued
from api.deps import Admin, RuntimeDep
from api.models import TokenCreated, TokenRequest, TokensPublic
from api.redact import looks_like_secret
from ledger.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/api/tokens", tags=["tokens"])
log = structlog.get_logger()


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(body: TokenRequest, runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
    """A new token; its secret is in this response only (the server keeps its hash)."""
    if looks_like_secret(body.name):
        raise InvalidRequest("a token name must not look like a token (rl_ and 32 or more characters)")
    info, token = runtime.tokens.create(name=body.name, role=body.role)
    record_issued(runtime.ledger, info, token, by=principal.name)
    log.info("token_created", token_id=info.id, name=info.name, role=info.role, by=principal.name)
    return {**info.__dict__, "token": token}


@router.get("", response_model=TokensPublic)
def list_tokens(runtime: RuntimeDep, _: Admin) -> dict[str, Any]:
    return {"tokens": [info.__dict__ for info in runtime.tokens.list()]}


@router.delete("/{token_ref}", status_code=204, response_class=Response)
def revoke_token(
    token_ref: Annotated[str, Path(min_length=1, max_length=100, description="the token's id or name")],
    runtime: RuntimeDep,
    principal: Admin,
) -> Response:
    """Revoke a token by id, or every live token with this name; effective at once. A token's
    secret is refused (422) and never echoed: it would sit in access logs and proxies."""
    if looks_like_secret(token_ref) or runtime.tokens.authenticate(token_ref) is not None:
        raise InvalidRequest("revoke a token by its id or name, never by its secret")
    revoking = runtime.tokens.live_ids(token_ref)
    if runtime.tokens.revoke(token_ref) == 0:
        raise NotFound("no active token with that id or name")
    for token_id in revoking:
        runtime.ledger.record_token_revoked(token_id, by=principal.name)
    log.info("token_revoked", token_ref=token_ref, by=principal.name)
    return Response(status_code=204)
