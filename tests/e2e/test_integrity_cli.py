"""Tamper evidence end to end: a real ``runledger serve``, the real CLI in subprocesses, and an
attacker with direct database access; proofs checked by the tests' own RFC 9162 verifier."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli import main
from ledger.integrity.bundle_verify import verify_bundle
from ledger.integrity.merkle import verify_consistency
from ledger.integrity.signing import load_public_key
from ledger.settings import Settings
from tests.builders import eventually
from tests.e2e.conftest import Server
from tests.e2e.helpers import assert_problem, pipeline, register, trigger
from tests.integration.integrity.conftest import Attacker
from tests.unit.test_merkle import ref_verify_inclusion


def populate(server: Server, runs: int = 3) -> list[str]:
    with server.client("admin") as client:
        name = register(client, pipeline())["name"]
        return [trigger(client, name)["run_id"] for _ in range(runs)]


def test_proofs_from_the_api_check_out_with_an_independent_verifier(server: Server) -> None:
    populate(server, 2)
    with server.client("admin") as client:
        old = client.get("/api/ledger/digest").json()
        populate(server, 2)
        new = client.get("/api/ledger/digest").json()
        assert new["tree_size"] > old["tree_size"] > 0
        events = []
        for run in client.get("/api/runs", params={"limit": 10}).json()["runs"]:
            events += client.get(f"/api/runs/{run['run_id']}/events").json()["events"]
        assert events
        root = bytes.fromhex(new["root_hash"])
        for event in events:
            proof = client.get(
                "/api/ledger/proof/inclusion",
                params={"position": event["position"], "tree_size": new["tree_size"]},
            ).json()
            leaf = hashlib.sha256(b"\x00" + bytes.fromhex(event["hash"])).digest()
            path = [bytes.fromhex(p) for p in proof["audit_path"]]
            assert ref_verify_inclusion(leaf, proof["leaf_index"], new["tree_size"], path, root)
        consistency = client.get(
            "/api/ledger/proof/consistency", params={"first": old["tree_size"], "second": new["tree_size"]}
        )
        assert consistency.json()["first"] == old["tree_size"]
        assert verify_consistency(
            old["tree_size"],
            new["tree_size"],
            bytes.fromhex(old["root_hash"]),
            root,
            [bytes.fromhex(p) for p in consistency.json()["proof"]],
        )
        assert client.post("/api/ledger/verify").json()["ok"] is True
        assert_problem(client.get("/api/ledger/proof/inclusion", params={"position": 10**9}), 404)
        run_id = events[0]["stream"]
        prov = eventually(
            lambda: (
                client.get(f"/api/runs/{run_id}/lineage", params={"format": "prov"}).json().get("activity")
            )
        )
        assert f"rl:run/{run_id}" in prov
    with server.client(None) as anonymous:
        assert anonymous.get("/api/ledger/digest").status_code == 401


@pytest.mark.parametrize("backend", ["sqlite"])  # tampering on PostgreSQL: tests/integration
def test_cli_verify_passes_then_names_the_tampered_row_and_rejects_a_forged_digest(
    server: Server, tmp_path: Path
) -> None:
    populate(server)
    digest = tmp_path / "digest.json"
    done = server.cli("digest")
    digest.write_text(done.stdout)
    assert json.loads(done.stdout)["tree_size"] > 0
    populate(server, 1)
    assert server.cli("verify", "--digest", str(digest)).returncode == 0
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(json.loads(done.stdout) | {"root_hash": "00" * 32}))
    rejected = server.cli("verify", "--digest", str(forged), check=False)
    assert rejected.returncode == 1 and "append-only" in rejected.stdout
    attacker = Attacker(Settings(database_url=server.database_url))
    attacker.disable_guard()
    position, stream, sequence, _, state = attacker.row_of("Run.Triggered", 1)
    attacker.set_state(position, state.replace(b'"query"', b'"QUERY"'))
    tampered = server.cli("verify", check=False)
    assert tampered.returncode == 1
    assert f"stream {stream}, sequence {sequence}, position {position}" in tampered.stdout
    with server.client("admin") as client:
        body = client.post("/api/ledger/verify").json()
        assert body["ok"] is False and body["problems"][0]["stream"] == stream
    assert (
        main(["--database-url", server.database_url, "verify", "--digest", str(tmp_path / "missing.json")])
        == 2
    )


@pytest.mark.parametrize("backend", ["sqlite"])  # bundles on PostgreSQL: tests/integration
def test_an_exported_bundle_verifies_offline_and_an_edited_one_does_not(
    server: Server, tmp_path: Path
) -> None:
    populate(server)
    with server.client("admin") as client:
        response = client.get("/api/export", params={"workflow": "nope"})
        assert response.status_code == 200
        refused = client.get("/api/export", params={"created_after": "yesterday"})
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "created_after" in refused.json()["detail"]
        with client.stream("GET", "/api/export") as streamed:
            bundle = tmp_path / "api.tar"
            with bundle.open("wb") as handle:
                for chunk in streamed.iter_bytes():
                    handle.write(chunk)
        key = tmp_path / "key.pem"
        key.write_text(client.get("/api/ledger/public-key").json()["public_key"])
    assert server.cli("verify-bundle", str(bundle), "--public-key", str(key)).returncode == 0
    cli_bundle = tmp_path / "cli.tar"
    server.cli("export", "--out", str(cli_bundle), "--created-after", "2000-01-01T00:00:00Z")
    assert verify_bundle(cli_bundle, public_key=load_public_key(key.read_bytes())) == []
    data = bytearray(bundle.read_bytes())
    index = data.index(b'"Run.Triggered"')
    data[index + 1] = ord("X")
    bundle.write_bytes(bytes(data))
    edited = server.cli("verify-bundle", str(bundle), "--public-key", str(key), check=False)
    assert edited.returncode == 1 and "events.jsonl" in edited.stdout
    assert (
        main(
            [
                "--database-url",
                server.database_url,
                "export",
                "--out",
                str(cli_bundle),
                "--created-after",
                "yesterday",
            ]
        )
        == 2
    )
