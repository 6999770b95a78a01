"""``/runs/live?ids=...``: the runs page's live status, as Server-Sent Events (htmx's SSE
extension swaps each ``status-<run id>`` event's HTML into that run's status cell).

It waits the way the event follower of ``api/routes/stream.py`` does, on the ledger's newest
position shared by every follower of the process, and reads a run's summary only when the
ledger moved; it ends once every run it follows has ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from api.auth import Principal
from api.deps import RuntimeDep
from api.reads import run_summary
from api.routes.stream import PING_SECONDS, POLL_SECONDS, SEND_TIMEOUT_SECONDS, newest_position
from api.runtime import Runtime
from api.scope import check_run_in_scope
from api.ui.render import UiRoute, Viewer, badge
from api.ui.scope import Workspace
from ledger.domain.status import TERMINAL
from ledger.errors import InvalidRequest, LedgerError

router = APIRouter(route_class=UiRoute, include_in_schema=False)
MAX_FOLLOWED = 100
_ENDED = {s.value for s in TERMINAL}


def _statuses(runtime: Runtime, principal: Principal, workspace: str, ids: list[str]) -> dict[str, str]:
    found = {}
    for run_id in ids:
        try:
            check_run_in_scope(runtime, principal, workspace, run_id)
            found[run_id] = str(run_summary(runtime, run_id)["status"])
        except LedgerError:  # an unknown id, or one of another workspace, is left out
            continue
    return found


async def _follow(
    runtime: Runtime, principal: Principal, workspace: str, ids: list[str]
) -> AsyncIterator[dict[str, Any]]:
    newest = newest_position(runtime.ledger)
    seen, sent = -1, dict.fromkeys(ids, "")
    while ids:
        position = await newest.get()
        if position != seen:
            seen = position
            found = await anyio.to_thread.run_sync(_statuses, runtime, principal, workspace, ids)
            for run_id, status in found.items():
                if sent[run_id] != status:
                    sent[run_id] = status
                    yield {"event": f"status-{run_id}", "data": str(badge(status))}
            ids = [r for r in ids if sent[r] not in _ENDED and r in found]
        await anyio.sleep(POLL_SECONDS * 4)


@router.get("/runs/live")
async def live(
    runtime: RuntimeDep,
    session: Viewer,
    workspace: Workspace,
    ids: Annotated[str, Query(max_length=20_000)] = "",
) -> Response:
    wanted = [i for i in dict.fromkeys(ids.split(",")) if i]
    if len(wanted) > MAX_FOLLOWED:
        raise InvalidRequest(f"at most {MAX_FOLLOWED} runs can be followed at once")
    return EventSourceResponse(
        _follow(runtime, session.principal, workspace.name, wanted),
        ping=PING_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store"},
    )
