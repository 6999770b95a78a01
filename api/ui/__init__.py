"""The web UI (SPEC 7): server-rendered pages for auditors and operators, every asset served
by this server (vendored under ``static/vendor``, see ``static/VENDORED.md``), so it works on
an air-gapped network. ``/docs`` and ``/redoc`` load their scripts from here too.

``install(app)`` is the one hook ``api/app.py`` calls.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.ui import actions, live, pages_ledger, pages_more, pages_runs, scope, signin

STATIC = Path(__file__).with_name("static")
VENDOR = "/ui/static/vendor"


def install(app: FastAPI) -> None:
    """The UI's routes, its static files at ``/ui/static``, and ``/docs`` and ``/redoc``."""
    app.include_router(signin.router)
    app.include_router(scope.router)
    app.include_router(live.router)  # before ``/runs/{run_id}``
    app.include_router(pages_runs.router)
    app.include_router(actions.router)
    app.include_router(pages_more.router)
    app.include_router(pages_ledger.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="runledger API",
            swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # its badge would come from another host
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="runledger API",
            redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
