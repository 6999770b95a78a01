"""Dependency aliases for the routes: the runtime and the authenticated principal by role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, Role
from api.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="A token from `runledger tokens create`.")


async def get_runtime(request: Request) -> Runtime:
    """``async``: it only reads app state, so FastAPI calls it on the event loop instead of
    handing it to a worker thread (a thread hop per request saved)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def authenticate(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The bearer token's principal (401 without a valid one). One lookup per request: every
    dependency that needs the principal (a role, the workspace of :mod:`api.scope`) shares it."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers=challenge)
    principal = runtime.tokens.authenticate(credentials.credentials)
    if principal is None:
        raise HTTPException(401, "invalid or revoked token", headers=challenge)
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates the bearer token (401) and checks that it holds at least
    one of ``roles`` (403). Roles include the ones below them (admin > operator > auditor).
    (``async``: a check of the shared principal, no thread hop.)"""
    needed = " or ".join(repr(r) for r in roles)

    async def dependency(principal: Authenticated) -> Principal:
        if not any(principal.has(role) for role in roles):
            raise HTTPException(403, f"role {principal.role!r} may not do this; it needs {needed}")
        return principal

    return dependency


Auditor = Annotated[Principal, Depends(require_role("auditor"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
Worker = Annotated[Principal, Depends(require_role("worker"))]
