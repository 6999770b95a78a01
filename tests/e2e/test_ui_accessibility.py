"""The web UI's accessibility in a real headless Chromium against a real ``runledger serve`` on
both backends (SPEC 7: keyboard navigation, WCAG AA contrast, 1280 px and a phone width).

One server and one browser per backend; the ledger is seeded once through the API (a worker
token reports the tasks, so no executor is needed): a failed run ``F`` and a successful run
``S`` of a two-task workflow with two versions, and a pending run ``P`` to cancel.

* Contrast: a script in the page computes, for every visible element with text of its own,
  the WCAG 2 contrast ratio of its colour against its effective background (the first opaque
  background among its ancestors, the translucent ones composited over it), placeholders and
  SVG labels included, and returns the ones below 4.5:1 (3:1 for large text).
* Keyboard: Tab walks the runs page in document order with a visible focus indicator on each
  stop; Enter follows a run link and submits the filter form; a run is cancelled, with a
  reason, by keyboard alone.
* Widths: at 375 px and at 1280 px the document never scrolls sideways (a wide table scrolls
  inside its own container).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.builders import eventually
from tests.conftest import BACKENDS
from tests.e2e.browser import ARTIFACTS, chromium, wait_for, wait_text
from tests.e2e.conftest import Server, serving
from tests.e2e.test_ui_browser import sign_in

pytestmark = pytest.mark.e2e

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
DEFINITION: dict[str, Any] = {
    "name": "a11y",
    "params": {"dataset": {"type": "string", "default": "ds-1"}},
    "tasks": [
        {"name": "extract", "command": ["echo", "{{ params.dataset }}"]},
        {"name": "check", "command": ["false"], "depends_on": ["extract"]},
    ],
}

#: WCAG 2 contrast of every visible piece of text on the page. Returns ``{checked, failures}``:
#: the kinds of element checked (``tag.class``) and the texts below the ratio they need.
CONTRAST_JS = r"""
const parse = (text) => {
  const m = /^rgba?\(([^)]*)\)$/.exec(text.trim());
  if (!m) { return null; }
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
};
const over = (top, bottom) => {
  const a = top.a + bottom.a * (1 - top.a);
  const mix = (t, b) => (t * top.a + b * bottom.a * (1 - top.a)) / a;
  return {r: mix(top.r, bottom.r), g: mix(top.g, bottom.g), b: mix(top.b, bottom.b), a: a};
};
const luminance = (c) => {
  const lin = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
};
const ratio = (x, y) => {
  const [hi, lo] = [luminance(x), luminance(y)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
};
// The colour under an element: its own and its ancestors' backgrounds, up to the first opaque one.
const background = (el) => {
  const layers = [];
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
    const bg = parse(getComputedStyle(n).backgroundColor);
    if (bg && bg.a > 0) { layers.push(bg); if (bg.a >= 1) { break; } }
  }
  let base = {r: 255, g: 255, b: 255, a: 1};
  for (const layer of layers.reverse()) { base = over(layer, base); }
  return base;
};
const opacity = (el) => {
  let o = 1;
  for (let n = el; n && n.nodeType === 1; n = n.parentElement) { o *= Number(getComputedStyle(n).opacity); }
  return o;
};
const shown = (el) => {
  const cs = getComputedStyle(el);
  if (cs.visibility !== "visible" || cs.display === "none") { return false; }
  const r = el.getBoundingClientRect();
  // 1 px boxes are the screen-reader-only texts; boxes left of or above the page are off screen
  return r.width > 1 && r.height > 1 && r.right > 0 && r.bottom > 0;
};
const name = (el) => {
  const classes = (el.getAttribute("class") || "").trim().split(/\s+/).filter(Boolean);
  return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + classes.map((c) => "." + c).join("");
};
const failures = [];
const checked = new Set();
const check = (el, fg, bg, text, cs, part = "") => {
  checked.add(name(el).replace(/#[^.]*/, "") + part);
  if (!fg || !bg) { failures.push({element: name(el), text: text, problem: "colour not parsed"}); return; }
  const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight, 10) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  const seen = over({...fg, a: fg.a * opacity(el)}, bg);
  const got = ratio(seen, bg);
  if (got < need) {
    const rgb = (c) => `rgb(${Math.round(c.r)}, ${Math.round(c.g)}, ${Math.round(c.b)})`;
    const rounded = Math.round(got * 100) / 100;
    failures.push({element: name(el), text: text, fg: rgb(seen), bg: rgb(bg), ratio: rounded, need: need});
  }
};
for (const d of document.querySelectorAll("details")) { d.open = true; }
for (const el of document.body.querySelectorAll("*")) {
  if (["SCRIPT", "STYLE", "OPTION", "svg"].includes(el.tagName) || el.closest("svg")) { continue; }
  if (!shown(el)) { continue; }
  const cs = getComputedStyle(el);
  const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
  if (own) { check(el, parse(cs.color), background(el), own.slice(0, 60), cs); }
  const field = ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName)
    && !["hidden", "checkbox", "radio"].includes(el.type);
  if (field && el.value) { check(el, parse(cs.color), background(el), el.value.slice(0, 60), cs); }
  if (field && !el.value && el.placeholder) {
    const placeholder = parse(getComputedStyle(el, "::placeholder").color);
    check(el, placeholder, background(el), el.placeholder.slice(0, 60), cs, "::placeholder");
  }
}
// SVG labels: their fill, over the shape they sit on in a node, else over the page behind the SVG.
for (const t of document.querySelectorAll("svg text")) {
  if (!t.textContent.trim() || !t.getClientRects().length) { continue; }
  const cs = getComputedStyle(t);
  const shape = t.parentElement.tagName === "g" ? t.parentElement.querySelector(":scope > rect") : null;
  const under = shape ? parse(getComputedStyle(shape).fill) : null;
  const page = background(t.closest("svg"));
  const behind = under && under.a > 0 ? over(under, page) : page;
  check(t, parse(cs.fill), behind, t.textContent.trim().slice(0, 60), cs);
}
return {checked: [...checked], failures: failures};
"""

#: The elements Tab stops at, in document order; each gets ``data-tab-stop`` = its place.
TAB_STOPS_JS = r"""
const stops = [...document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]")]
  .filter((e) => !e.disabled && e.type !== "hidden" && e.tabIndex >= 0 && e.getClientRects().length
    && getComputedStyle(e).visibility === "visible");
stops.forEach((e, i) => { e.dataset.tabStop = String(i); });
return stops.map((e) => e.id || e.getAttribute("href") || e.name || e.tagName);
"""

#: The focused element: its tab stop, and whether it shows a focus indicator (an outline or a
#: box shadow) of at least 3:1 against what surrounds it (WCAG 2.2 non-text contrast).
FOCUSED_JS = r"""
const el = document.activeElement;
const cs = getComputedStyle(el);
const parse = (text) => {
  const m = /^rgba?\(([^)]*)\)$/.exec(text.trim());
  const p = m ? m[1].split(/[\s,\/]+/).filter(Boolean).map(Number) : [0, 0, 0, 0];
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
};
const lum = (c) => {
  const lin = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
};
let around = {r: 255, g: 255, b: 255, a: 1};
for (let n = el.parentElement; n; n = n.parentElement) {
  const bg = parse(getComputedStyle(n).backgroundColor);
  if (bg.a >= 1) { around = bg; break; }
}
const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0;
const shadow = cs.boxShadow !== "none";
const ring = parse(outline ? cs.outlineColor : (cs.boxShadow.match(/rgba?\([^)]*\)/) || ["rgb(0, 0, 0)"])[0]);
const [hi, lo] = [lum(ring), lum(around)].sort((a, b) => b - a);
return {stop: el.dataset.tabStop === undefined ? null : Number(el.dataset.tabStop),
        id: el.id || el.getAttribute("href") || el.tagName, indicator: outline || shadow,
        contrast: Math.round((hi + 0.05) / (lo + 0.05) * 100) / 100};
"""


@dataclass
class Seeded:
    server: Server
    backend: str
    failed: str
    succeeded: str
    pending: str


def _ok(answer: httpx.Response, *codes: int) -> Any:
    assert answer.status_code in (codes or (200,)), answer.text
    return answer.json() if answer.content else None


def _finish(server: Server, run_id: str, *, fail: bool) -> None:
    """Claim ``run_id`` (the only pending run) as a worker and report both tasks and the end."""
    worker = server.client("worker")
    claimed = eventually(lambda: _ok(worker.post("/api/runs/claim", json={"worker_id": "w1"}), 200, 204))
    assert claimed["run_id"] == run_id
    ref = {"sha256": SHA, "size": 4}
    events: list[dict[str, Any]] = [
        {"type": "task_started", "task": "extract", "attempt": 1},
        {
            "type": "task_finished",
            "task": "extract",
            "attempt": 1,
            "exit_code": 0,
            "outputs": [{"path": "out/rows-of-the-extracted-dataset.csv", **ref}],
            "stdout": ref,
            "duration_seconds": 1.5,
        },
        {"type": "task_started", "task": "check", "attempt": 1},
        {
            "type": "task_finished",
            "task": "check",
            "attempt": 1,
            "exit_code": 1 if fail else 0,
            "inputs": [{"path": "out/rows-of-the-extracted-dataset.csv", **ref}],
            "stderr": ref,
            "duration_seconds": 0.5,
        },
        {"type": "run_failed", "error": "check failed"} if fail else {"type": "run_succeeded"},
    ]
    _ok(worker.post(f"/api/runs/{run_id}/events", json={"worker_id": "w1", "events": events}))


def _seed(server: Server, backend: str) -> Seeded:
    api = server.client("admin")
    _ok(api.post("/api/files", content=b"test"), 201)  # the bytes of SHA, so downloads exist
    _ok(api.post("/api/workflows", json={"definition": DEFINITION}), 201)
    second = {**DEFINITION, "params": {"dataset": {"type": "string", "default": "ds-2"}}}
    _ok(api.post("/api/workflows", json={"definition": second}), 200, 201)
    runs = []
    for fail, dataset in ((True, SHA), (False, "ds-7")):
        trigger = {"parameters": {"dataset": dataset}}
        runs.append(_ok(api.post("/api/workflows/a11y/trigger", json=trigger), 202)["run_id"])
        _finish(server, runs[-1], fail=fail)
    pending = _ok(api.post("/api/workflows/a11y/trigger", json={}), 202)["run_id"]
    # The pages read the views: wait until the runs, the audit trail and the lineage are there.
    eventually(lambda: len(_ok(api.get("/api/runs"))["runs"]) == 3, timeout=30)
    eventually(lambda: _ok(api.get(f"/api/runs/{runs[1]}/audit"))["entries"], timeout=30)
    eventually(lambda: len(_ok(api.get(f"/api/runs/{runs[0]}/lineage"))["nodes"]) > 1, timeout=30)
    return Seeded(server, backend, runs[0], runs[1], pending)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with serving(request.param, tmp_path_factory, f"ui-a11y-{request.param}") as server:
        yield _seed(server, request.param)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with chromium(tmp_path_factory.mktemp("downloads")) as d:
        yield d


def _signed_in(d: WebDriver, seeded: Seeded) -> None:
    sign_in(d, seeded.server, seeded.server.token("operator"))
    wait_for(d, "#runs-table")


def _contrast_failures(d: WebDriver, where: str, kinds: set[str] | None = None) -> list[dict[str, Any]]:
    found = d.execute_script(CONTRAST_JS)
    assert len(found["checked"]) >= 5, f"{where}: only {found['checked']} checked"
    if kinds is not None:
        kinds.update(found["checked"])
    return [{"page": where, **f} for f in found["failures"]]


def test_every_page_keeps_wcag_aa_contrast(seeded: Seeded, driver: WebDriver) -> None:
    d, url, s = driver, seeded.server.url, seeded
    d.delete_all_cookies()
    d.get(f"{url}/login")
    wait_for(d, "#token")
    kinds: set[str] = set()
    failures = _contrast_failures(d, "/login", kinds)
    d.find_element(By.ID, "token").send_keys("not-a-token")
    d.find_element(By.ID, "sign-in").click()
    wait_for(d, "#login-error")
    failures += _contrast_failures(d, "/login (refused)", kinds)
    _signed_in(d, seeded)
    pages = {
        "/runs": "#runs-table",
        "/runs?status=failed": "#runs-table",
        f"/runs/{s.failed}": "#timeline",
        f"/runs/{s.succeeded}": "#audit-table",
        f"/runs/{s.pending}": "#cancel-form",
        f"/runs/{s.failed}/tasks/check/logs?stream=stderr": "#log-text",
        f"/compare?a={s.failed}&b={s.succeeded}": "#compare-tasks",
        "/workflows": "#workflows-table",
        "/workflows/a11y?version=2&diff_from=1": "#diff .add",
        "/stats": "#chart-status",
        f"/lineage?node_id=run:{s.failed}&depth=2": "#lineage-graph",
        "/ledger": "#root-hash",
        "/audit": "#ledger-audit",
        "/runs/no-such-run": "#problem-detail",
        "/runs?created_after=yesterday": "#problem-detail",
    }
    for path, css in pages.items():
        d.get(url + path)
        wait_for(d, css)
        failures += _contrast_failures(d, path, kinds)
    d.get(f"{url}/ledger")
    wait_for(d, "#run-verify").click()
    wait_text(d, "#verify-result", "OK", timeout=30)
    failures += _contrast_failures(d, "/ledger/verify", kinds)
    # The runs page with two runs picked: the compare button is enabled.
    d.get(f"{url}/runs")
    for run_id in (s.failed, s.succeeded):
        d.find_element(By.CSS_SELECTOR, f'input.pick[value="{run_id}"]').click()
    failures += _contrast_failures(d, "/runs (two picked)", kinds)
    assert not failures, "\n".join(map(str, failures))
    # What was checked: every status badge, links, muted text, buttons, table headers, fields
    # and their placeholders, the charts' and the lineage graph's labels.
    wanted = {
        *(f"span.badge.s-{s}" for s in ("success", "failed", "running", "pending", "killed")),
        "a",
        "span.muted",
        "button",
        "th",
        "input",
        "select",
        "label",
        "code",
        "input::placeholder",
        "text.c-label",
        "text.n-label",
        "text.n-sub",
    }
    assert wanted <= kinds, sorted(wanted - kinds)


def _tab(d: WebDriver) -> dict[str, Any]:
    d.switch_to.active_element.send_keys(Keys.TAB)
    focused: dict[str, Any] = d.execute_script(FOCUSED_JS)
    return focused


def test_the_keyboard_walks_the_runs_page_in_order_opens_a_run_filters_and_cancels(
    seeded: Seeded, driver: WebDriver
) -> None:
    d, url, s = driver, seeded.server.url, seeded
    _signed_in(d, seeded)
    d.get(f"{url}/runs")
    wait_for(d, "#runs-table")
    stops: list[str] = d.execute_script(TAB_STOPS_JS)
    first_run = next(i for i, name in enumerate(stops) if name.startswith("/runs/"))
    assert stops[0] == "#main" and "/stats" in stops[:first_run] and "f-q" in stops[:first_run]

    # Tab from the top of the page: every stop in document order, each with a visible focus.
    seen = []
    for _ in range(first_run + 1):
        focused = _tab(d)
        assert focused["indicator"] and focused["contrast"] >= 3, focused
        seen.append(focused["stop"])
        if len(seen) == 1:  # the skip link shows itself when focused, readable
            assert d.switch_to.active_element.text == "Skip to content"
            assert not _contrast_failures(d, "/runs (skip link focused)")
    assert seen == list(range(first_run + 1))

    # Enter on the focused run link opens that run.
    href = d.switch_to.active_element.get_attribute("href")
    assert href is not None and "/runs/" in href
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(d, "#timeline")
    assert d.current_url == href

    # The skip link leads past the header: the next Tab is the filter form's first field, and
    # Enter in a field submits the form.
    d.get(f"{url}/runs")
    wait_for(d, "#runs-table")
    _tab(d)
    d.switch_to.active_element.send_keys(Keys.ENTER)
    assert _tab(d)["id"] == "f-status"
    assert _tab(d)["id"] == "f-workflow"
    d.switch_to.active_element.send_keys("a11y", Keys.ENTER)
    wait_for(d, "#runs-table")
    assert "workflow=a11y" in d.current_url

    # Cancel the pending run by keyboard alone: Tab to the page's "Actions" link, follow it,
    # Tab into the reason, type it, Tab to the button, press Enter.
    d.get(f"{url}/runs/{s.pending}")
    d.execute_script(TAB_STOPS_JS)
    for _ in range(200):
        if _tab(d)["id"] == "#actions":
            break
    else:
        pytest.fail("Tab never reached the link to the actions")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    assert _tab(d)["id"] == "cancel-reason"
    d.switch_to.active_element.send_keys("cancelled from the keyboard")
    focused = _tab(d)
    assert focused["id"] == "cancel-run" and focused["indicator"]
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait_text(d, "#run-status", "killed")
    api = seeded.server.client("admin")
    assert eventually(
        lambda: [
            e
            for e in _ok(api.get(f"/api/runs/{s.pending}/audit"))["entries"]
            if e["reason"] == "cancelled from the keyboard"
        ]
    )


@pytest.mark.parametrize("width", [375, 1280])
def test_the_runs_list_and_a_run_page_never_scroll_sideways(
    seeded: Seeded, driver: WebDriver, width: int
) -> None:
    d, url = driver, seeded.server.url
    _signed_in(d, seeded)
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    try:
        for path, css in (("/runs", "#runs-table"), (f"/runs/{seeded.failed}", "#timeline")):
            d.get(url + path)
            wait_for(d, css)
            sizes = d.execute_script(
                "for (const e of document.querySelectorAll('details')) { e.open = true; }"
                "return [document.scrollingElement.scrollWidth, window.innerWidth];"
            )
            # (at a phone's width a page wider than the screen also widens the layout viewport)
            assert sizes[0] <= width and sizes[1] == width, (path, sizes, _widest(d, width))
            name = "runs" if path == "/runs" else "run"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            d.save_screenshot(str(ARTIFACTS / f"{seeded.backend}-a11y-{name}-{width}px.png"))
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _widest(d: WebDriver, width: int) -> list[str]:
    """The elements that reach past the right edge of the screen (to say what to fix)."""
    found: list[str] = d.execute_script(
        "return [...document.body.querySelectorAll('*')]"
        ".filter((e) => e.getBoundingClientRect().right > arguments[0] + 0.5)"
        ".filter((e) => !e.closest('.table-wrap, pre, .graph-wrap'))"
        ".slice(0, 12).map((e) => e.tagName + '#' + e.id + '.' + e.className"
        " + ' ' + Math.round(e.getBoundingClientRect().right));",
        width,
    )
    return found
