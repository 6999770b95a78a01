"""Static lineage (OpenLineage 2-0-2 ``DatasetEvent`` and ``JobEvent``): what a producer says of
a dataset or a job outside any run, each kept on a stream of its own and never creating a run.

A dataset's stream is ``ol-dataset:<sha256(namespace NUL name)>``, a job's
``ol-job:<sha256(namespace NUL name)>``: namespace and name stay two values. In a workspace
other than ``default`` (SPEC 9: OpenLineage namespaces stay inside their workspace) the digest
is qualified by the workspace as workflow streams are (``ol-dataset:<ws>/<sha256>``), so the
same dataset in two workspaces is two streams, and ``default``'s keep their ids. Each event is
recorded verbatim; one identical to an event already on the stream (the canonical SHA-256 of
its facts) records nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from ledger.domain.aggregate import ChainedAggregate, StreamCreated, StreamEvent
from ledger.domain.workspace import DEFAULT_WORKSPACE, scoped
from ledger.hashing import canonical_json, sha256_hex


def _digest(facts: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(facts))


def _stream(kind: str, workspace: str, namespace: str, name: str) -> str:
    digest = hashlib.sha256(f"{namespace}\x00{name}".encode()).hexdigest()
    return f"ol-{kind}:" + scoped(workspace, digest)


def dataset_stream(namespace: str, name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    return _stream("dataset", workspace, namespace, name)


def job_stream(namespace: str, name: str, workspace: str = DEFAULT_WORKSPACE) -> str:
    return _stream("job", workspace, namespace, name)


class _Static(ChainedAggregate):
    """A dataset or a job known by ``(namespace, name)``, and the digests of what it recorded."""

    def __init__(self, namespace: str, name: str, workspace: str = DEFAULT_WORKSPACE) -> None:
        self.namespace = namespace
        self.name = name
        self.workspace = workspace
        self.digests: set[str] = set()

    def _report(self, event_class: type[StreamEvent], at: datetime, facts: dict[str, Any]) -> bool:
        if _digest(facts) in self.digests:
            return False
        self.record(event_class, at=at, **facts)
        return True


class DatasetLineage(_Static):
    """A dataset's static lineage: the DatasetEvents reported of it."""

    class Declared(StreamCreated):
        namespace: str
        name: str
        #: The workspace it is in (SPEC 9); absent from events written before: ``default``.
        workspace: str = DEFAULT_WORKSPACE

    class Reported(StreamEvent):
        """One DatasetEvent: the dataset, its time, producer and facets, verbatim."""

        namespace: str
        name: str
        event_time: str
        producer: str
        schema_url: str
        facets: dict[str, Any]

        def apply(self, dataset: DatasetLineage) -> None:
            dataset.digests.add(_digest(self.data()))

    @classmethod
    def declare(cls, *, namespace: str, name: str, workspace: str, at: datetime) -> DatasetLineage:
        return cls.create_stream(
            cls.Declared,
            stream=dataset_stream(namespace, name, workspace),
            at=at,
            namespace=namespace,
            name=name,
            workspace=workspace,
        )

    def report(self, *, at: datetime, **facts: Any) -> bool:
        """Record one DatasetEvent; False when an identical one was recorded."""
        return self._report(self.Reported, at, {"namespace": self.namespace, "name": self.name} | facts)


class JobLineage(_Static):
    """A job's static lineage: the JobEvents reported of it."""

    class Declared(StreamCreated):
        namespace: str
        name: str
        #: The workspace it is in (SPEC 9); absent from events written before: ``default``.
        workspace: str = DEFAULT_WORKSPACE

    class Reported(StreamEvent):
        """One JobEvent: the job, its time, producer, facets and datasets, verbatim."""

        namespace: str
        name: str
        event_time: str
        producer: str
        schema_url: str
        job_facets: dict[str, Any]
        inputs: list[dict[str, Any]]
        outputs: list[dict[str, Any]]

        def apply(self, job: JobLineage) -> None:
            job.digests.add(_digest(self.data()))

    @classmethod
    def declare(cls, *, namespace: str, name: str, workspace: str, at: datetime) -> JobLineage:
        return cls.create_stream(
            cls.Declared,
            stream=job_stream(namespace, name, workspace),
            at=at,
            namespace=namespace,
            name=name,
            workspace=workspace,
        )

    def report(self, *, at: datetime, **facts: Any) -> bool:
        """Record one JobEvent; False when an identical one was recorded."""
        return self._report(self.Reported, at, {"namespace": self.namespace, "name": self.name} | facts)
