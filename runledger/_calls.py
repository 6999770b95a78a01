"""Every API call the clients make, as data: method, path, query, body, whether it is
idempotent (so it may be retried) and which 404 it raises. The sync and async clients send
the same :class:`Call` objects, so they cannot disagree on a path or a parameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from runledger.errors import NotFoundError, RunNotFoundError, WorkflowNotFoundError

#: Query parameters; a list repeats the parameter (``status=failed&status=killed``: any of them).
Query = dict[str, str | int | float | bool | list[str]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Query = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True
    not_found: type[NotFoundError] = NotFoundError


def _q(value: str) -> str:
    return quote(value, safe="")


def _reason(body: dict[str, Any], reason: str | None) -> dict[str, Any]:
    return body | ({"reason": reason} if reason is not None else {})


# ---- workflows -------------------------------------------------------------------------------
def register_workflow(definition: Mapping[str, Any] | str) -> Call:
    if isinstance(definition, str):  # YAML (or JSON) text, as a file holds it
        return Call(
            "POST",
            "/api/workflows",
            content=definition.encode(),
            headers={"Content-Type": "application/yaml"},
            idempotent=False,
        )
    return Call("POST", "/api/workflows", json={"definition": dict(definition)}, idempotent=False)


def list_workflows() -> Call:
    return Call("GET", "/api/workflows")


def get_workflow(name: str, version: int | None) -> Call:
    params: Query = {"version": version} if version is not None else {}
    return Call("GET", f"/api/workflows/{_q(name)}", params=params, not_found=WorkflowNotFoundError)


def trigger(
    name: str | None,
    definition_hash: str | None,
    params: Mapping[str, Any] | None,
    idempotency_key: str | None,
    labels: Mapping[str, str] | None,
    batch: Mapping[str, Any] | None = None,
) -> Call:
    body: dict[str, Any] = {"parameters": dict(params or {})}
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    if labels:
        body["labels"] = dict(labels)
    if batch is not None:
        body["batch"] = dict(batch)
    path = (
        f"/api/workflows/by-hash/{_q(definition_hash)}/trigger"
        if definition_hash is not None
        else f"/api/workflows/{_q(name or '')}/trigger"
    )
    # A trigger with an idempotency key may be sent again: the server answers the first run.
    return Call(
        "POST", path, json=body, idempotent=idempotency_key is not None, not_found=WorkflowNotFoundError
    )


def get_batch(batch_id: str) -> Call:
    return Call("GET", f"/api/batches/{_q(batch_id)}")


# ---- runs ------------------------------------------------------------------------------------
def list_runs(
    filters: Query, params: Mapping[str, Any], labels: Mapping[str, str], limit: int, cursor: str | None
) -> Call:
    query: Query = dict(filters)
    for key, value in params.items():
        query[f"param.{key}"] = (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
    for key, value in labels.items():
        query[f"label.{key}"] = value
    query["limit"] = limit
    if cursor:
        query["cursor"] = cursor
    return Call("GET", "/api/runs", params=query)


def run_path(run_id: str, tail: str = "") -> str:
    return f"/api/runs/{_q(run_id)}{tail}"


def get_run(run_id: str, tail: str = "", params: Query | None = None) -> Call:
    return Call("GET", run_path(run_id, tail), params=params or {}, not_found=RunNotFoundError)


def run_action(run_id: str, action: str, body: dict[str, Any]) -> Call:
    return Call(
        "POST", run_path(run_id, f"/{action}"), json=body, idempotent=False, not_found=RunNotFoundError
    )


def cancel(run_id: str, reason: str | None) -> Call:
    return run_action(run_id, "cancel", _reason({}, reason))


def expunge(run_id: str, reason: str | None) -> Call:
    """Idempotent on the server (a second expunge writes nothing), so it may be retried."""
    return Call("POST", run_path(run_id, "/expunge"), json=_reason({}, reason), not_found=RunNotFoundError)


def hold(run_id: str, reason: str | None, *, release: bool = False) -> Call:
    """Place (or with ``release`` take off) a legal hold; both are idempotent."""
    method = "DELETE" if release else "POST"
    return Call(method, run_path(run_id, "/hold"), json=_reason({}, reason), not_found=RunNotFoundError)


def replay(run_id: str, overrides: Mapping[str, Any] | None, reason: str | None) -> Call:
    return run_action(run_id, "replay", _reason({"param_overrides": dict(overrides or {})}, reason))


def resume(run_id: str, from_task: str, overrides: Mapping[str, Any] | None, reason: str | None) -> Call:
    body = {"from_task": from_task, "param_overrides": dict(overrides or {})}
    return run_action(run_id, "resume", _reason(body, reason))


def label(run_id: str, set_: Mapping[str, str] | None, remove: list[str] | None, reason: str | None) -> Call:
    body = {"set": dict(set_ or {}), "remove": list(remove or [])}
    return run_action(run_id, "labels", _reason(body, reason))


def sign(run_id: str, body: dict[str, Any]) -> Call:
    return run_action(run_id, "signatures", body)


def register_signing_key(public_key: str) -> Call:
    return Call("POST", "/api/signing-keys", json={"public_key": public_key}, idempotent=False)


def list_signing_keys() -> Call:
    return Call("GET", "/api/signing-keys")


def revoke_signing_key(fingerprint: str) -> Call:
    return Call("DELETE", f"/api/signing-keys/{_q(fingerprint)}")


def compare(a: str, b: str) -> Call:
    return Call("GET", "/api/runs/compare", params={"a": a, "b": b}, not_found=RunNotFoundError)


# ---- files, stats, ledger, audit -------------------------------------------------------------
def upload(data: bytes) -> Call:
    return Call(
        "POST",
        "/api/files",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
        idempotent=True,
    )


def download(sha256: str) -> Call:
    return Call("GET", f"/api/files/{_q(sha256)}")


def list_workspaces() -> Call:
    """(SPEC 9) the workspaces the token covers."""
    return Call("GET", "/api/workspaces")


def stats(filters: Query) -> Call:
    return Call("GET", "/api/stats", params=filters)


def audit(filters: Query) -> Call:
    return Call("GET", "/api/audit", params=filters)


def export(filters: Query) -> Call:
    return Call("GET", "/api/export", params=filters)


def digest() -> Call:
    return Call("GET", "/api/ledger/digest")


def inclusion(position: int, tree_size: int) -> Call:
    return Call("GET", "/api/ledger/proof/inclusion", params={"position": position, "tree_size": tree_size})


def consistency(first: int, second: int) -> Call:
    return Call("GET", "/api/ledger/proof/consistency", params={"first": first, "second": second})


def verify_ledger() -> Call:
    return Call("POST", "/api/ledger/verify")  # reads only: safe to send again


def filters(**values: Any) -> Query:
    """The query of a list or stats call: unset filters left out, times as ISO 8601 text."""
    out: Query = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out[key] = [str(v) for v in value]
        else:
            out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out
