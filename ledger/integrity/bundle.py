"""Compliance export: one signed, self-verifying bundle (an uncompressed tar) holding

- ``events.jsonl``: every event of the selected runs as SPEC section 1 shows it, position order,
  and every event of the signing-key and token streams (SPEC 10: the keys the runs' signatures
  are checked with offline, and the lifecycle of tokens; a confined export, for a token of some
  workspaces only, holds only the keys its runs were signed with, and no token's);
- ``runs.jsonl``: each selected run's summary (folded from its events by the caller's
  ``summarise``, so the ledger does not depend on the read side);
- ``proofs.jsonl``: for each exported event, in the same order, its RFC 9162 inclusion proof
  ``{position, hash, leaf_index, audit_path}`` against the digest in the manifest;
- ``manifest.json``: RFC 8785 canonical JSON with the SHA-256 and size of each file, the
  digest ``{tree_size, root_hash}``, the filters, the public key and ``created_at``;
- ``manifest.sig``: the hex Ed25519 signature of the manifest's exact bytes.

Runs are selected by their trigger time (``created_after`` <= t < ``created_before``) and
workflow. Everything is written to temporary files as it is read, so memory stays flat (the set
of selected run ids aside); :mod:`ledger.integrity.bundle_verify` checks a bundle with no database.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import structlog

from ledger import __version__
from ledger.domain.workspace import DEFAULT_WORKSPACE, workspace_of
from ledger.errors import InvalidRequest
from ledger.hashing import canonical_json, format_timestamp, parse_timestamp
from ledger.integrity.merkle_cache import ProofCache
from ledger.integrity.merkle_store import MerkleStore
from ledger.integrity.signing import Signer
from ledger.settings import Settings
from ledger.store.decode import decode
from ledger.store.event_record import EventRecord
from ledger.store.reader import RowReader, topic_like

log = structlog.get_logger()

FORMAT = "runledger-bundle/1"
FILES = ("events.jsonl", "runs.jsonl", "proofs.jsonl")
Summarise = Callable[[list[EventRecord]], dict[str, Any] | None]


def parse_time_filter(value: str | None, name: str) -> datetime | None:
    """An optional ISO 8601 bound of an export's window; a bad one is refused by ``name``."""
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: not an ISO 8601 time: {value!r}") from exc


@dataclass(frozen=True)
class ExportFilters:
    created_after: datetime | None = None
    created_before: datetime | None = None
    workflow: str | None = None
    #: (SPEC 9) only this workspace's runs; None: every workspace (``runledger export``)
    workspace: str | None = None

    def matches(self, triggered_at: datetime, workflow: object, workspace: str = DEFAULT_WORKSPACE) -> bool:
        if self.workflow is not None and workflow != self.workflow:
            return False
        if self.workspace is not None and workspace != self.workspace:
            return False
        if self.created_after is not None and triggered_at < self.created_after:
            return False
        return self.created_before is None or triggered_at < self.created_before

    def to_json(self) -> dict[str, Any]:
        return {
            "created_after": _iso(self.created_after),
            "created_before": _iso(self.created_before),
            "workflow": self.workflow,
            "workspace": self.workspace,
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else format_timestamp(at)


class _HashingWriter:
    """A temporary file that hashes and counts what is written to it."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / name
        self.handle: IO[bytes] = self.path.open("wb")
        self.sha = hashlib.sha256()
        self.size = 0
        self.lines = 0

    def line(self, value: Any) -> None:
        try:
            data = orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # integers beyond 64 bits
            data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self.handle.write(data)
        self.sha.update(data)
        self.size += len(data)
        self.lines += 1

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"sha256": self.sha.hexdigest(), "size": self.size, "lines": self.lines}


@dataclass
class ExportResult:
    path: Path
    events: int
    runs: int
    manifest: dict[str, Any]


def write_bundle(
    settings: Settings,
    out: Path,
    *,
    filters: ExportFilters | None = None,
    summarise: Summarise | None = None,
    batch: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    confined: bool = False,
) -> ExportResult:
    """The signed bundle of the runs ``filters`` select, written to ``out`` (atomically).
    ``progress(done, total)`` hears how many of the ledger's positions were read, every
    ``batch`` rows. ``confined`` (an export for a token of some workspaces only, SPEC 9):
    only the signing keys the runs were signed with, and no token's lifecycle."""
    filters = filters or ExportFilters()
    store = MerkleStore(settings)
    signer = Signer(settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp,
        store.raw.connect() as conn,
        store.raw.connect() as side,
    ):
        head = store.catch_up_on(conn)
        runs = _selected_runs(store.raw.rows, side, filters, head.last_position)
        access = _access_streams(store.raw.rows, side, head.last_position)
        if confined:  # (SPEC 9) no other workspace's token or key names
            access = _keys_signing(store.raw.rows, side, runs, head.last_position)
        directory = Path(tmp)
        events = _HashingWriter(directory, "events.jsonl")
        proofs = _HashingWriter(directory, "proofs.jsonl")
        leaves = store.iter_leaves(side, batch=batch)
        leaf = next(leaves, None)
        cache = ProofCache(store, side, head.tree_size)
        total, scanned = head.last_position + 1, 0
        if progress is not None:
            progress(0, total)
        for row in store.raw.rows.scan(conn, upto=head.last_position, batch=batch):
            scanned += 1
            if progress is not None and scanned % batch == 0:
                progress(row.position + 1, total)
            while leaf is not None and leaf[1] < row.position:
                leaf = next(leaves, None)
            if row.stream not in runs and row.stream not in access:
                continue
            record = decode(*row)
            events.line(record.to_json())
            if leaf is None or leaf[1] != row.position:
                proofs.line(
                    {"position": row.position, "hash": record.hash, "leaf_index": None, "audit_path": None}
                )
                continue
            path = cache.path(leaf[0])
            proofs.line(
                {
                    "position": row.position,
                    "hash": record.hash,
                    "leaf_index": leaf[0],
                    "audit_path": [p.hex() for p in path],
                }
            )
        if progress is not None:
            progress(total, total)
        summaries = _HashingWriter(directory, "runs.jsonl")
        for run_events in _run_streams(store.raw.rows, side, sorted(runs), head.last_position):
            summary = summarise(run_events) if summarise is not None else None
            summaries.line(summary if summary is not None else {"run_id": run_events[0].stream})
        files = {
            "events.jsonl": events.close(),
            "proofs.jsonl": proofs.close(),
            "runs.jsonl": summaries.close(),
        }
        manifest = {
            "format": FORMAT,
            "engine_version": __version__,
            "created_at": format_timestamp(datetime.now(UTC)),
            "filters": filters.to_json(),
            "digest": {"tree_size": head.tree_size, "root_hash": head.root.hex()},
            "files": files,
            "counts": {"events": events.lines, "runs": summaries.lines},
            "public_key": signer.public_key_pem(),
            "public_key_hex": signer.public_key_hex(),
        }
        manifest_bytes = canonical_json(manifest)
        (directory / "manifest.json").write_bytes(manifest_bytes)
        (directory / "manifest.sig").write_text(signer.sign(manifest_bytes).hex() + "\n")
        partial = directory / "bundle.tar"
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in ("manifest.json", "manifest.sig", *FILES):
                tar.add(directory / name, arcname=name)
        partial.replace(out)
    log.info(
        "bundle_exported", path=str(out), events=events.lines, runs=summaries.lines, tree_size=head.tree_size
    )
    return ExportResult(out, events.lines, summaries.lines, manifest)


def _selected_runs(rows: RowReader, conn: Any, filters: ExportFilters, upto: int) -> set[str]:
    """Ids of the runs whose ``Run.Triggered`` event matches the filters."""
    query = rows.events.first_events_like()
    selected: set[str] = set()
    for stream, state in rows.stream(conn, query, (topic_like("Run.Triggered"), upto + 1), batch=2000):
        payload = json.loads(bytes(state))
        stamp = payload.get("timestamp")
        text = str(stamp.get("_data_") if isinstance(stamp, dict) else stamp)
        if filters.matches(parse_timestamp(text), payload.get("workflow"), workspace_of(payload)):
            selected.add(str(stream))
    return selected


#: Streams every bundle carries whole (SPEC 10): the signing keys that signatures are checked
#: with offline, and the lifecycle of tokens (who could act on the ledger, and when).
ACCESS_STREAM_TYPES = ("SigningKey.Registered", "Token.Issued")


def _access_streams(rows: RowReader, conn: Any, upto: int) -> set[str]:
    query = rows.events.first_events_like()
    found: set[str] = set()
    for event_type in ACCESS_STREAM_TYPES:
        for stream, _ in rows.stream(conn, query, (topic_like(event_type), upto + 1), batch=2000):
            found.add(str(stream))
    return found


def _keys_signing(rows: RowReader, conn: Any, runs: set[str], upto: int) -> set[str]:
    """The signing-key streams of the keys that signed these runs (what ``verify-bundle``
    needs to check their signatures offline), for an export of one workspace."""
    found: set[str] = set()
    for run_events in _run_streams(rows, conn, sorted(runs), upto):
        for event in run_events:
            if event.type == "Run.Signed" and event.data.get("key_fingerprint"):
                found.add(f"signing-key:{event.data['key_fingerprint']}")
    return found


def _run_streams(
    rows: RowReader, conn: Any, run_ids: list[str], upto: int, chunk: int = 500
) -> Iterator[list[EventRecord]]:
    """Each run's events (sequence order), read a few hundred runs per query."""
    for start in range(0, len(run_ids), chunk):
        ids = run_ids[start : start + chunk]
        query = rows.events.sql(rows.events.rows_of_streams(len(ids)))
        current: list[EventRecord] = []
        for position, stream, seq, topic, state in conn.execute(query, (*ids, upto + 1)).fetchall():
            record = decode(int(position), stream, seq, topic, bytes(state))
            if current and current[0].stream != record.stream:
                yield current
                current = []
            current.append(record)
        if current:
            yield current
