"""``/api/tokens`` (admin): create, list and revoke bearer tokens, like ``runledger tokens``."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Response

from api.deps import Admin, RuntimeDep
from api.models import TokenCreated, TokenRequest, TokensPublic
from ledger.errors import NotFound

router = APIRouter(prefix="/api/tokens", tags=["tokens"])
log = structlog.get_logger()


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(body: TokenRequest, runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
    """A new token; its secret is in this response only (the server keeps its hash)."""
    info, token = runtime.tokens.create(name=body.name, role=body.role)
    log.info("token_created", token_id=info.id, name=info.name, role=info.role, by=principal.name)
    return {**info.__dict__, "token": token}


@router.get("", response_model=TokensPublic)
def list_tokens(runtime: RuntimeDep, _: Admin) -> dict[str, Any]:
    return {"tokens": [info.__dict__ for info in runtime.tokens.list()]}


@router.delete("/{token}", status_code=204, response_class=Response)
def revoke_token(
    token: Annotated[str, Path(min_length=1, max_length=100)], runtime: RuntimeDep, principal: Admin
) -> Response:
    """Revoke a token by id, or every live token with this name; effective at once."""
    if runtime.tokens.revoke(token) == 0:
        raise NotFound(f"no active token {token!r}")
    log.info("token_revoked", token=token, by=principal.name)
    return Response(status_code=204)
