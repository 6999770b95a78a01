"""A real ``dbt-ol build`` of a small dbt project on dbt-duckdb reporting to a real server, on
both backends, read back through Marquez's endpoints under ``/api/v1/``.

dbt-core, dbt-duckdb and openlineage-dbt pin versions our dev extras do not allow (their own
openlineage-python, protobuf, ...), so they live in a virtualenv of their own, created once
under ``~/.cache/runledger-tests/dbt-venv`` (``RUNLEDGER_TEST_CACHE`` moves it) and reused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import eventually

CACHE = Path(os.environ.get("RUNLEDGER_TEST_CACHE", Path.home() / ".cache" / "runledger-tests"))
PACKAGES = ("dbt-core>=1.10,<1.12", "dbt-duckdb>=1.10,<1.12", "openlineage-dbt")


@pytest.fixture(scope="session")
def dbt_bin() -> Path:
    venv = CACHE / "dbt-venv"
    bin_dir = venv / "bin"
    if not (bin_dir / "dbt-ol").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", *PACKAGES], check=True, timeout=1800)
    return bin_dir


def dbt_project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text('name: shop\nversion: "1.0"\nprofile: shop\nconfig-version: 2\n')
    (root / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {root / 'shop.duckdb'}\n      threads: 1\n"
    )
    (root / "seeds" / "raw_orders.csv").write_text("id,amount\n1,10\n2,20\n")
    (root / "models" / "stg_orders.sql").write_text("select id, amount from {{ ref('raw_orders') }}\n")
    (root / "models" / "orders.sql").write_text(
        "select id, amount * 2 as doubled from {{ ref('stg_orders') }}\n"
    )
    (root / "models" / "schema.yml").write_text(
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_type: integer\n"
        "      - name: doubled\n        data_type: integer\n"
    )
    return root


# The first test here pays for the dbt virtualenv's one-time install (its session fixture),
# which on a fresh machine takes minutes: more than the suite's 120 s default.
@pytest.mark.timeout(1800)
def test_a_dbt_ol_build_reads_back_as_jobs_datasets_versions_and_lineage(
    shared_server: Any, dbt_bin: Path, tmp_path: Path
) -> None:
    server = shared_server
    project = dbt_project(tmp_path / f"shop-{uuid.uuid4().hex[:6]}")
    env = os.environ | {
        "PATH": f"{dbt_bin}{os.pathsep}{os.environ['PATH']}",
        "OPENLINEAGE_URL": server.url,
        "OPENLINEAGE_ENDPOINT": "api/v1/lineage",
        "OPENLINEAGE_API_KEY": server.token("operator", name="dbt-ol"),
        "OPENLINEAGE_NAMESPACE": f"dbt-{uuid.uuid4().hex[:6]}",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    built = subprocess.run(
        [str(dbt_bin / "dbt-ol"), "build", "--profiles-dir", str(project), "--project-dir", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    headers = {"Authorization": f"Bearer {server.token('auditor', name='dbt-reader')}"}
    base = f"{server.url}/api/v1"

    def get(path: str, **params: Any) -> Any:
        answer = httpx.get(f"{base}{path}", headers=headers, params=params, timeout=30)
        return answer.json() if answer.status_code == 200 else None

    job_ns = env["OPENLINEAGE_NAMESPACE"]
    assert eventually(lambda: (get(f"/namespaces/{job_ns}/jobs") or {}).get("totalCount", 0) >= 3, timeout=30)
    assert job_ns in {n["name"] for n in get("/namespaces")["namespaces"]}
    jobs = {j["name"]: j for j in get(f"/namespaces/{job_ns}/jobs", limit=100)["jobs"]}
    model_jobs = [name for name in jobs if name.endswith((".orders.build.run", ".stg_orders.build.run"))]
    assert len(model_jobs) == 2, sorted(jobs)
    assert all(jobs[name]["latestRun"]["state"] == "COMPLETED" for name in model_jobs)
    orders_job = jobs[next(n for n in model_jobs if n.endswith(".orders.build.run"))]
    (output,) = orders_job["outputs"]
    dataset = get(f"/namespaces/{output['namespace']}/datasets/{output['name']}")
    assert {f["name"] for f in dataset["fields"]} >= {"id", "doubled"}
    assert get(f"/namespaces/{output['namespace']}/datasets/{output['name']}/versions")["totalCount"] >= 1
    (stg,) = orders_job["inputs"]
    graph = get("/lineage", nodeId=f"dataset:{stg['namespace']}:{stg['name']}", depth=2)["graph"]
    ids = {n["id"] for n in graph}
    assert {f"job:{job_ns}:{name}" for name in model_jobs} <= ids
    assert f"dataset:{output['namespace']}:{output['name']}" in ids
    columns = get("/column-lineage", nodeId=f"dataset:{output['namespace']}:{output['name']}", depth=2)
    fields = {n["data"]["field"]: n for n in columns["graph"] if n["data"]["dataset"] == output["name"]}
    assert "doubled" in fields
    sources = {(f["dataset"], f["field"]) for f in fields["doubled"]["data"]["inputFields"]}
    assert (stg["name"], "amount") in sources, sources  # orders.doubled comes from stg_orders.amount
