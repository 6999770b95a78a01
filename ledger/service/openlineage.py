"""OpenLineage ingestion (issue 7): :class:`LineageCommands` records RunEvents another engine
reports as the events of a run of ours, and (issue 24) DatasetEvents and JobEvents on the
dataset's or job's own stream (:mod:`ledger.domain.static_lineage`).

Each event is recorded in one workspace (SPEC 9: the token's): a run is triggered in it, a
dataset's or job's stream is its own there, so the same OpenLineage namespace and job in two
workspaces are two jobs, and a repeat is one identical to an event of the same workspace. A
runId already used by a run of another workspace answers as for no run (404): its existence
is not disclosed.
"""

from __future__ import annotations

from eventsourcing.persistence import IntegrityError

from ledger import __version__
from ledger.domain.openlineage import (
    OPENLINEAGE_DEFINITION,
    OPENLINEAGE_DEFINITION_HASH,
    OPENLINEAGE_VERSION,
    DatasetEvent,
    JobEvent,
    LineageRecorded,
    RunEvent,
    lineage_facts,
)
from ledger.domain.run import Run
from ledger.domain.static_lineage import DatasetLineage, JobLineage, dataset_stream, job_stream
from ledger.domain.workspace import DEFAULT_WORKSPACE
from ledger.errors import Conflict, NotFound
from ledger.service.base import LedgerBase


class LineageCommands(LedgerBase):
    """The command behind the API's OpenLineage endpoint."""

    def record_openlineage(
        self, event: RunEvent, *, principal: str, workspace: str = DEFAULT_WORKSPACE
    ) -> LineageRecorded:
        """Record one OpenLineage RunEvent in ``workspace``, creating its run there on the first
        event seen.

        An event identical to one already recorded records nothing; any other is recorded. When two
        requests create the same run at once, the loser retries against the stored run.
        """
        facts = lineage_facts(event)
        for _ in range(16):  # each round at least one concurrent writer of the run succeeds
            at = self.clock()
            run = self._get(event.run_id)
            if run is None:
                run = Run.trigger(
                    run_id=event.run_id,
                    at=at,
                    workflow=event.workflow,
                    version=OPENLINEAGE_VERSION,
                    definition_hash=OPENLINEAGE_DEFINITION_HASH,
                    definition=dict(OPENLINEAGE_DEFINITION),
                    engine_version=__version__,
                    triggered_by=principal,
                    trigger_kind="openlineage",
                    parameters={},
                    replay_of=None,
                    resume_of=None,
                    resume_from_task=None,
                    batch_id=None,
                    idempotency_key=None,
                    workspace=workspace,
                )
            elif not isinstance(run, Run):
                raise Conflict(f"{event.run_id!r} names a stream that is not a run")
            elif run.workspace != workspace:  # (SPEC 9: another workspace's run is not disclosed)
                raise NotFound(f"no run {run.id!r}")
            elif run.workflow != event.workflow:
                raise Conflict(f"run {run.id} is of workflow {run.workflow!r}, not {event.workflow!r}")
            if not run.record_lineage(at=at, **facts):
                return LineageRecorded(run.id, run.status.value, recorded=False)
            try:
                self.save(run)
            except IntegrityError:
                continue
            return LineageRecorded(run.id, run.status.value, recorded=True)
        raise Conflict(f"run {event.run_id} is being written concurrently; retry")

    def record_static_lineage(
        self, event: DatasetEvent | JobEvent, *, workspace: str = DEFAULT_WORKSPACE
    ) -> bool:
        """Record a DatasetEvent or a JobEvent on its dataset's or job's stream in
        ``workspace`` (created on the first event); False when an identical event was
        recorded there. Creates no run."""
        for _ in range(16):
            at = self.clock()
            stream: DatasetLineage | JobLineage
            if isinstance(event, DatasetEvent):
                ds = event.dataset
                found = self._get(dataset_stream(ds.namespace, ds.name, workspace))
                stream = found or DatasetLineage.declare(
                    namespace=ds.namespace, name=ds.name, workspace=workspace, at=at
                )
                recorded = stream.report(
                    at=at,
                    event_time=event.event_time,
                    producer=event.producer,
                    schema_url=event.schema_url,
                    facets=ds.facets,
                )
            else:
                job = event.job
                found = self._get(job_stream(job.namespace, job.name, workspace))
                stream = found or JobLineage.declare(
                    namespace=job.namespace, name=job.name, workspace=workspace, at=at
                )
                facts = lineage_facts_of_job(event)
                recorded = stream.report(at=at, **facts)
            if not recorded:
                return False
            try:
                self.save(stream)
            except IntegrityError:
                continue
            return True
        raise Conflict("the dataset or job is being written concurrently; retry")


def lineage_facts_of_job(event: JobEvent) -> dict[str, object]:
    """The data of ``JobLineage.Reported``: the JobEvent as received, in our field names."""
    return {
        "event_time": event.event_time,
        "producer": event.producer,
        "schema_url": event.schema_url,
        "job_facets": event.job.facets,
        "inputs": [
            {"namespace": d.namespace, "name": d.name, "facets": d.facets, "input_facets": d.input_facets}
            for d in event.inputs
        ],
        "outputs": [
            {"namespace": d.namespace, "name": d.name, "facets": d.facets, "output_facets": d.output_facets}
            for d in event.outputs
        ],
    }
