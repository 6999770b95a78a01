"""The FastAPI application: routers, problem JSON, body limit, request logging, lifespan.

Nothing connects at import time: :func:`create_app` returns an app whose lifespan opens the
:class:`~api.runtime.Runtime` (or uses the one ``runledger serve`` built and owns).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.bodylimit import BodyLimitMiddleware
from api.errors import PROBLEM_RESPONSES, install_error_handlers
from api.fastpath import FastPathAPI
from api.inputguard import InputGuardMiddleware
from api.logging import RequestLoggingMiddleware, configure_logging
from api.metrics import MetricsMiddleware
from api.models import Health
from api.params import reject_unknown_query
from api.routes import (
    audit,
    batches,
    export,
    files,
    marquez,
    openlineage,
    ops,
    report,
    retention,
    runs,
    signatures,
    stats,
    stream,
    tokens,
    workers,
    workflows,
    workspaces,
)
from api.routes import ledger as ledger_routes  # (not the ledger package)
from api.routes import projections as projections_routes  # (nor the projections package)
from api.runtime import Runtime
from api.ui import install as install_ui
from ledger import __version__
from ledger.settings import Settings

API_DESCRIPTION = """\
Authenticate with `Authorization: Bearer <token>` (`runledger tokens create`, or
`POST /api/tokens` as an admin). Roles: auditor < operator < admin, plus worker (claim and
report only). Every error is RFC 9457 problem JSON (`application/problem+json`); a malformed
JSON body is answered 422 with an `errors` entry of type `json_invalid`, a body over the limit
413. `GET /api/runs/{run_id}` is read-your-writes; listings, stats and lineage come from the
projections and may lag by a moment.
"""


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """The API for ``settings``; pass ``runtime`` to share one the caller opens and closes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = Runtime.open(settings) if runtime is None else runtime
        try:
            yield
        finally:
            if owned:
                app.state.runtime.close()

    app = FastPathAPI(
        title="runledger",
        version=__version__,
        summary="An event-sourced run ledger: every run of every workflow as immutable, verifiable events.",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_unknown_query)],
        docs_url=None,  # /docs and /redoc come from api.ui, on local assets
        redoc_url=None,
    )
    install_error_handlers(app)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """Liveness: the process answers. Needs no token."""
        return Health(status="ok", version=__version__)

    # One router per resource. ``workers`` before ``runs``: ``POST /api/runs/claim`` must never
    # be read as a run id.
    app.include_router(workflows.router, responses=PROBLEM_RESPONSES)
    app.include_router(workers.router, responses=PROBLEM_RESPONSES)
    app.include_router(runs.router, responses=PROBLEM_RESPONSES)
    app.include_router(retention.router, responses=PROBLEM_RESPONSES)
    app.include_router(signatures.keys, responses=PROBLEM_RESPONSES)
    app.include_router(signatures.runs, responses=PROBLEM_RESPONSES)
    app.include_router(audit.router, responses=PROBLEM_RESPONSES)
    app.include_router(report.router, responses=PROBLEM_RESPONSES)
    app.include_router(files.router, responses=PROBLEM_RESPONSES)
    app.include_router(batches.router, responses=PROBLEM_RESPONSES)
    app.include_router(stats.router, responses=PROBLEM_RESPONSES)
    app.include_router(projections_routes.router, responses=PROBLEM_RESPONSES)
    app.include_router(tokens.router, responses=PROBLEM_RESPONSES)
    app.include_router(workspaces.router, responses=PROBLEM_RESPONSES)
    app.include_router(openlineage.router, responses=PROBLEM_RESPONSES)
    app.include_router(marquez.router, responses=PROBLEM_RESPONSES)
    app.include_router(stream.router, responses=PROBLEM_RESPONSES)
    app.include_router(ops.router, responses=PROBLEM_RESPONSES)
    app.include_router(ledger_routes.router, responses=PROBLEM_RESPONSES)
    app.include_router(export.router, responses=PROBLEM_RESPONSES)
    install_ui(app)  # the web UI (SPEC 7), /docs and /redoc
    # Added innermost first: request logging (and 500s) wraps the body limit, which wraps the
    # input guard (so the body it reads whole is bounded). ``FastPathAPI`` puts the ingest fast
    # path around all of them (``api/fastpath.py``).
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLoggingMiddleware)
    app.add_middleware(MetricsMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (``runledger serve --workers N``): settings from
    ``RUNLEDGER_*`` environment variables."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
