"""``GET /api/audit`` (auditor): every action on the ledger in order (SPEC section 10; 21 CFR
11.10(e), Annex 11 clause 9), filtered and paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Auditor, RuntimeDep
from api.params import MAX_POSITION, TimeQuery, iso_timestamp
from api.scope import NamedWorkspace, resolve_workspace
from ledger.errors import InvalidRequest
from ledger.hashing import format_timestamp, parse_timestamp
from runledger.models import LedgerAuditPublic

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=LedgerAuditPublic)
def ledger_audit(
    runtime: RuntimeDep,
    principal: Auditor,
    named: NamedWorkspace,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    run_id: Annotated[str | None, Query(max_length=200)] = None,
    created_after: TimeQuery = None,
    created_before: TimeQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=30)] = None,
) -> dict[str, Any]:
    """Oldest first: ``{at, actor, action, workspace, run_id, detail, reason, position}``;
    ``next_cursor`` pages on (the position of the page's last entry). A token of every
    workspace naming none sees the whole ledger; any other, its workspace's entries only."""
    workspace = None
    if named is not None or not principal.every_workspace:
        workspace = resolve_workspace(runtime, principal, named)
    try:
        after = -1 if cursor is None else int(cursor)
    except ValueError:
        after = MAX_POSITION + 1
    if not -1 <= after <= MAX_POSITION:
        raise InvalidRequest("cursor: not a cursor of this listing")
    entries = runtime.views.ledger_audit(
        actor=actor,
        action=action,
        run_id=run_id,
        created_after=_utc(iso_timestamp(created_after, "created_after")),
        created_before=_utc(iso_timestamp(created_before, "created_before")),
        after_position=after,
        limit=limit + 1,
        workspace=workspace,
    )
    more = len(entries) > limit
    entries = entries[:limit]
    return {"entries": entries, "next_cursor": str(entries[-1]["position"]) if more else None}


def _utc(value: str | None) -> str | None:
    """A bound in the entries' own form (``...ffffffZ``), so text order is time order."""
    return None if value is None else format_timestamp(parse_timestamp(value))
