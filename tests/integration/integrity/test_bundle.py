"""Signed export bundles: written from real stores, checked with no database."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.integrity.bundle import ExportFilters, write_bundle
from ledger.integrity.bundle_verify import verify_bundle
from ledger.integrity.signing import key_path
from ledger.service import Ledger
from ledger.settings import Settings
from projections.views.summaries_fold import summary_from_events
from tests.integration.integrity.conftest import Attacker, finish_run


def rewrite(bundle: Path, name: str, change: bytes | None = None, *, flip_at: int | None = None) -> None:
    """Rewrite one member of the tar: replace it, or flip one byte of it."""
    with tarfile.open(bundle) as tar:
        contents = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    if flip_at is not None:
        flipped = bytearray(contents[name])
        flipped[flip_at] ^= 0x01
        contents[name] = bytes(flipped)
    elif change is not None:
        contents[name] = change
    with tarfile.open(bundle, "w") as tar:
        for member, data in contents.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_an_export_holds_every_event_of_the_runs_and_verifies_offline(
    populated: Ledger, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "bundle.tar"
    result = write_bundle(settings, out, summarise=summary_from_events)
    assert verify_bundle(out) == []
    files = members(out)
    events = [json.loads(line) for line in files["events.jsonl"].splitlines()]
    runs = [json.loads(line) for line in files["runs.jsonl"].splitlines()]
    assert len(runs) == 3 and {r["status"] for r in runs} == {"success"}
    run_events = [e for e in events if e["stream"] in {r["run_id"] for r in runs}]
    assert len(run_events) == len(events) == result.events
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    stored = populated.stream_events(runs[0]["run_id"])
    assert [e for e in events if e["stream"] == runs[0]["run_id"]] == [e.to_json() for e in stored]
    manifest = json.loads(files["manifest.json"])
    assert manifest["digest"]["tree_size"] == populated.reader.max_position() + 1
    assert set(manifest["files"]) == {"events.jsonl", "runs.jsonl", "proofs.jsonl"}


def test_the_signing_key_is_created_once_with_owner_only_permissions(
    populated: Ledger, settings: Settings, tmp_path: Path
) -> None:
    write_bundle(settings, tmp_path / "one.tar")
    path = key_path(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_bytes()
    write_bundle(settings, tmp_path / "two.tar")
    assert path.read_bytes() == first
    one = json.loads(members(tmp_path / "one.tar")["manifest.json"])
    two = json.loads(members(tmp_path / "two.tar")["manifest.json"])
    assert one["public_key"] == two["public_key"]


def test_filters_select_runs_by_trigger_time_and_workflow(
    populated: Ledger, settings: Settings, tmp_path: Path
) -> None:
    later = datetime.now(UTC) + timedelta(seconds=1)
    out = tmp_path / "none.tar"
    assert write_bundle(settings, out, filters=ExportFilters(created_after=later)).runs == 0
    assert verify_bundle(out) == []
    assert write_bundle(settings, out, filters=ExportFilters(workflow="other")).runs == 0
    assert write_bundle(settings, out, filters=ExportFilters(workflow="etl")).runs == 3
    past = datetime.now(UTC) - timedelta(hours=1)
    assert write_bundle(settings, out, filters=ExportFilters(created_before=past)).runs == 0


def test_one_changed_byte_in_the_events_is_rejected(
    populated: Ledger, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "bundle.tar"
    write_bundle(settings, out)
    rewrite(out, "events.jsonl", flip_at=40)
    problems = verify_bundle(out)
    assert any(p.startswith("events.jsonl: SHA-256") for p in problems), problems
    assert any("line 1" in p for p in problems), problems


def test_an_edited_manifest_is_rejected(populated: Ledger, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar"
    write_bundle(settings, out)
    manifest = json.loads(members(out)["manifest.json"])
    manifest["counts"]["events"] += 1
    rewrite(out, "manifest.json", json.dumps(manifest).encode())
    assert any("manifest.sig" in p for p in verify_bundle(out))


def test_an_events_file_rewritten_with_a_matching_manifest_hash_fails_the_signature(
    populated: Ledger, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "bundle.tar"
    write_bundle(settings, out)
    files = members(out)
    forged = files["events.jsonl"].replace(b'"carol"', b'"mallory"')
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["events.jsonl"].update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    rewrite(out, "events.jsonl", forged)
    rewrite(out, "manifest.json", json.dumps(manifest).encode())
    problems = verify_bundle(out)
    assert any("signature" in p for p in problems)
    assert any("does not hash" in p for p in problems)


def test_a_wrong_public_key_is_rejected(populated: Ledger, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar"
    write_bundle(settings, out)
    stranger = Ed25519PrivateKey.generate().public_key()
    problems = verify_bundle(out, public_key=stranger)
    assert any("different public key" in p for p in problems)
    assert any("signature does not match" in p for p in problems)


def test_proofs_carry_leaf_indexes_which_skip_the_gaps_postgres_leaves(
    populated: Ledger, settings: Settings, attacker: Attacker, tmp_path: Path
) -> None:
    if not attacker.sqlite:
        attacker.skip_positions(3)  # what rolled-back inserts leave behind
    finish_run(populated, "d")
    out = tmp_path / "bundle.tar"
    write_bundle(settings, out)
    proofs = [json.loads(line) for line in members(out)["proofs.jsonl"].splitlines()]
    shift = 0 if attacker.sqlite else 3
    assert proofs[-1]["position"] - proofs[-1]["leaf_index"] == shift
    assert verify_bundle(out) == []


def test_an_export_carries_labels_in_its_events_and_run_summaries(
    populated: Ledger, settings: Settings, tmp_path: Path
) -> None:
    runs = [e.stream for e in populated.reader.after(-1, limit=10_000) if e.type == "Run.Triggered"]
    populated.label(runs[0], set_={"team": "ml"}, remove=[], principal="olga", reason="audit prep")
    out = tmp_path / "bundle.tar"
    write_bundle(settings, out, summarise=summary_from_events)
    assert verify_bundle(out) == []
    files = members(out)
    labelled = [json.loads(line) for line in files["events.jsonl"].splitlines()]
    labelled = [e for e in labelled if e["type"] == "Run.Labelled"]
    assert [(e["stream"], e["data"]["set"], e["data"]["reason"]) for e in labelled] == [
        (runs[0], {"team": "ml"}, "audit prep")
    ]
    summaries = {r["run_id"]: r for r in map(json.loads, files["runs.jsonl"].splitlines())}
    assert summaries[runs[0]]["labels"] == {"team": "ml"}
    assert all(summaries[r]["labels"] == {} for r in runs[1:])
