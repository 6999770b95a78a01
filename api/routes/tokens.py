"""``/api/tokens`` (admin): create, list and revoke bearer tokens, like ``runledger tokens``."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Path, Response

from api.auth import ALL_WORKSPACES, Principal, record_issued
from api.deps import Admin, RuntimeDep
from api.models import TokenCreated, TokenRequest, TokensPublic
from api.redact import looks_like_secret
from api.runtime import Runtime
from ledger.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/api/tokens", tags=["tokens"])
log = structlog.get_logger()


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(body: TokenRequest, runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
    """A new token; its secret is in this response only (the server keeps its hash)."""
    if looks_like_secret(body.name):
        raise InvalidRequest("a token name must not look like a token (rl_ and 32 or more characters)")
    _check_token_workspaces(runtime, principal, body.workspaces)
    try:
        info, token = runtime.tokens.create(name=body.name, role=body.role, workspaces=body.workspaces)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    record_issued(runtime.ledger, info, token, by=principal.name)
    log.info("token_created", token_id=info.id, name=info.name, role=info.role, by=principal.name)
    return {**info.__dict__, "token": token}


def _check_token_workspaces(runtime: Runtime, principal: Principal, names: list[str]) -> None:
    """(SPEC 9) An admin issues tokens only for workspaces it covers (a ``*`` token only if it
    is one), and only for workspaces that exist (404, as for anything outside its scope)."""
    for name in names:
        if name == ALL_WORKSPACES:
            if not principal.every_workspace:
                raise HTTPException(
                    403, "a token of every workspace ('*') needs an admin token of every workspace"
                )
        elif not principal.covers(name) or not runtime.ledger.workspace_exists(name):
            raise NotFound(f"no workspace {name!r}")


@router.get("", response_model=TokensPublic)
def list_tokens(runtime: RuntimeDep, principal: Admin) -> dict[str, Any]:
    """Every token, or for an admin of some workspaces, the tokens of those only."""
    tokens = runtime.tokens.list()
    if not principal.every_workspace:
        tokens = [
            t
            for t in tokens
            if ALL_WORKSPACES not in t.workspaces and all(map(principal.covers, t.workspaces))
        ]
    return {"tokens": [info.__dict__ for info in tokens]}


@router.delete("/{token_ref}", status_code=204, response_class=Response)
def revoke_token(
    token_ref: Annotated[str, Path(min_length=1, max_length=100, description="the token's id or name")],
    runtime: RuntimeDep,
    principal: Admin,
) -> Response:
    """Revoke a token by id, or every live token with this name; effective at once. A token's
    secret is refused (422) and never echoed: it would sit in access logs and proxies. Needs
    an admin token of every workspace (SPEC 9)."""
    if not principal.every_workspace:
        raise HTTPException(403, "revoking tokens needs an admin token of every workspace ('*')")
    if looks_like_secret(token_ref) or runtime.tokens.authenticate(token_ref) is not None:
        raise InvalidRequest("revoke a token by its id or name, never by its secret")
    revoking = runtime.tokens.live_ids(token_ref)
    if runtime.tokens.revoke(token_ref) == 0:
        raise NotFound("no active token with that id or name")
    for token_id in revoking:
        runtime.ledger.record_token_revoked(token_id, by=principal.name)
    log.info("token_revoked", token_ref=token_ref, by=principal.name)
    return Response(status_code=204)
