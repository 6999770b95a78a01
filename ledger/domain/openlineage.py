"""OpenLineage RunEvents (spec 2-0-2) received from outside engines.

An OpenLineage run becomes a ledger run: its id is the OpenLineage ``runId`` (a UUID, in its
canonical lowercase form), its workflow is ``<namespace>/<job name>``, and it is created by
``Run.Triggered`` with ``trigger_kind="openlineage"``, ``definition={}`` and
``definition_hash`` = the hash of ``{}`` (the job facets change from event to event, so they
are kept in each ``Run.LineageReported`` rather than hashed into an identity). Every RunEvent is
recorded verbatim (facets untouched) as one ``Run.LineageReported``; see :func:`lineage_facts`.

Repeated and out-of-order events: a repeat (identical to an event already recorded, by the
canonical hash of :mod:`ledger.domain.lineage_identity`) records nothing; any other event is
recorded in arrival order (its ``event_time`` kept), and the status follows
:func:`ledger.domain.status.status_after`: START/RUNNING -> running, COMPLETE -> success, FAIL
-> failed, ABORT -> killed, OTHER -> unchanged, except that a terminal run stays terminal. So a
COMPLETE that arrives before its START leaves the run ``success`` (Marquez keeps the latest
state by event time; a run ends once, so "terminal wins" gives the same answer without trusting
producers' clocks). The summary's ``started_at`` is the earliest START/RUNNING ``eventTime``
whenever it arrived, and a terminal event after the end is listed in its ``late_events`` (and
marked ``late`` in the audit trail). The job is ``(namespace, name)``; the workflow string
joined from them is for display only. A runId already used by another job, or by a run
runledger executes itself, is refused (409). OpenLineage runs are never claimed by workers.

Validation follows the spec's JSON schema where a malformed event would otherwise be stored:
``eventTime``, ``producer``, ``schemaURL``, ``run.runId`` (a UUID), ``job.namespace`` and
``job.name`` are required, facets must be JSON objects, ``eventType`` is one of the six
transitions (absent means ``OTHER``, as the schema allows). Unknown keys are ignored, as
OpenLineage consumers must tolerate additions to the spec.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ledger.errors import InvalidRequest
from ledger.hashing import definition_hash, format_timestamp, parse_timestamp

EventType = Literal["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"]
Name = Annotated[str, Field(min_length=1, max_length=1000)]
Facets = dict[str, dict[str, Any]]

#: The definition every OpenLineage run records, and its hash.
OPENLINEAGE_DEFINITION: dict[str, Any] = {}
OPENLINEAGE_DEFINITION_HASH = definition_hash(OPENLINEAGE_DEFINITION)
OPENLINEAGE_VERSION = 1
MAX_SAFE_INT = 2**53 - 1


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID") from None


def _event_time(value: str) -> str:
    try:
        return format_timestamp(parse_timestamp(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None


RunId = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_uuid)]
EventTime = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_event_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, strict=True)


class OLRun(_Model):
    run_id: RunId = Field(alias="runId")
    facets: Facets = Field(default_factory=dict)


class OLJob(_Model):
    namespace: Name
    name: Name
    facets: Facets = Field(default_factory=dict)


class OLInputDataset(_Model):
    namespace: Name
    name: Name
    facets: Facets = Field(default_factory=dict)
    input_facets: Facets = Field(default_factory=dict, alias="inputFacets")


class OLOutputDataset(_Model):
    namespace: Name
    name: Name
    facets: Facets = Field(default_factory=dict)
    output_facets: Facets = Field(default_factory=dict, alias="outputFacets")


class OLParentRun(_Model):
    run_id: RunId = Field(alias="runId")


class OLParentJob(_Model):
    namespace: Name
    name: Name


class OLParentFacet(_Model):
    """``run.facets.parent``: the run (and job) that started this one."""

    run: OLParentRun
    job: OLParentJob


class RunEvent(_Model):
    """An OpenLineage RunEvent (spec 2-0-2)."""

    event_type: EventType = Field(default="OTHER", alias="eventType")
    event_time: EventTime = Field(alias="eventTime")
    run: OLRun
    job: OLJob
    inputs: list[OLInputDataset] = Field(default_factory=list, max_length=10_000)
    outputs: list[OLOutputDataset] = Field(default_factory=list, max_length=10_000)
    producer: Name
    schema_url: Name = Field(alias="schemaURL")

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def workflow(self) -> str:
        return f"{self.job.namespace}/{self.job.name}"

    def parent(self) -> OLParentFacet | None:
        raw = self.run.facets.get("parent")
        if raw is None:
            return None
        return OLParentFacet.model_validate(raw, strict=False)


class OLStaticDataset(_Model):
    namespace: Name
    name: Name
    facets: Facets = Field(default_factory=dict)


class DatasetEvent(_Model):
    """An OpenLineage DatasetEvent (static lineage, spec 2-0-2): a dataset's facets, no run."""

    event_time: EventTime = Field(alias="eventTime")
    dataset: OLStaticDataset
    producer: Name
    schema_url: Name = Field(alias="schemaURL")


class JobEvent(_Model):
    """An OpenLineage JobEvent (static lineage, spec 2-0-2): a job and its datasets, no run."""

    event_time: EventTime = Field(alias="eventTime")
    job: OLJob
    inputs: list[OLInputDataset] = Field(default_factory=list, max_length=10_000)
    outputs: list[OLOutputDataset] = Field(default_factory=list, max_length=10_000)
    producer: Name
    schema_url: Name = Field(alias="schemaURL")


LineageEvent = RunEvent | DatasetEvent | JobEvent
M = TypeVar("M", bound=_Model)


def parse_run_event(raw: Any) -> RunEvent:
    """Validate a decoded JSON body; a malformed event raises :class:`InvalidRequest`."""
    event = _validated(RunEvent, raw)
    try:
        event.parent()  # a malformed parent facet is a malformed event
    except ValidationError as exc:
        raise _malformed(exc) from None
    return event


def parse_lineage_event(raw: Any) -> LineageEvent:
    """Any of the three kinds (spec 2-0-2): a RunEvent has a ``run``, a DatasetEvent a
    ``dataset`` and no ``job``, a JobEvent a ``job`` and no ``run``."""
    if isinstance(raw, dict) and "run" not in raw:
        if "dataset" in raw and "job" not in raw:
            return _validated(DatasetEvent, raw)
        if "job" in raw:
            return _validated(JobEvent, raw)
    return parse_run_event(raw)


def _validated(model: type[M], raw: Any) -> M:
    problem = _json_problem(raw, "event")
    if problem is not None:
        raise InvalidRequest(f"malformed OpenLineage event: {problem}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _malformed(exc) from None


def _malformed(exc: ValidationError) -> InvalidRequest:
    errors: list[dict[str, object]] = [
        {"loc": [str(part) for part in error["loc"]], "msg": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return InvalidRequest(f"malformed OpenLineage event: {where}: {first['msg']}", errors=errors)


def _json_problem(value: object, where: str) -> str | None:
    """Values the canonical JSON of an event cannot hold (NaN, huge integers), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _json_problem(item, f"{where}.{key}")
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{index}]")
            if problem is not None:
                return problem
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where} is not a JSON number"
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INT:
        return f"{where} is outside the interoperable integer range"
    return None


def lineage_facts(event: RunEvent) -> dict[str, Any]:
    """The data of ``Run.LineageReported``: the RunEvent as received, in our field names.

    Datasets keep the contract's ``{namespace, name, facets}`` and add ``input_facets`` /
    ``output_facets`` verbatim; ``parent`` is ``{run_id, namespace, name}`` or ``None``.
    """
    parent = event.parent()
    return {
        "event_type": event.event_type,
        "event_time": event.event_time,
        "producer": event.producer,
        "schema_url": event.schema_url,
        "job": {"namespace": event.job.namespace, "name": event.job.name, "facets": event.job.facets},
        "run_facets": event.run.facets,
        "inputs": [
            {"namespace": d.namespace, "name": d.name, "facets": d.facets, "input_facets": d.input_facets}
            for d in event.inputs
        ],
        "outputs": [
            {"namespace": d.namespace, "name": d.name, "facets": d.facets, "output_facets": d.output_facets}
            for d in event.outputs
        ],
        "parent": None
        if parent is None
        else {
            "run_id": parent.run.run_id,
            "namespace": parent.job.namespace,
            "name": parent.job.name,
        },
    }


@dataclass(frozen=True)
class LineageRecorded:
    """What ``Ledger.record_openlineage`` did: ``recorded`` is False for a repeated event."""

    run_id: str
    status: str
    recorded: bool
