"""The web UI confined to workspaces (SPEC 7 and 9), on both backends, through a real server and
the real sign-in form: a session of ``red`` never sees ``blue``'s run ids, workflow definition
or parameter values on any page, and every page, download, stream and form on ``blue``'s run
answers 404 and writes nothing. A token of two workspaces switches between them; a token of
every workspace starts in ``default`` and sees the whole ledger on the audit page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.settings import Settings
from runledger import Client
from runledger.signing import create_key_files, load_private_key, signature_body
from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.conftest import Server, serving
from tests.e2e.helpers import ui_session
from tests.e2e.test_workspaces_boundary import definition
from tests.integration.integrity.conftest import Attacker

pytestmark = pytest.mark.e2e


@dataclass
class Side:
    name: str
    tokens: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    pending_run_id: str = ""
    file: str = ""

    def secrets(self) -> list[str]:
        return [
            self.run_id,
            self.pending_run_id,
            self.file,
            f"{self.name}-secret-note",
            f"{self.name}-pending-note",
            f"{self.name}-secret-motto",
            f"{self.name}-secret-out.txt",
            f"{self.name}-ol-ds",
        ]


@dataclass
class World:
    server: Server
    red: Side
    blue: Side
    #: A token of both workspaces.
    both: str


def _ok(response: httpx.Response, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200,)), response.text
    return dict(response.json()) if response.content else {}


def _api(server: Server, token: str) -> httpx.Client:
    return server.client(None, token=token)


def _side(server: Server, admin: httpx.Client, name: str) -> Side:
    side = Side(name)
    _ok(admin.post("/api/workspaces", json={"name": name}), 201)
    for role in ("operator", "worker"):
        made = admin.post("/api/tokens", json={"name": f"{name}-{role}", "role": role, "workspaces": [name]})
        side.tokens[role] = str(_ok(made, 201)["token"])
    operator, worker = _api(server, side.tokens["operator"]), _api(server, side.tokens["worker"])
    _ok(operator.post("/api/workflows", json={"definition": definition(name)}), 201)
    own = f"{name}-secret-bytes\n".encode()
    side.file = str(_ok(operator.post("/api/files", content=own), 201)["sha256"])
    trigger = {"parameters": {"note": f"{name}-secret-note"}}
    side.run_id = str(_ok(operator.post("/api/workflows/etl/trigger", json=trigger), 202)["run_id"])
    claimed = eventually(lambda: _ok(worker.post("/api/runs/claim", json={"worker_id": "w1"}), 200, 204))
    assert claimed["run_id"] == side.run_id
    ref = {"sha256": side.file, "size": len(own)}
    reports = [
        {"type": "task_started", "task": "fetch", "attempt": 1},
        {
            "type": "task_finished",
            "task": "fetch",
            "attempt": 1,
            "exit_code": 0,
            "outputs": [{"path": f"{name}-secret-out.txt", **ref}],
            "stdout": ref,
            "duration_seconds": 0.1,
        },
        {"type": "run_succeeded"},
    ]
    _ok(worker.post(f"/api/runs/{side.run_id}/events", json={"worker_id": "w1", "events": reports}))
    pending = {"parameters": {"note": f"{name}-pending-note"}}
    side.pending_run_id = str(_ok(operator.post("/api/workflows/etl/trigger", json=pending), 202)["run_id"])
    # an OpenLineage job of its own (a JobEvent: static lineage, no run), writing a dataset
    job_event = {
        "eventTime": "2026-01-02T03:04:05Z",
        "job": {"namespace": "ol-ns", "name": f"{name}-ol-job"},
        "outputs": [{"namespace": "ol-ns", "name": f"{name}-ol-ds"}],
        "producer": "p",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
    }
    _ok(operator.post("/api/v1/lineage", json=job_event), 201)
    return side


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with serving(request.param, tmp_path_factory, "ui-workspaces") as server:
        admin = server.client("admin")
        red, blue = _side(server, admin, "red"), _side(server, admin, "blue")
        both = admin.post(
            "/api/tokens", json={"name": "both", "role": "operator", "workspaces": ["red", "blue"]}
        )
        seen = _api(server, blue.tokens["operator"])
        eventually(
            lambda: any(r["run_id"] == blue.pending_run_id for r in _ok(seen.get("/api/runs"))["runs"])
        )
        for side in (red, blue):  # the stats view has seen both runs of each workspace
            stats = _api(server, side.tokens["operator"])
            eventually(lambda: _ok(stats.get("/api/stats"))["total_runs"] == 2)  # noqa: B023
            job = f"/api/v1/namespaces/ol-ns/jobs/{side.name}-ol-job"
            eventually(lambda: stats.get(job).status_code == 200)  # noqa: B023
        yield World(server, red, blue, str(_ok(both, 201)["token"]))


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def _tree_size(server: Server) -> int:
    return int(_ok(server.client("admin").get("/api/ledger/digest"))["tree_size"])


def test_a_red_session_never_sees_blue_and_cannot_touch_its_runs(world: World) -> None:
    red, blue = world.red, world.blue
    ui = ui_session(world.server, red.tokens["operator"])
    pages: dict[str, str | None] = {
        "/runs": None,
        "/runs?q=status%20%3D%20%22succeeded%22": None,
        "/stats": None,
        "/workflows": None,
        "/workflows/etl": None,
        "/audit": None,
        "/lineage": None,
        f"/lineage?node_id=run:{red.run_id}": None,
        "/lineage?node_id=job:ol-ns:red-ol-job": None,
        f"/runs/{red.run_id}": None,
    }
    for path in pages:
        answer = ui.get(path)
        assert answer.status_code == 200, (path, re.findall(r"<p[^>]*>(.*?)</p>", answer.text))
        for secret in blue.secrets():
            assert secret not in answer.text, (path, secret)
        pages[path] = answer.text
    # The pages are red's (so leaving blue out is confinement, not an empty page).
    assert red.run_id in str(pages["/runs"]) and red.pending_run_id in str(pages["/runs"])
    assert "red-secret-motto" in str(pages["/workflows/etl"])
    assert "<dt>Runs</dt><dd>2</dd>" in str(pages["/stats"])  # red's two, not blue's as well
    assert red.run_id in str(pages["/audit"]) and red.run_id in str(pages[f"/runs/{red.run_id}"])
    assert "workspace <b>red</b>" in str(pages["/runs"]) and "workspace-switcher" not in str(pages["/runs"])
    assert "red-ol-ds" in str(pages["/lineage?node_id=job:ol-ns:red-ol-job"])  # red's OpenLineage job

    before = _tree_size(world.server)
    csrf = _csrf(ui.get(f"/runs/{red.run_id}"))
    for path in (
        f"/runs/{blue.run_id}",
        f"/runs/{blue.run_id}/tasks/fetch/logs",
        f"/runs/{blue.run_id}/files/{blue.file}",
        f"/compare?a={red.run_id}&b={blue.run_id}",
        f"/lineage?node_id=run:{blue.run_id}",
        "/lineage?node_id=job:ol-ns:blue-ol-job",  # blue's OpenLineage job (its dataset is a secret)
        "/runs?workspace=blue",
        "/workspace?name=blue",
    ):
        answer = ui.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert all(s not in answer.text for s in blue.secrets()[2:]), path
    for action, form in (
        ("cancel", {}),
        ("replay", {"overrides": "note=x"}),
        ("resume", {"from_task": "fetch"}),
        ("labels", {"labels": "team=red"}),
    ):
        for run_id in (blue.run_id, blue.pending_run_id):
            answer = ui.post(f"/runs/{run_id}/{action}", data={"csrf": csrf, "reason": "not mine", **form})
            assert answer.status_code == 404, (action, answer.status_code, answer.text[:300])
    # The live status stream follows red's runs only: blue's id gets no event.
    live = ui.get("/runs/live", params={"ids": f"{blue.pending_run_id},{red.run_id}"})
    assert f"status-{red.run_id}" in live.text and blue.pending_run_id not in live.text
    # A switcher cookie naming blue (set by hand) widens nothing: the page stays red's.
    ui.cookies.set("rl_workspace", "blue")
    runs = ui.get("/runs")
    assert "workspace <b>red</b>" in runs.text and red.run_id in runs.text
    assert all(s not in runs.text for s in blue.secrets())
    assert ui.get(f"/runs/{blue.run_id}").status_code == 404
    assert _tree_size(world.server) == before  # nothing written
    assert _ok(world.server.client("admin").get(f"/api/runs/{blue.pending_run_id}"))["status"] == "pending"


def test_a_token_of_two_workspaces_switches_and_a_star_token_sees_the_whole_audit_trail(
    world: World,
) -> None:
    red, blue = world.red, world.blue
    ui = ui_session(world.server, world.both)
    first = ui.get("/runs")
    assert first.status_code == 200 and "workspace-switcher" in first.text
    start = "red" if "workspace <b>red</b>" in first.text else "blue"
    other = {"red": blue, "blue": red}[start]
    mine = {"red": red, "blue": blue}[start]
    assert mine.run_id in first.text and other.run_id not in first.text
    switched = ui.get("/workspace", params={"name": other.name, "next": f"/runs/{mine.run_id}"})
    assert switched.status_code == 303 and switched.headers["location"] == "/runs"
    assert (
        ui.get("/workspace", params={"name": other.name, "next": "//evil.example/stats"}).headers["location"]
        == "/runs"
    )
    now = ui.get("/runs")
    assert f"workspace <b>{other.name}</b>" in now.text
    assert other.run_id in now.text and mine.run_id not in now.text
    assert ui.get(f"/runs/{mine.run_id}").status_code == 404  # one workspace per request
    assert ui.get(f"/runs/{mine.run_id}", params={"workspace": mine.name}).status_code == 200

    star = ui_session(world.server, world.server.admin_token)
    runs = star.get("/runs")
    assert "workspace <b>default</b>" in runs.text and red.run_id not in runs.text
    assert all(f"<option {sel}>{w}</option>" in runs.text for w, sel in (("red", ""), ("blue", "")))
    whole = star.get("/audit")
    assert red.run_id in whole.text and blue.run_id in whole.text
    only_blue = star.get("/audit", params={"workspace": "blue"})
    assert blue.run_id in only_blue.text and red.run_id not in only_blue.text


def test_the_ui_signs_labels_searches_and_records_reasons_through_the_features_beside_it(
    world: World, tmp_path: Path
) -> None:
    red, server = world.red, world.server
    token = red.tokens["operator"]
    api = _api(server, token)
    private, public, fingerprint = create_key_files(tmp_path / "red.key")
    with Client(server.url, token) as client:
        client.signing_keys.register(public)
    head = api.get(f"/api/runs/{red.run_id}/events").json()["events"][-1]["hash"]
    body = signature_body(
        red.run_id, head, "reviewed", "read in the UI", "red-operator", load_private_key(private)
    )
    _ok(api.post(f"/api/runs/{red.run_id}/signatures", json=body), 201)

    ui = ui_session(server, token)
    page = ui.get(f"/runs/{red.run_id}")
    panel = page.text[page.text.index('id="signatures"') :]
    panel = panel[: panel.index("</section>")]
    assert "reviewed" in panel and "red-operator" in panel and "read in the UI" in panel
    assert fingerprint[:16] in panel and ">valid<" in panel

    csrf = _csrf(page)
    labelled = ui.post(
        f"/runs/{red.run_id}/labels", data={"csrf": csrf, "labels": "stage=qa", "reason": "triaged in the UI"}
    )
    assert labelled.status_code == 303, labelled.text
    assert 'code class="label">stage=qa<' in ui.get(f"/runs/{red.run_id}").text

    def found() -> str:
        listed = ui.get("/runs", params={"q": 'label.stage = "qa"'})
        assert listed.status_code == 200, listed.text
        return listed.text if red.run_id in listed.text else ""

    listed = eventually(found)
    assert red.pending_run_id not in listed and "stage=qa" in listed
    bad = ui.get("/runs", params={"q": 'label.stage = "qa" and'})
    assert bad.status_code == 422 and "at position" in bad.text
    assert eventually(lambda: "triaged in the UI" in ui.get("/audit").text)

    replayed = ui.post(
        f"/runs/{red.run_id}/replay", data={"csrf": csrf, "overrides": "", "reason": "replayed for QA"}
    )
    assert replayed.status_code == 303, replayed.text
    replay_id = replayed.headers["location"].removeprefix("/runs/")

    def reasons() -> list[Any]:
        entries = _ok(api.get("/api/audit", params={"run_id": replay_id}))["entries"]
        return [e["reason"] for e in entries]

    assert "replayed for QA" in eventually(lambda: [r for r in reasons() if r == "replayed for QA"])


def test_the_ledger_page_shows_the_whole_tree_but_no_proof_or_problem_of_another_workspace(
    world: World,
) -> None:
    """Last in the module: it tampers with one event of each workspace's run (the guard
    trigger stays off afterwards; the events are put back as they were)."""
    red, blue, server = world.red, world.blue, world.server
    admin = server.client("admin")
    positions = {
        side.name: [e["position"] for e in _ok(admin.get(f"/api/runs/{side.run_id}/events"))["events"]]
        for side in (red, blue)
    }
    ui, star = ui_session(server, red.tokens["operator"]), ui_session(server, server.admin_token)
    ledger = ui.get("/ledger")
    assert ledger.status_code == 200 and str(_tree_size(server)) in ledger.text
    assert all(s not in ledger.text for s in blue.secrets())
    # Proofs: of red's events, yes; of blue's, 404 as for no event; a `*` session gets both.
    mine = ui.get("/ledger/proofs/inclusion", params={"position": positions["red"][0]})
    assert mine.status_code == 200 and json.loads(mine.content)["position"] == positions["red"][0]
    for position in positions["blue"]:
        theirs = ui.get("/ledger/proofs/inclusion", params={"position": position})
        assert theirs.status_code == 404, (position, theirs.text[:300])
    assert star.get("/ledger/proofs/inclusion", params={"position": positions["blue"][0]}).status_code == 200
    assert ui.get("/ledger/proofs/consistency", params={"first": 1}).status_code == 200  # tree sizes only

    attacker = Attacker(Settings(database_url=server.database_url))
    attacker.disable_guard()
    rows = {row[0]: row for row in attacker.rows()}
    tampered = {name: rows[positions[name][-1]] for name in ("red", "blue")}
    try:
        for row in tampered.values():  # one hex digit of the stored hash changed
            at = row[4].index(b'"hash":"') + len(b'"hash":"')
            attacker.set_state(
                row[0], row[4][:at] + (b"1" if row[4][at : at + 1] == b"0" else b"0") + row[4][at + 1 :]
            )
        csrf = _csrf(ui.get("/ledger"))
        verified = ui.post("/ledger/verify", data={"csrf": csrf})
        assert verified.status_code == 200 and 'id="verify-failed"' in verified.text
        assert red.run_id in verified.text and f"position {tampered['red'][0]}" in verified.text
        assert blue.run_id not in verified.text and f"position {tampered['blue'][0]}" not in verified.text
        hidden = re.search(r'id="verify-hidden">(\d+) more', verified.text)
        assert hidden is not None and int(hidden.group(1)) >= 1, verified.text
        whole = star.post("/ledger/verify", data={"csrf": _csrf(star.get("/ledger"))})
        assert red.run_id in whole.text and blue.run_id in whole.text and "verify-hidden" not in whole.text
    finally:
        for row in tampered.values():
            attacker.set_state(row[0], row[4])
    again = ui.post("/ledger/verify", data={"csrf": csrf})
    assert 'id="verify-ok"' in again.text
