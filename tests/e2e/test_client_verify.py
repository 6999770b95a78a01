"""Verified reads catch a lying server: the client's answers go through a real HTTP proxy
that rewrites them (a tampered event, a forged proof, a rewritten history), and
``runs.get(id, verify=True)`` raises ``VerificationError``; an honest answer passes and its
digest becomes the trusted one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.hashing import event_hash
from runledger import Client, VerificationError
from tests.e2e.client_helpers import complete
from tests.e2e.conftest import Server
from tests.e2e.helpers import pipeline, register, trigger
from tests.e2e.proxy import rewriting_proxy


def finished(server: Server) -> str:
    definition = pipeline()
    with server.client("operator") as client:
        register(client, definition)
        run_id = str(trigger(client, definition["name"])["run_id"])
    complete(server, run_id)
    return run_id


def verified_get(server: Server, url: str, run_id: str, digest_file: Path) -> None:
    with Client(url, server.token("auditor"), trusted_digest=digest_file, retries=0) as client:
        client.runs.get(run_id, verify=True)


def test_an_honest_server_passes_and_its_digest_becomes_trusted(
    shared_server: Server, tmp_path: Path
) -> None:
    run_id = finished(shared_server)
    digest_file = tmp_path / "trusted.json"
    with Client(
        shared_server.url, shared_server.token("auditor"), trusted_digest=digest_file, verify=True
    ) as client:
        client.runs.get(run_id)
        first = json.loads(digest_file.read_text())
        assert first["tree_size"] > 0 and len(first["root_hash"]) == 64
        later = finished(shared_server)  # the ledger grows: a consistency proof from the trusted size
        client.runs.get(later)
    assert json.loads(digest_file.read_text())["tree_size"] > first["tree_size"]


def _tamper(method: str, path: str, body: Any, run_id: str, change: str) -> Any:
    if change == "event" and path.startswith(f"/api/runs/{run_id}/events"):
        body["events"][0]["data"]["parameters"]["query"] = "forged"
    elif change == "chain" and path.startswith(f"/api/runs/{run_id}/events"):
        second = body["events"][1]
        second["prev_hash"] = "0" * 64  # re-hashed, so only the chain check can catch it
        fields = {k: second[k] for k in ("stream", "sequence", "type", "timestamp", "data", "prev_hash")}
        second["hash"] = event_hash(**fields)
    elif change == "inclusion" and path.startswith("/api/ledger/proof/inclusion"):
        body["audit_path"][0] = "f" * 64
    elif change == "root" and path.startswith("/api/ledger/digest"):
        body["root_hash"] = "a" * 64
    return body


@pytest.mark.parametrize("change", ["event", "chain", "inclusion", "root"])
def test_a_tampered_event_or_forged_proof_raises_verification_error(
    shared_server: Server, tmp_path: Path, change: str
) -> None:
    run_id = finished(shared_server)
    digest_file = tmp_path / "trusted.json"

    def rewrite(method: str, path: str, body: Any) -> Any:
        return _tamper(method, path, body, run_id, change)

    with rewriting_proxy(shared_server.url, rewrite) as url, pytest.raises(VerificationError):
        verified_get(shared_server, url, run_id, digest_file)
    assert not digest_file.exists()  # nothing it could not check is trusted


def test_a_rewritten_history_fails_the_consistency_proof(shared_server: Server, tmp_path: Path) -> None:
    run_id = finished(shared_server)
    digest_file = tmp_path / "trusted.json"
    verified_get(shared_server, shared_server.url, run_id, digest_file)
    trusted = json.loads(digest_file.read_text())
    later = finished(shared_server)

    def forge(method: str, path: str, body: Any) -> Any:
        if path.startswith("/api/ledger/proof/consistency"):
            body["proof"] = ["b" * 64 for _ in body["proof"]] or ["b" * 64]
        return body

    with (
        rewriting_proxy(shared_server.url, forge) as url,
        pytest.raises(VerificationError, match="rewritten"),
    ):
        verified_get(shared_server, url, later, digest_file)
    assert json.loads(digest_file.read_text()) == trusted  # the old digest is still the trusted one

    # A server that shrinks the ledger below the trusted size is caught too.
    digest_file.write_text(json.dumps(trusted | {"tree_size": trusted["tree_size"] + 10**6}))
    with pytest.raises(VerificationError, match="shrank"):
        verified_get(shared_server, shared_server.url, later, digest_file)
