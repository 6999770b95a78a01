"""Dependency aliases for the routes: the runtime and the authenticated principal by role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, Role
from api.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="A token from `runledger tokens create`.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def require_role(role: Role) -> Callable[..., Principal]:
    """A dependency that authenticates the bearer token (401) and checks its role (403)."""

    def dependency(
        runtime: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "missing bearer token", headers=challenge)
        principal = runtime.tokens.authenticate(credentials.credentials)
        if principal is None:
            raise HTTPException(401, "invalid or revoked token", headers=challenge)
        if not principal.has(role):
            raise HTTPException(
                403, f"role {principal.role!r} may not do this; it needs {role!r}"
            )
        return principal

    return dependency


Auditor = Annotated[Principal, Depends(require_role("auditor"))]
Operator = Annotated[Principal, Depends(require_role("operator"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
Worker = Annotated[Principal, Depends(require_role("worker"))]
