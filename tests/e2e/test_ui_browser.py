"""The web UI in a real headless Chromium against a real ``runledger serve`` (with its executor)
on both backends: the operator's journey, the auditor's view, and forged or refused requests.

One server and one browser per backend serve every test of the module; the ledger is seeded
once: a producing run ``P`` (its ``fetch`` writes ``lines.txt``), a run ``B`` like it with
another query, a run ``F`` of ``check`` that reads ``P``'s file as a ``file`` parameter and
fails with a message on stderr, and a run ``S`` that sleeps (running, to be cancelled).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.browser import ARTIFACTS, chromium, shot, wait_for, wait_text
from tests.e2e.conftest import Server, serving

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHECK = """\
name: check
params:
  data: {type: file, required: true}
tasks:
  - name: validate
    command:
      - python3
      - -c
      - >-
        import sys; rows = open(sys.argv[1]).readlines(); print('read', len(rows), 'rows');
        sys.stderr.write(f'validation failed: {len(rows)} rows, expected 5\\n'); sys.exit(2)
      - "{{ params.data }}"
    inputs: ["params/data"]
"""
SLOW = """\
name: slow
tasks:
  - name: wait
    command: [sleep, "120"]
"""


@dataclass
class Ledger:
    server: Server
    backend: str
    producer: str
    other: str
    failed: str
    running: str
    file_sha: str


def _trigger(api: httpx.Client, workflow: str, parameters: dict[str, Any]) -> str:
    answer = api.post(f"/api/workflows/{workflow}/trigger", json={"parameters": parameters})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["run_id"])


def _status_is(api: httpx.Client, run_id: str, status: str) -> bool:
    return bool(api.get(f"/api/runs/{run_id}").json()["status"] == status)


def _seed(server: Server, backend: str) -> Ledger:
    api = server.client("admin")
    for body in ((ROOT / "examples" / "pipeline.yaml").read_text(), CHECK, SLOW):
        answer = api.post("/api/workflows", content=body, headers={"Content-Type": "application/yaml"})
        assert answer.status_code in (200, 201), answer.text
    producer = _trigger(api, "pipeline", {"query": "alpha"})
    other = _trigger(api, "pipeline", {"query": "beta", "limit": 4})
    running = _trigger(api, "slow", {})
    eventually(lambda: _status_is(api, producer, "success"), timeout=60)
    files = api.get(f"/api/runs/{producer}/files").json()["files"]
    file_sha = next(f["sha256"] for f in files if f["path"] == "lines.txt" and f["role"] == "output")
    failed = _trigger(api, "check", {"data": file_sha})
    for run_id, status in ((other, "success"), (failed, "failed"), (running, "running")):
        eventually(lambda r=run_id, s=status: _status_is(api, r, s), timeout=60)  # type: ignore[misc]
    # The runs page and the lineage graph read the views: wait until they have the runs.
    eventually(
        lambda: failed in {r["run_id"] for r in api.get("/api/runs?status=failed").json()["runs"]}, timeout=60
    )
    eventually(
        lambda: any(
            n["id"] == f"run:{producer}" for n in api.get(f"/api/runs/{failed}/lineage").json()["nodes"]
        ),
        timeout=60,
    )
    return Ledger(server, backend, producer, other, failed, running, file_sha)


@pytest.fixture(scope="module", params=BACKENDS)
def ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with serving(request.param, tmp_path_factory, f"ui-{request.param}", executor=True) as server:
        yield _seed(server, request.param)


@dataclass
class Browser:
    driver: WebDriver
    downloads: Path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    downloads = tmp_path_factory.mktemp("downloads")
    with chromium(downloads) as driver:
        yield Browser(driver, downloads)


def sign_in(driver: WebDriver, server: Server, token: str, *, here: bool = False) -> None:
    """Sign in with ``token`` on a fresh sign-in page (or on the one shown, when ``here``)."""
    if not here:
        driver.delete_all_cookies()
        driver.get(f"{server.url}/login")
    wait_for(driver, "#token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()


def _absent(driver: WebDriver, css: str) -> bool:
    try:
        driver.find_element(By.CSS_SELECTOR, css)
    except NoSuchElementException:
        return True
    return False


def test_an_operator_finds_a_failure_follows_its_lineage_cancels_compares_downloads_and_verifies(
    ledger: Ledger, browser: Browser
) -> None:
    d, url, tag = browser.driver, ledger.server.url, ledger.backend
    # Signed out, a page sends you to the sign-in form and back.
    d.get(f"{url}/runs/{ledger.failed}")
    wait_for(d, "#token")
    assert "/login?next=" in d.current_url
    shot(d, f"{tag}-login")
    sign_in(d, ledger.server, ledger.server.token("operator"), here=True)
    wait_for(d, "#timeline")
    assert d.current_url.endswith(f"/runs/{ledger.failed}")

    # The runs page, filtered to failed runs, shows the failed run and not the others.
    d.get(f"{url}/runs")
    wait_for(d, "#runs-table")
    shot(d, f"{tag}-runs")
    shot(d, f"{tag}-runs", phone=True)
    d.find_element(By.CSS_SELECTOR, "#f-status option[value=failed]").click()
    d.find_element(By.ID, "apply-filters").click()
    wait_for(d, f'tr[data-run-id="{ledger.failed}"]')
    rows = [r.get_attribute("data-run-id") for r in d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")]
    assert ledger.failed in rows and ledger.producer not in rows and ledger.running not in rows
    assert "status=failed" in d.current_url
    shot(d, f"{tag}-runs-failed")

    # Open it: the timeline shows the failed attempt; its stderr says why.
    d.find_element(
        By.CSS_SELECTOR, f'tr[data-run-id="{ledger.failed}"] a[href="/runs/{ledger.failed}"]'
    ).click()
    wait_for(d, ".tl-bar.s-failed")
    shot(d, f"{tag}-run-failed")
    shot(d, f"{tag}-run-failed", phone=True)
    d.find_element(By.ID, "log-validate-1-stderr").click()
    wait_text(d, "#log-text", "validation failed: 3 rows, expected 5")
    wait_for(d, "#log-q").send_keys("expected")
    d.find_element(By.ID, "log-search").click()
    wait_text(d, "#log-text", "expected 5")
    shot(d, f"{tag}-log")

    # Its lineage leads to the run that produced the file it read.
    d.get(f"{url}/runs/{ledger.failed}#lineage")
    node = wait_for(d, f'#lineage-graph a[data-node-id="run:{ledger.producer}"]')
    assert d.find_elements(By.CSS_SELECTOR, f'#lineage-graph a[data-node-id="run:{ledger.failed}"]')
    d.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", node)
    wait_for(d, "#files-table")
    assert d.current_url.endswith(f"/runs/{ledger.producer}")
    shot(d, f"{tag}-run-producer")

    # Download the file it produced; its bytes hash to what the ledger recorded.
    link = d.find_element(By.CSS_SELECTOR, f'#files-table a.download[data-sha256="{ledger.file_sha}"]')
    link.click()
    saved = eventually(
        lambda: [p for p in browser.downloads.glob("lines.txt") if p.stat().st_size], timeout=15
    )
    assert hashlib.sha256(saved[0].read_bytes()).hexdigest() == ledger.file_sha

    # Compare the producer with its sibling, picked on the runs page.
    d.get(f"{url}/runs?workflow=pipeline")
    wait_for(d, "#runs-table")
    for run_id in (ledger.producer, ledger.other):
        d.find_element(By.CSS_SELECTOR, f'input.pick[value="{run_id}"]').click()
    d.find_element(By.ID, "compare-picked").click()
    wait_for(d, "#compare-params")
    params = d.find_element(By.ID, "compare-params").text
    assert "query" in params and "alpha" in params and "beta" in params
    assert "Same definition" in d.find_element(By.ID, "definition-equal").text
    shot(d, f"{tag}-compare")

    # Label the producer with a reason, then find it with a search on that label.
    d.get(f"{url}/runs/{ledger.producer}")
    wait_for(d, "#label-values").send_keys(f"stage={tag}-qa")
    d.find_element(By.ID, "label-reason").send_keys("checked the line counts")
    d.find_element(By.ID, "label-run").click()
    wait_text(d, "#run-labels", f"stage={tag}-qa")

    def searched() -> list[str | None]:
        d.get(f"{url}/runs")
        wait_for(d, "#f-q").send_keys(f'label.stage = "{tag}-qa"')
        d.find_element(By.ID, "apply-filters").click()
        wait_for(d, "#f-q")
        return [
            r.get_attribute("data-run-id") for r in d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")
        ]

    assert eventually(searched, timeout=15, interval=0.5) == [ledger.producer]
    shot(d, f"{tag}-runs-searched")

    # A POST without the form's CSRF token, from this very session, is refused; nothing happens.
    d.get(f"{url}/runs/{ledger.running}")
    wait_for(d, "#cancel-form")
    forged = d.execute_script(
        "const body = new URLSearchParams({reason: 'forged'});"
        "const r = await fetch(arguments[0], {method: 'POST', body});"
        "return [r.status, await r.text()];",
        f"/runs/{ledger.running}/cancel",
    )
    assert forged[0] == 403 and "CSRF" in forged[1]
    api = ledger.server.client("admin")
    assert api.get(f"/api/runs/{ledger.running}").json()["status"] == "running"

    # Cancel the running run with a reason: it is killed, and the audit trail says who and why.
    shot(d, f"{tag}-run-running")
    d.find_element(By.ID, "cancel-reason").send_keys("stuck on a dead NFS mount")
    d.find_element(By.ID, "cancel-run").click()
    wait_text(d, "#run-status", "killed")

    def audited() -> bool:
        d.get(f"{url}/runs/{ledger.running}#audit")
        d.refresh()  # the cancel already landed on this URL: a same-URL get only scrolls
        return "stuck on a dead NFS mount" in d.find_element(By.ID, "audit").text

    eventually(audited, timeout=15, interval=0.5)
    audit = d.find_element(By.ID, "audit-table").text
    assert "killed" in audit and "test-operator" in audit
    assert _absent(d, "#cancel-form")
    shot(d, f"{tag}-run-killed")

    # Verify the ledger: OK.
    d.get(f"{url}/ledger")
    wait_for(d, "#run-verify").click()
    wait_text(d, "#verify-result", "OK", timeout=30)
    shot(d, f"{tag}-ledger-verified")

    # Sign out: the session is over.
    d.find_element(By.ID, "logout").click()
    wait_for(d, "#token")
    d.get(f"{url}/runs")
    wait_for(d, "#token")
    assert "/login" in d.current_url


def test_an_auditor_reads_every_page_but_has_no_action_and_cannot_post_one(
    ledger: Ledger, browser: Browser
) -> None:
    d, url, tag = browser.driver, ledger.server.url, ledger.backend
    live = _trigger(ledger.server.client("admin"), "slow", {})  # a run an operator could cancel
    sign_in(d, ledger.server, ledger.server.token("auditor"))
    wait_for(d, "#runs-table")
    d.get(f"{url}/runs/{live}")
    wait_for(d, "#timeline")
    assert d.find_element(By.ID, "run-status").text in ("pending", "running")
    assert _absent(d, "#actions") and _absent(d, "#cancel-form") and _absent(d, "#replay-form")
    assert _absent(d, "a[href='#actions']")
    shot(d, f"{tag}-run-auditor")
    # Even with this session's own CSRF token, the role rules refuse the action.
    csrf = d.find_element(By.CSS_SELECTOR, "form[action='/logout'] input[name=csrf]").get_attribute("value")
    refused = d.execute_script(
        "const body = new URLSearchParams({csrf: arguments[1], reason: 'x'});"
        "const r = await fetch(arguments[0], {method: 'POST', body});"
        "return [r.status, await r.text()];",
        f"/runs/{ledger.other}/replay",
        csrf,
    )
    assert refused[0] == 403 and "needs &#39;operator&#39;" in refused[1]
    before = ledger.server.client("admin").get("/api/runs?workflow=pipeline").json()["runs"]
    assert all(r.get("replay_of") != ledger.other for r in before)
    # The runs page follows unfinished runs live: a cancel elsewhere shows without a reload.
    cell = f'tr[data-run-id="{live}"] td.status[sse-swap]'

    def listed() -> bool:  # the list reads the summaries view, which may lag a moment
        d.get(f"{url}/runs")
        return bool(d.find_elements(By.CSS_SELECTOR, cell))

    eventually(listed, timeout=15, interval=0.5)
    d.execute_script("document.getElementById('runs-table').dataset.loadedOnce = 'yes'")
    assert ledger.server.client("admin").post(f"/api/runs/{live}/cancel").status_code == 202
    wait_text(d, cell, "killed", timeout=20)
    assert d.execute_script("return document.getElementById('runs-table').dataset.loadedOnce") == "yes"
    # Every other page answers, each with what it is for; screenshots of each.
    pages = {
        "workflows": ("/workflows", "#workflows-table", "pipeline"),
        "workflow-diff": ("/workflows/pipeline?version=1&diff_from=1", "#diff", "same"),
        "stats": ("/stats", "#chart-status", ""),
        "lineage": (f"/lineage?node_id=run:{ledger.failed}&depth=2", "#lineage-graph", ""),
        "audit": ("/audit", "main", ""),
        "ledger": ("/ledger", "#root-hash", ""),
        "not-found": ("/runs/no-such-run", "#problem-detail", "no run 'no-such-run'"),
    }
    for name, (path, css, text) in pages.items():
        d.get(url + path)
        element = wait_for(d, css)
        assert text in element.text
        shot(d, f"{tag}-{name}")
    shot(d, f"{tag}-stats", phone=True)


def test_a_worker_token_cannot_sign_in(ledger: Ledger, browser: Browser) -> None:
    d, tag = browser.driver, ledger.backend
    sign_in(d, ledger.server, ledger.server.token("worker"))
    wait_text(d, "#login-error", "A worker token cannot sign in")
    assert d.get_cookie("rl_session") is None
    shot(d, f"{tag}-login-worker-refused")
    d.get(f"{ledger.server.url}/runs")
    wait_for(d, "#token")


def test_the_api_docs_render_with_every_script_from_this_server(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``/docs`` and ``/redoc`` are pages of the app whatever the backend: one (SQLite) server.
    Each is waited for until it has rendered (Redoc renders the whole document in one pass:
    15 s on an idle 2-core machine, more when it is loaded); then no resource the page loaded
    came from another host."""
    d = browser.driver
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving("sqlite", tmp_path_factory, "ui-docs", projections=False) as server:
        d.get(server.url + "/docs")
        wait_text(d, ".swagger-ui .info .title", "runledger", timeout=30)
        _local_only(d, server.url)
        d.save_screenshot(str(ARTIFACTS / "api-docs.png"))
        d.get(server.url + "/redoc")
        wait_for(d, "redoc h1, [role=search], .api-info", timeout=90)
        _local_only(d, server.url)
        d.save_screenshot(str(ARTIFACTS / "api-redoc.png"))


def _local_only(d: WebDriver, url: str) -> None:
    scripts = d.execute_script("return [...document.scripts].map(s => s.src).filter(Boolean)")
    styles = d.execute_script("return [...document.styleSheets].map(s => s.href).filter(Boolean)")
    loaded = d.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    every = scripts + styles + loaded
    assert scripts and all(src.startswith(url) or src.startswith("data:") for src in every), every
