"""A pure ASGI middleware that refuses poisoned input before any route sees it: a JSON body
holding NUL, a lone surrogate or nesting past ``MAX_DEPTH`` (``ledger.domain.inputs``), and a
path or query string holding NUL. Answered 422 problem JSON; nothing is written.

It sits inside the body limit, so the body it reads whole is already bounded. Bodies that
declare a JSON media type (``application/json``, ``*+json``) must parse; a body without a
``Content-Type`` is checked only when it parses (FastAPI reads such bodies as JSON too).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from ledger.domain.inputs import InputRefused, loads_json

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _media_type(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return None


def _encoded(scope: Scope) -> bool:
    """A compressed body (``Content-Encoding``) is decoded and checked by its route."""
    return any(
        key == b"content-encoding" and value.strip().lower() not in {b"", b"identity"}
        for key, value in scope.get("headers", [])
    )


def _is_json(media: str | None) -> bool:
    return media is not None and (media == "application/json" or media.endswith("+json"))


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"").lower():
            await _refuse(scope, send, "NUL characters (\\u0000) are not accepted in a path or query")
            return
        media = _media_type(scope)
        if scope["method"] not in _BODY_METHODS or _encoded(scope) or not (media is None or _is_json(media)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                loads_json(body)
            except InputRefused as exc:
                await _refuse(scope, send, exc.detail)
                return
            except ValueError as exc:
                if _is_json(media):
                    await _refuse(scope, send, f"the body is not JSON: {exc}", kind="json_invalid")
                    return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, send: Send, detail: str, *, kind: str = "value_error") -> None:
    response = problem(422, detail, errors=[{"loc": "body", "msg": detail, "type": kind}])

    async def _no_receive() -> Message:  # pragma: no cover - a response never reads
        return {"type": "http.disconnect"}

    await response(scope, _no_receive, send)
