"""The ingest routes without FastAPI's per-request machinery: trigger, claim and report.

An outside engine spends 13 requests on a run of 5 tasks (trigger, claim, 11 reports), and on
those three routes FastAPI's own work (route matching across every router, dependency solving,
two thread hand-offs, response validation and encoding) cost more server CPU than the ledger's
commands (see ``bench/README.md``). :class:`FastPath` is the innermost ASGI middleware: for
``POST /api/workflows/{name}/trigger``, ``POST /api/runs/claim`` and
``POST /api/runs/{run_id}/events`` it validates the body with the route's own pydantic model,
and calls, in one worker thread, the route's own role dependency (``api.deps.require_role``)
and the route's own endpoint function. The answer is sent after the command returns, so after
the commit, as on the full path.

It takes only the plain case and hands everything else to the full app with the body replayed,
so every other answer is FastAPI's own, byte for byte: a path, header or body that does not
match exactly (another content type, a missing or non-Bearer token, a body that does not
validate: 401, 403, 422 and the rest come from the full path). Errors raised by the command
itself are not retried (it may have written): they go to the app's own exception handlers, as
FastAPI's ``ExceptionMiddleware`` would send them. The middlewares around it (metrics, request
logging, body limit, input guard) see every request either way.

A route whose signature or dependencies differ from what the fast path knows (a parameter
added, a dependency changed) is left to FastAPI, with a warning at start-up: the fast path
never answers for a route it does not fully mirror.
"""

from __future__ import annotations

import re
import time
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request as StarletteRequest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal, Role
from api.deps import Operator, Worker, get_runtime
from api.errors import send_problem
from api.handoff import Handoff
from api.logging import RUN_PATH, request_id_of
from api.metrics import request_metrics
from api.models import ClaimRequest, ReportRequest, TriggerRequest
from api.params import reject_unknown_query
from api.routes import workers, workflows
from api.runtime import Runtime
from api.scope import check_run_in_scope, current_workspace, named_workspace, resolve_workspace, run_in_scope
from ledger.domain.inputs import InputRefused, loads_json
from ledger.errors import LedgerError

log = structlog.get_logger()

#: Threads for the commands (FastAPI's own pool would take 40; a command holds one while it
#: waits for its group commit, so a few are enough for the writers of one process).
THREADS = 16


@dataclass(frozen=True)
class LeanRoute:
    route: APIRoute
    pattern: re.Pattern[str]
    #: The path's one regex group (None: the path has none).
    path_param: str | None
    body_model: type[BaseModel]
    #: An empty body is the route's default (``body: ClaimRequest | None = None``).
    body_optional: bool
    #: The role the route's ``principal`` dependency requires (``api.deps.Operator``, ...).
    role: Role
    #: The route's other dependencies, as the full path solves them for a request that names
    #: no workspace: the endpoint's keyword arguments from the principal and the path's group.
    #: A ``LedgerError`` from it (a run outside the token's workspaces: 404; a token of several
    #: workspaces naming none: 422) sends the request to the full path, which words it.
    bind: Callable[[Runtime, Principal, dict[str, str]], dict[str, Any]]


def _bind_trigger(runtime: Runtime, principal: Principal, args: dict[str, str]) -> dict[str, Any]:
    return {"name": args["name"], "workspace": resolve_workspace(runtime, principal, None)}


def _bind_claim(runtime: Runtime, principal: Principal, args: dict[str, str]) -> dict[str, Any]:
    return {"named": None}


def _bind_report(runtime: Runtime, principal: Principal, args: dict[str, str]) -> dict[str, Any]:
    return {"run_id": check_run_in_scope(runtime, principal, None, args["run_id"])}


def _role_dependency(alias: Any) -> Callable[..., Any]:
    """The dependency callable of a role alias (``Annotated[Principal, Depends(...)]``)."""
    return typing.get_args(alias)[1].dependency  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Known:
    """What the fast path mirrors of one route: its endpoint, path regex and group, body
    model, whether the body may be empty, its role, the names of its path and body
    parameters, its dependencies (name -> callable; ``principal``: the role's), and how the
    non-principal ones are bound."""

    endpoint: Callable[..., Any]
    pattern: str
    path_param: str | None
    body_model: type[BaseModel]
    body_optional: bool
    role: Role
    role_alias: Any
    params: tuple[str, ...]
    dependencies: tuple[tuple[str, Callable[..., Any]], ...]
    bind: Callable[[Runtime, Principal, dict[str, str]], dict[str, Any]]


#: The routes the fast path serves. The regexes are the routes' own path checks
#: (``api.params.RunId``, ``workflows.WorkflowName``): a path they refuse goes to FastAPI,
#: which answers 422.
_ROUTES: tuple[_Known, ...] = (
    _Known(
        workflows.trigger_workflow,
        r"/api/workflows/(?P<name>[a-z0-9_.-]{1,100})/trigger",
        "name",
        TriggerRequest,
        False,
        "operator",
        Operator,
        ("name", "body"),
        (("runtime", get_runtime), ("workspace", current_workspace)),
        _bind_trigger,
    ),
    _Known(
        workers.claim,
        r"/api/runs/claim",
        None,
        ClaimRequest,
        True,
        "worker",
        Worker,
        ("body",),
        (("runtime", get_runtime), ("named", named_workspace)),
        _bind_claim,
    ),
    _Known(
        workers.report,
        r"/api/runs/(?P<run_id>[A-Za-z0-9_.-]{1,200})/events",
        "run_id",
        ReportRequest,
        False,
        "worker",
        Worker,
        ("body",),
        (("run_id", run_in_scope), ("runtime", get_runtime)),
        _bind_report,
    ),
)


def _mirrors(dependant: Dependant, known: _Known) -> bool:
    """Whether the route takes exactly what the fast path binds: these path and body
    parameters, no query, header or cookie parameter of its own, and these dependencies."""
    names = tuple(p.name for p in dependant.path_params + dependant.body_params)
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        return False
    deps = {d.name: d.call for d in dependant.dependencies if d.call is not reject_unknown_query}
    wanted = dict(known.dependencies) | {"principal": _role_dependency(known.role_alias)}
    return names == known.params and deps == wanted


def lean_routes(routes: list[Any]) -> list[LeanRoute]:
    """The fast path's routes, each checked against the APIRoute FastAPI serves it with."""
    by_endpoint = {r.endpoint: r for r in routes if isinstance(r, APIRoute)}
    found = []
    for known in _ROUTES:
        route = by_endpoint.get(known.endpoint)
        if route is None or route.methods != {"POST"} or not _mirrors(route.dependant, known):
            log.warning(
                "fast_path_disabled", endpoint=known.endpoint.__name__, reason="route signature changed"
            )
            continue
        found.append(
            LeanRoute(
                route,
                re.compile(known.pattern),
                known.path_param,
                known.body_model,
                known.body_optional,
                known.role,
                known.bind,
            )
        )
    return found


def _lets_through(depends: Any) -> bool:
    """Whether an app-wide dependency passes every request the fast path takes:
    ``reject_unknown_query`` refuses undeclared query parameters, and the fast path takes only
    requests without a query string."""
    return getattr(depends, "dependency", None) is reject_unknown_query


def _plainly_included(app: Any) -> bool:
    """True when neither the app nor its ``include_router`` calls add dependencies to the fast
    path's routes (they would be solved on the full path only)."""
    if not all(map(_lets_through, app.router.dependencies)):
        log.warning("fast_path_disabled", reason="the app has dependencies of its own")
        return False
    own = (workers.router, workflows.router)
    for route in app.router.routes:
        context = getattr(route, "include_context", None)
        router = getattr(route, "original_router", None)
        extra = [d for d in (context.dependencies if context is not None else []) if not _lets_through(d)]
        if context is not None and any(router is r for r in own) and extra:
            log.warning("fast_path_disabled", reason="a router is included with dependencies")
            return False
    return True


class _Refused(Exception):
    """The role dependency refused the token (401/403): the full path answers."""


@dataclass
class _Headers:
    """The request headers the fast path reads, found in one pass."""

    authorization: str | None = None
    content_type: bytes | None = None
    content_length: bytes | None = None
    request_id: str | None = None
    encoded: bool = False
    #: The request names a workspace (``Runledger-Workspace``): the full path resolves it.
    workspace: bool = False

    @classmethod
    def of(cls, scope: Scope) -> _Headers:
        found = cls()
        for key, value in scope["headers"]:
            if key == b"authorization":
                found.authorization = value.decode("latin-1")
            elif key == b"content-type":
                found.content_type = bytes(value).split(b";", 1)[0].strip().lower()
            elif key == b"content-length":
                found.content_length = value
            elif key == b"x-request-id":
                found.request_id = request_id_of(value)
            elif key == b"runledger-workspace":
                found.workspace = True
            elif key == b"content-encoding":
                found.encoded = value.strip().lower() not in {b"", b"identity"}
        return found

    def bearer(self) -> str | None:
        """The token of ``Authorization: Bearer <token>``; None for anything else."""
        if self.authorization is None:
            return None
        scheme, _, token = self.authorization.partition(" ")
        return token if scheme.lower() == "bearer" and token and " " not in token else None


class FastPath:
    """The outermost ASGI layer of the API (see :class:`FastPathAPI`): the ingest routes it
    answers itself, with what the middlewares inside it do for every request (metrics, the
    ``request_handled`` line and ``X-Request-ID``, the body limit, the input guard); every
    other request goes to ``app``, the full stack, untouched."""

    def __init__(self, app: ASGIApp, *, api: FastAPI, routes: list[Any]) -> None:
        self.app = app
        self.api = api
        self.routes = lean_routes(routes)
        self.handoff = Handoff(THREADS, name="fast-path")
        self.metrics = request_metrics()
        #: The metrics' children by (route, status): ``labels()`` takes a lock and hashes the
        #: labels on every call.
        self._counted: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.log = structlog.get_logger("api.request")
        #: Whether the app includes the routers without dependencies of its own (known at the
        #: first request, when the app is complete).
        self.included: bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("root_path")
            or scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        if self.included is None:
            self.included = _plainly_included(self.api)
        if not self.included or self.api.dependency_overrides:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        for lean in self.routes:
            match = lean.pattern.fullmatch(path)
            if match is not None:
                await self._serve(lean, match, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, lean: LeanRoute, match: re.Match[str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        headers = _Headers.of(scope)
        runtime: Runtime = self.api.state.runtime
        limit = runtime.settings.max_body_bytes
        token = headers.bearer()
        if (
            token is None
            or headers.encoded
            or headers.workspace
            or not _declared_within(headers.content_length, limit)
        ):
            await self.app(scope, receive, send)  # the full path answers 401, 413, ...
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        replay = _replaying(body, receive)
        ok, parsed = (False, None) if len(body) > limit else _parse(lean, headers.content_type, body)
        if not ok:
            await self.app(scope, replay, send)  # 413 or 422, as the full path words them
            return
        request_id = headers.request_id or uuid.uuid4().hex
        bound: dict[str, str] = {"request_id": request_id}
        run_path = RUN_PATH.match(scope["path"])
        if run_path:
            bound["run_id"] = run_path["run_id"]
        args = {lean.path_param: match[lean.path_param]} if lean.path_param else {}
        status = 500
        # Bound for this request only (and reset after it: a caller may serve several
        # requests in one context); the thread the command runs in copies this context.
        tokens = structlog.contextvars.bind_contextvars(**bound)
        try:
            try:
                status = await self._answer(
                    lean, runtime, token, parsed, args, scope, replay, send, request_id
                )
            except Exception:
                # As the request logging middleware does for the full path: a 500 problem,
                # the trace in the log only.
                self.log.exception("request_failed", method="POST", path=scope["path"])
                await send_problem(
                    _with_request_id(send, request_id), 500, f"internal error; quote request id {request_id}"
                )
            if status:  # 0: the full path answered (and counted and logged the request)
                counter, latency = self._metrics(lean.route.path, status)
                counter.inc()
                elapsed = time.perf_counter() - started
                latency.observe(elapsed)
                self.log.info(
                    "request_handled",
                    method="POST",
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    def _metrics(self, route: str, status: int) -> tuple[Any, Any]:
        children = self._counted.get((route, status))
        if children is None:
            children = self._counted[(route, status)] = (
                self.metrics.requests.labels("POST", route, str(status)),
                self.metrics.latency.labels("POST", route),
            )
        return children

    async def _answer(
        self,
        lean: LeanRoute,
        runtime: Runtime,
        token: str,
        body: BaseModel | None,
        args: dict[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
    ) -> int:
        """Run the route in a worker thread and send its answer; its status (0 when the token
        was refused and the full path answered)."""
        call = _command(lean, runtime, token, body, args)
        try:  # (in the request's bound log context)
            status, answer = await self.handoff.run(call)
        except _Refused:
            await self.app(scope, receive, send)
            return 0
        except Exception as exc:
            response = await self._error_response(exc, scope, receive)
            await response(scope, receive, _with_request_id(send, request_id))
            return response.status_code
        if isinstance(answer, Response):
            await answer(scope, receive, _with_request_id(send, request_id))
            return answer.status_code
        payload = answer.model_dump_json(by_alias=True).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                    (b"x-request-id", request_id.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return status

    async def _error_response(self, exc: Exception, scope: Scope, receive: Receive) -> Response:
        """The app's own handler's answer for ``exc`` (as FastAPI's ExceptionMiddleware finds
        it); raised on when there is none (a 500)."""
        handlers: dict[Any, Any] = self.api.exception_handlers
        for cls in type(exc).__mro__:
            handler = handlers.get(cls)
            if handler is not None:
                scope.setdefault("app", self.api)
                response: Response = await handler(StarletteRequest(scope, receive), exc)
                return response
        raise exc


class FastPathAPI(FastAPI):
    """The FastAPI app with :class:`FastPath` in front: an ingest request is answered before
    ``FastAPI.__call__`` (whose telemetry check alone was 7 % of an API process's CPU per
    ingest request), everything else goes through it as before."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is None:
            routes = [*workflows.router.routes, *workers.router.routes]
            fast = self.fast_path = FastPath(self._full_stack, api=self, routes=routes)
        await fast(scope, receive, send)

    async def _full_stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def _declared_within(content_length: bytes | None, limit: int) -> bool:
    try:
        return content_length is None or int(content_length) <= limit
    except ValueError:
        return False


def _parse(lean: LeanRoute, media: bytes | None, body: bytes) -> tuple[bool, BaseModel | None]:
    """(True, the validated body or None for an allowed empty one), or (False, None) when the
    full path must answer: another content type, a body the input guard refuses (NUL, a lone
    surrogate, too deep: ``loads_json``) or that does not validate."""
    if not body:
        return (True, None) if lean.body_optional and media is None else (False, None)
    if media != b"application/json":
        return False, None
    try:
        return True, lean.body_model.model_validate(loads_json(body))
    except (InputRefused, ValueError, ValidationError):  # orjson's error is a ValueError
        return False, None


def _with_request_id(send: Send, request_id: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
            }
        await send(message)

    return sending


def _command(
    lean: LeanRoute, runtime: Runtime, token: str, body: Any, args: dict[str, str]
) -> Callable[[], tuple[int, Any]]:
    """The route's dependencies and endpoint, as one call for a worker thread."""

    def run() -> tuple[int, Any]:
        principal = runtime.tokens.authenticate(token)
        if principal is None or not principal.has(lean.role):
            raise _Refused  # 401 or 403, as the full path words them
        try:
            bound = lean.bind(runtime, principal, args)
        except LedgerError as exc:  # outside the token's workspaces, or none named: 404, 422
            raise _Refused from exc
        route = lean.route
        if route.dependant.response_param_name:
            response = Response()
            response.status_code = None  # type: ignore[assignment]  # FastAPI's "not set"
            answer = route.endpoint(
                **bound, body=body, response=response, runtime=runtime, principal=principal
            )
            return response.status_code or route.status_code or 200, answer
        answer = route.endpoint(**bound, body=body, runtime=runtime, principal=principal)
        return route.status_code or 200, answer

    return run


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
