"""``/login`` and ``/logout``: a token opens a session cookie; a worker token cannot."""

from __future__ import annotations

import secrets
from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RuntimeDep
from api.ui.render import UiRoute, Viewer, check_form, key_of, page
from api.ui.session import COOKIE, LOGIN_COOKIE, login_csrf, open_cookie, same

router = APIRouter(route_class=UiRoute, include_in_schema=False)
log = structlog.get_logger()


def _safe_next(target: str | None) -> str:
    """Only a path of this server (never ``//host`` or a scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target


def _set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """``HttpOnly``, ``SameSite=Strict``, and ``Secure`` when the request came over TLS."""
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
    )


def _login_form(
    request: Request, runtime: RuntimeDep, target: str, error: str | None, status: int
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = page(
        request,
        None,
        "login.html",
        status=status,
        next=target,
        error=error,
        login_csrf=login_csrf(key_of(request, runtime), nonce),
    )
    _set_cookie(response, request, LOGIN_COOKIE, nonce, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, runtime: RuntimeDep, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    return _login_form(request, runtime, _safe_next(next), None, 200)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/runs",
) -> Response:
    target = _safe_next(next)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not same(csrf, login_csrf(key_of(request, runtime), nonce)):
        return _login_form(request, runtime, target, "The form expired: sign in again.", 403)
    principal = runtime.tokens.authenticate(token.strip()) if token.strip() else None
    if principal is None:
        log.info("ui_sign_in_refused", reason="unknown or revoked token")
        return _login_form(request, runtime, target, "This token is unknown or revoked.", 401)
    if principal.role == "worker":
        log.info("ui_sign_in_refused", reason="worker token", token_id=principal.token_id)
        return _login_form(
            request,
            runtime,
            target,
            "A worker token cannot sign in: use an auditor, operator or admin token.",
            403,
        )
    log.info("ui_signed_in", by=principal.name, role=principal.role, token_id=principal.token_id)
    response = RedirectResponse(target, status_code=303)
    cookie = open_cookie(key_of(request, runtime), principal)
    _set_cookie(response, request, COOKIE, cookie, int(runtime.settings.ui_session_hours * 3600))
    response.delete_cookie(LOGIN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout(
    request: Request, runtime: RuntimeDep, session: Viewer, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    check_form(request, runtime, session, csrf)
    log.info("ui_signed_out", by=session.principal.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
