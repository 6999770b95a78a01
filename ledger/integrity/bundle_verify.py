"""``verify_bundle``: check an export with nothing but the file (no database, no network).

Checks, in order: the Ed25519 signature over ``manifest.json`` (with the given public key, or
the manifest's own key, which then only proves integrity, not origin), each file's SHA-256 and
size, each event's hash recomputed from its content, each stream's chain and sequence
continuity (an export holds whole runs), increasing positions, each event's inclusion
proof against the manifest's Merkle root, and each run signature against its signing key.
Files are streamed; memory is O(streams + signatures).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.integrity import merkle
from ledger.integrity.bundle import FILES, FORMAT
from ledger.integrity.run_signatures import signature_problem
from ledger.integrity.signing import load_public_key, public_key_pem, verify_signature
from ledger.store.decode import contract_hash, load_json

#: How often (in events) a bundle check reports its progress.
PROGRESS_EVERY = 1000

MAX_PROBLEMS = 1000


class BundleProblems(list[str]):
    def add(self, problem: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append(problem)


def verify_bundle(
    path: Path,
    *,
    public_key: Ed25519PublicKey | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Every problem found, as a sentence naming the place; empty when the bundle checks out.
    ``progress(done, total)`` hears how many of the manifest's events were checked, every
    ``PROGRESS_EVERY`` events."""
    problems = BundleProblems()
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        return [f"{path}: not a readable bundle: {exc}"]
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        missing = [n for n in ("manifest.json", "manifest.sig", *FILES) if n not in members]
        if missing:
            return [f"bundle lacks {', '.join(missing)}"]
        manifest_bytes = _read(tar, "manifest.json")
        manifest = _manifest(manifest_bytes, problems)
        if manifest is None:
            return problems
        _check_signature(manifest, manifest_bytes, _read(tar, "manifest.sig"), public_key, problems)
        for name in FILES:
            _check_file(tar, name, manifest, problems)
        digest = manifest.get("digest") or {}
        try:
            tree_size, root = int(digest["tree_size"]), bytes.fromhex(str(digest["root_hash"]))
        except (KeyError, TypeError, ValueError):
            problems.add("manifest.json: the digest is missing or malformed")
            return problems
        counts = manifest.get("counts")
        total = counts.get("events") if isinstance(counts, dict) else None
        _check_events(tar, tree_size, root, problems, progress, total if isinstance(total, int) else 0)
    return problems


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    assert handle is not None
    with handle:
        return handle.read()


def _lines(tar: tarfile.TarFile, name: str) -> Iterator[bytes]:
    handle: IO[bytes] | None = tar.extractfile(name)
    assert handle is not None
    with handle:
        yield from handle


def _manifest(data: bytes, problems: BundleProblems) -> dict[str, Any] | None:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        problems.add(f"manifest.json is not JSON: {exc}")
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        problems.add(f"manifest.json is not a {FORMAT} manifest")
        return None
    return manifest


def _check_signature(
    manifest: dict[str, Any],
    data: bytes,
    signature_text: bytes,
    public_key: Ed25519PublicKey | None,
    problems: BundleProblems,
) -> None:
    try:
        embedded = load_public_key(str(manifest.get("public_key", "")))
    except ValueError:
        problems.add("manifest.json: public_key is not an Ed25519 public key")
        return
    key = public_key or embedded
    if public_key is not None and public_key_pem(public_key) != public_key_pem(embedded):
        problems.add("manifest.json: the bundle names a different public key than the one given")
    try:
        signature = bytes.fromhex(signature_text.decode().strip())
    except ValueError:
        problems.add("manifest.sig is not a hex signature")
        return
    if not verify_signature(key, signature, data):
        problems.add(
            "manifest.sig: the signature does not match manifest.json "
            "(the manifest was edited or signed by another key)"
        )


def _check_file(tar: tarfile.TarFile, name: str, manifest: dict[str, Any], problems: BundleProblems) -> None:
    expected = (manifest.get("files") or {}).get(name) or {}
    sha, size = hashlib.sha256(), 0
    for line in _lines(tar, name):
        sha.update(line)
        size += len(line)
    if sha.hexdigest() != expected.get("sha256") or size != expected.get("size"):
        problems.add(
            f"{name}: SHA-256 {sha.hexdigest()} ({size} bytes) differs from the "
            f"manifest's {expected.get('sha256')} ({expected.get('size')} bytes)"
        )


def _check_events(
    tar: tarfile.TarFile,
    tree_size: int,
    root: bytes,
    problems: BundleProblems,
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> None:
    streams: dict[str, tuple[int, str]] = {}
    signatures = _Signatures()
    previous = -1
    proofs = _lines(tar, "proofs.jsonl")
    number = 0
    if progress is not None:
        progress(0, total)
    for number, line in enumerate(_lines(tar, "events.jsonl"), start=1):
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number, max(total, number))
        where = f"events.jsonl line {number}"
        try:
            event, fast = load_json(line)
            proof = json.loads(next(proofs, b"null"))
            stream, sequence, position = event["stream"], int(event["sequence"]), int(event["position"])
        except (ValueError, KeyError, TypeError) as exc:
            problems.add(f"{where}: unreadable event or proof: {exc}")
            continue
        where = f"{where} (stream {stream}, sequence {sequence}, position {position})"
        if contract_hash(event, fast=fast) != event.get("hash"):
            problems.add(f"{where}: the content does not hash to {event.get('hash')}")
        last = streams.get(stream)
        expected_sequence = 1 if last is None else last[0] + 1
        expected_prev = None if last is None else last[1]
        if sequence != expected_sequence:
            problems.add(f"{where}: expected sequence {expected_sequence} of the stream")
        elif event.get("prev_hash") != expected_prev:
            problems.add(f"{where}: prev_hash does not chain to the previous event")
        streams[stream] = (sequence, str(event.get("hash")))
        if position <= previous:
            problems.add(f"{where}: positions must increase")
        previous = position
        _check_proof(where, event, proof, tree_size, root, problems)
        signatures.see(where, event)
    if progress is not None:
        progress(number, max(total, number))
    if next(proofs, None) is not None:
        problems.add("proofs.jsonl holds more lines than events.jsonl")
    signatures.check(problems)


class _Signatures:
    """Every ``Run.Signed`` of the bundle, checked against the ``SigningKey.Registered`` event
    (also in the bundle) of the key it names: the key's principal is the signer, the key was
    not revoked before it signed, and the Ed25519 signature covers the run id, head hash,
    meaning, reason, time and signer (SPEC 10). A signature copied to another run, or whose
    meaning or signer was changed, fails here even if someone re-hashed the event."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, str]] = {}
        self.revoked: dict[str, int] = {}
        self.signed: list[tuple[str, int, str, dict[str, Any]]] = []

    def see(self, where: str, event: dict[str, Any]) -> None:
        data = event.get("data") or {}
        if not isinstance(data, dict):
            return
        match event.get("type"):
            case "SigningKey.Registered":
                self.keys[str(data.get("fingerprint"))] = (
                    str(data.get("public_key")),
                    str(data.get("principal")),
                )
            case "SigningKey.Revoked":
                self.revoked.setdefault(str(data.get("fingerprint")), int(event["position"]))
            case "Run.Signed":
                self.signed.append((where, int(event["position"]), str(event.get("stream")), data))
            case _:
                pass

    def check(self, problems: BundleProblems) -> None:
        for where, position, run_id, data in self.signed:
            fingerprint = str(data.get("key_fingerprint"))
            key = self.keys.get(fingerprint)
            if key is None:
                problems.add(
                    f"{where}: the signature names key {fingerprint}, which the bundle does not hold"
                )
                continue
            if self.revoked.get(fingerprint, position) < position:
                problems.add(f"{where}: signed with key {fingerprint} after it was revoked")
            problem = signature_problem(run_id, data, key[0], key[1])
            if problem is not None:
                problems.add(f"{where}: signature by {data.get('signer')!r}: {problem}")


def _check_proof(
    where: str, event: dict[str, Any], proof: Any, tree_size: int, root: bytes, problems: BundleProblems
) -> None:
    if not isinstance(proof, dict) or proof.get("position") != event.get("position"):
        problems.add(f"{where}: no inclusion proof for this event in proofs.jsonl")
        return
    try:
        entry = bytes.fromhex(str(event.get("hash")))
        path = [bytes.fromhex(p) for p in proof["audit_path"]]
        index = int(proof["leaf_index"])
    except (KeyError, TypeError, ValueError):
        problems.add(f"{where}: the inclusion proof is malformed")
        return
    if proof.get("hash") != event.get("hash") or not merkle.verify_inclusion(
        merkle.leaf_hash(entry), index, tree_size, path, root
    ):
        problems.add(f"{where}: the inclusion proof does not lead to the manifest's root")
