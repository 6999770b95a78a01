"""What makes two OpenLineage events the same event, and a job the same job.

An event is a repeat only when it is identical to one already recorded: the SHA-256 of the
canonical JSON (RFC 8785) of every fact the ledger keeps of it (:data:`LINEAGE_FIELDS`), so a
START with the same runId and eventTime but one more facet is a new event. A job is its
namespace and its name, two values (:func:`job_key`), never one string joined from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.hashing import canonical_json, sha256_hex

#: The fields of ``Run.LineageReported``, each a fact of the RunEvent as received.
LINEAGE_FIELDS = (
    "event_type",
    "event_time",
    "producer",
    "schema_url",
    "job",
    "run_facets",
    "inputs",
    "outputs",
    "parent",
)


def lineage_digest(facts: Mapping[str, Any]) -> str:
    """The canonical SHA-256 of one RunEvent's facts (the fields of :data:`LINEAGE_FIELDS`)."""
    return sha256_hex(canonical_json({name: facts.get(name) for name in LINEAGE_FIELDS}))


def job_key(job: Mapping[str, Any]) -> tuple[str, str]:
    """A job's identity: ``(namespace, name)``."""
    return str(job["namespace"]), str(job["name"])
