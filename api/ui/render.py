"""Templates, the signed-in viewer, and errors as pages in problem language.

Every UI route is a :class:`UiRoute`: a domain error, a refused role or a bad query becomes an
HTML page with the same status, title and detail the API's problem JSON would carry, and a
request without a session is sent to ``/login``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deps import RuntimeDep
from api.errors import TITLES, status_for
from api.runtime import Runtime
from api.ui import wiring
from api.ui.session import COOKIE, Session, csrf_ok, read_cookie, session_key
from ledger.errors import LedgerError

TEMPLATES = Path(__file__).with_name("templates")


class SignInRequired(Exception):
    """No live session: the route answers with a redirect to the sign-in page."""


def when(value: Any) -> Markup:
    """A timestamp as UTC text; the page's script adds the local time on hover."""
    if not value:
        return Markup('<span class="muted">-</span>')
    text = str(value)
    try:
        shown = datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        shown = text
    return Markup('<time datetime="{}">{}</time>').format(text, shown)


def short(value: Any, n: int = 12) -> str:
    text = str(value or "")
    return text if len(text) <= n else text[:n] + "…"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int((s % 3600) // 60)} min"


def badge(status: Any) -> Markup:
    text = str(status or "unknown")
    return Markup('<span class="badge s-{0}">{0}</span>').format(text)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, short=short, duration=duration, badge=badge, urlq=quote)
    env.globals["urlencode"] = urlencode
    return env


ENV = _environment()


def key_of(request: Request, runtime: Runtime) -> bytes:
    key: bytes | None = getattr(request.app.state, "ui_session_key", None)
    if key is None:
        key = session_key(runtime.settings)
        request.app.state.ui_session_key = key
    return key


def viewer(request: Request, runtime: RuntimeDep) -> Session:
    """The signed-in session (any role but worker: the role rules of SPEC 2 start at auditor)."""
    session = read_cookie(
        key_of(request, runtime),
        request.cookies.get(COOKIE),
        runtime.tokens,
        max_age_seconds=runtime.settings.ui_session_hours * 3600,
    )
    if session is None:
        raise SignInRequired
    return session


Viewer = Annotated[Session, Depends(viewer)]


def require_operator(session: Session) -> None:
    if not session.principal.has("operator"):
        raise HTTPException(403, f"role {session.principal.role!r} may not do this; it needs 'operator'")


def check_form(request: Request, runtime: Runtime, session: Session, csrf: str | None) -> None:
    """A state-changing form: the CSRF token must be this session's (403 otherwise, nothing done)."""
    if not csrf_ok(key_of(request, runtime), session, csrf):
        raise HTTPException(403, "the form's CSRF token is missing or not this session's: reload the page")


def page(
    request: Request, session: Session | None, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    runtime: Runtime = request.app.state.runtime
    csrf = session.csrf(key_of(request, runtime)) if session is not None else ""
    html = ENV.get_template(template).render(
        request=request,
        path=request.url.path,
        user=session.principal if session is not None else None,
        can_operate=session is not None and session.principal.has("operator"),
        workspaces=wiring.workspaces_of(runtime, session.principal) if session is not None else [],
        workspace=getattr(request.state, "ui_workspace", None),
        csrf=csrf,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, detail: str, title: str | None = None) -> HTMLResponse:
    session: Session | None = None
    try:
        session = viewer(request, request.app.state.runtime)
    except SignInRequired:
        pass
    except Exception:  # an error page never fails for want of its header
        session = None
    return page(
        request,
        session,
        "error.html",
        status=status,
        problem={"status": status, "title": title or TITLES.get(status, "Error"), "detail": detail},
    )


class UiRoute(APIRoute):
    """An API route whose errors are pages: the problem's status, title and detail in HTML."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
            except LedgerError as exc:
                return error_page(request, status_for(exc), exc.detail, exc.title)
            except StarletteHTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()[:5]
                )
                return error_page(request, 422, f"the request does not validate: {detail}")

        return route
