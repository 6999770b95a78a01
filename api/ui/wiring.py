"""The UI's joints to features other parts of the server are growing: one small function each.

Each asks the runtime whether the feature is there (the search language on the summaries
query, labels and their command, signatures, the ledger-wide audit trail, workspaces) and the
page shows it only when it is. Connecting a feature once it lands is a change to one function
here, not to the pages.
"""

from __future__ import annotations

import inspect
from typing import Any

from api.auth import Principal
from api.runtime import Runtime
from ledger.errors import InvalidRequest


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def search_available(runtime: Runtime) -> bool:
    """Whether the runs query takes the search language of SPEC 8 (``q``)."""
    return _accepts(runtime.views.list_runs, "q")


def list_runs(
    runtime: Runtime, *, q: str | None, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The runs page's query: the same one ``GET /api/runs`` makes, ``q`` passed through."""
    extra: dict[str, Any] = {}
    if q:
        if not search_available(runtime):
            raise InvalidRequest("this server has no search language yet (SPEC 8): use the filters")
        extra["q"] = q
    try:
        return runtime.views.list_runs(**filters, **extra, limit=limit, cursor=cursor)
    except ValueError as exc:  # a cursor (or, later, a query) that is not one of ours
        raise InvalidRequest(str(exc)) from None


def labels_available(runtime: Runtime) -> bool:
    """Whether runs can be labelled (``Run.Labelled``, SPEC 8)."""
    return callable(getattr(runtime.ledger, "label", None))


def label_run(
    runtime: Runtime, run_id: str, *, labels: dict[str, str], reason: str | None, principal: Principal
) -> None:
    if not labels_available(runtime):
        raise InvalidRequest("this server cannot label runs yet (SPEC 8)")
    runtime.ledger.label(run_id, set_=labels, remove=[], reason=reason, principal=principal.name)


def signatures_of(runtime: Runtime, run_id: str) -> list[dict[str, Any]] | None:
    """The run's signatures (SPEC 10), or None when this server does not sign runs yet."""
    reader = getattr(runtime.views, "signatures", None)
    if not callable(reader):
        return None
    return list(reader(run_id))


def ledger_audit(
    runtime: Runtime, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None] | None:
    """The ledger-wide audit trail (SPEC 10, ``GET /api/audit``), newest first, or None when
    this server has no such query yet."""
    reader = getattr(runtime.views, "ledger_audit", None)
    if not callable(reader):
        return None
    entries, next_cursor = reader(limit=limit, cursor=cursor)
    return list(entries), next_cursor


def workspaces_of(runtime: Runtime, principal: Principal) -> list[str]:
    """The workspaces this principal may switch between (SPEC 9); none until they land."""
    names = getattr(principal, "workspaces", None)
    return sorted(str(n) for n in names) if names else []
