"""PROV-JSON rendering of a lineage graph, read back by the reference ``prov`` library."""

from __future__ import annotations

import json

from prov.model import ProvActivity, ProvDocument, ProvEntity, ProvGeneration, ProvUsage

from projections.views.prov import to_prov

RUN = "7d9c2b1e-0000-4000-8000-000000000001"
SHA = "ab" * 32
GRAPH = {
    "nodes": [
        {"id": f"run:{RUN}", "kind": "run", "run_id": RUN, "workflow": "etl"},
        {"id": f"task:{RUN}/extract", "kind": "task", "run_id": RUN, "name": "extract"},
        {"id": f"file:{SHA}", "kind": "file", "sha256": SHA, "size": 3, "path": "a b.txt"},
        {
            "id": "dataset:postgres://db:5432/public.users",
            "kind": "dataset",
            "namespace": "postgres://db:5432",
            "name": "public.users",
        },
    ],
    "edges": [
        {
            "source": "dataset:postgres://db:5432/public.users",
            "target": f"task:{RUN}/extract",
            "kind": "consumed",
        },
        {"source": f"task:{RUN}/extract", "target": f"file:{SHA}", "kind": "produced"},
        {"source": f"task:{RUN}/extract", "target": f"run:{RUN}", "kind": "part_of"},
    ],
}


def test_runs_and_tasks_become_activities_and_files_and_datasets_entities() -> None:
    document = ProvDocument.deserialize(content=json.dumps(to_prov(GRAPH)), format="json")
    records = document.get_records()
    activities = {str(r.identifier) for r in records if isinstance(r, ProvActivity)}
    entities = {str(r.identifier) for r in records if isinstance(r, ProvEntity)}
    assert activities == {f"rl:run/{RUN}", f"rl:task/{RUN}/extract"}
    assert f"rl:file/{SHA}" in entities and len(entities) == 2


def test_edges_become_usage_generation_and_communication() -> None:
    rendered = to_prov(GRAPH)
    document = ProvDocument.deserialize(content=json.dumps(rendered), format="json")
    records = document.get_records()
    [usage] = [r for r in records if isinstance(r, ProvUsage)]
    assert str(usage.args[0]) == f"rl:task/{RUN}/extract"
    [generation] = [r for r in records if isinstance(r, ProvGeneration)]
    assert str(generation.args[0]) == f"rl:file/{SHA}"
    [informed] = rendered["wasInformedBy"].values()
    assert informed == {"prov:informed": f"rl:task/{RUN}/extract", "prov:informant": f"rl:run/{RUN}"}
    assert rendered["activity"][f"rl:task/{RUN}/extract"]["dcterms:isPartOf"] == f"rl:run/{RUN}"


def test_a_rendering_round_trips_through_the_prov_library() -> None:
    document = ProvDocument.deserialize(content=json.dumps(to_prov(GRAPH)), format="json")
    again = ProvDocument.deserialize(content=document.serialize(format="json"), format="json")
    assert again == document
