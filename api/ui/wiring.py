"""The UI's joints to the features beside it, one small function each, called the way their API
routes call them: the runs query with the search language (SPEC 8), labels, signatures and the
ledger-wide audit trail (SPEC 10), and the workspaces the switcher offers (SPEC 9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.auth import Principal
from api.routes.signatures import key_lookup
from api.runtime import Runtime
from ledger.errors import InvalidRequest
from ledger.store.event_record import EventRecord
from projections.views.signatures import signatures_of as signatures_from_events


def list_runs(
    runtime: Runtime,
    *,
    q: str | None,
    filters: dict[str, Any],
    limit: int,
    cursor: str | None,
    workspace: str,
) -> tuple[list[dict[str, Any]], str | None]:
    """The runs page's query: the same one ``GET /api/runs`` makes. A bad ``q`` is the
    search language's own 422 (``InvalidQuery``, naming the position)."""
    try:
        return runtime.views.list_runs(
            **filters, q=q or None, limit=limit, cursor=cursor, workspace=workspace
        )
    except InvalidRequest:
        raise
    except ValueError as exc:  # a cursor that is not one of ours
        raise InvalidRequest(str(exc)) from None


def label_run(
    runtime: Runtime,
    run_id: str,
    *,
    labels: dict[str, str],
    remove: list[str],
    reason: str | None,
    principal: Principal,
) -> None:
    """``Run.Labelled`` (SPEC 8), as ``POST /api/runs/{id}/labels`` records it."""
    runtime.ledger.label(run_id, set_=labels, remove=remove, reason=reason, principal=principal.name)


def signatures_of(runtime: Runtime, events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """The signatures (SPEC 10) with ``valid`` among a run's ``events`` (the page has read
    them already): what ``GET /api/runs/{id}/signatures`` lists."""
    return signatures_from_events(events, key_lookup(runtime))


def ledger_audit(runtime: Runtime, *, limit: int, **filters: Any) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the ledger-wide audit trail (``GET /api/audit``'s query), oldest first, and
    the cursor of the next page (None on the last)."""
    entries = runtime.views.ledger_audit(limit=limit + 1, **filters)
    more = len(entries) > limit
    entries = entries[:limit]
    return entries, str(entries[-1]["position"]) if more else None


def workspaces_of(runtime: Runtime, principal: Principal) -> list[str]:
    """The workspaces the switcher offers: the token's, or every one for a ``*`` token."""
    if principal.every_workspace:
        return runtime.ledger.workspace_names()
    return list(principal.workspaces)
