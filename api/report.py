"""The run report (``GET /api/runs/{id}/report?format=html|pdf``, SPEC section 10): a
human-readable true copy of a run (21 CFR 11.10(b)) — summary, parameters, task evidence, file
hashes, audit trail, signatures (printed name, UTC date and time, meaning), the hashes of its
events, and an RFC 9162 inclusion proof of its last event against the current digest (the
events before it are bound to it by their ``prev_hash`` chain). Entries recorded after the run's
first entry that change what it shows (labels, holds, expunges) are marked.

HTML through Jinja2 (autoescaped), PDF through ReportLab; both from the same :func:`gather`.
"""

from __future__ import annotations

import io
import re
from typing import Any
from xml.sax.saxutils import escape

from jinja2 import Environment, select_autoescape

from api.reads import run_summary
from api.runtime import Runtime
from ledger.integrity.merkle_store import MerkleStore
from projections.views.rundetail import files_of, run_events, tasks_of
from projections.views.signatures import KeyLookup, signatures_of

#: Audit actions that change what a run shows after its first entry (SPEC 8 and 11).
AMENDING_ACTIONS = frozenset({"labelled", "hold_placed", "hold_released", "expunged"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def gather(runtime: Runtime, store: MerkleStore, run_id: str, key_of: KeyLookup) -> dict[str, Any]:
    """Everything the report shows, read once."""
    events = run_events(runtime.ledger, run_id)
    audit = [
        entry | {"amended": entry["action"] in AMENDING_ACTIONS}
        for entry in runtime.views.audit(run_id) or []
    ]
    head = events[-1]
    digest = store.digest()
    try:
        proof: dict[str, Any] | None = store.inclusion(head.position, digest["tree_size"])
    except (KeyError, ValueError):  # the tree has not taken the newest event in yet
        proof = None
    return {
        "run": run_summary(runtime, run_id),
        "tasks": tasks_of(events),
        "files": files_of(events, size_of=runtime.files.size),
        "audit": audit,
        "signatures": signatures_of(events, key_of),
        "events": [
            {
                "position": e.position,
                "sequence": e.sequence,
                "type": e.type,
                "at": e.timestamp,
                "hash": e.hash,
            }
            for e in events
        ],
        "head": {"position": head.position, "hash": head.hash},
        "digest": digest,
        "proof": proof,
        "amended": any(entry["amended"] for entry in audit),
    }


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Run report {{ run.run_id }}</title>
<style>
body{font-family:sans-serif;margin:2em;font-size:14px}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #999;padding:3px 6px;text-align:left;vertical-align:top}
code{font-size:12px;word-break:break-all}.amended{background:#fff3cd}
</style></head><body>
<h1>Run report: {{ run.workflow }} v{{ run.version }}</h1>
<p>A human-readable true copy of run <code>{{ run.run_id }}</code>, produced from the ledger at
{{ digest.at }} (UTC).{% if amended %} <strong class="amended">Entries marked "amended" were
recorded after the run's first entry and change what it shows.</strong>{% endif %}</p>
<h2>Summary</h2><table>
{% for key in ["run_id","workflow","version","definition_hash","status","triggered_by","trigger_kind",
"created_at","started_at","completed_at","error","replay_of","resume_of"] %}
<tr><th>{{ key }}</th><td><code>{{ run[key] }}</code></td></tr>{% endfor %}</table>
<h2>Parameters</h2><table><tr><th>name</th><th>value</th></tr>
{% for name, value in run.parameters.items() %}<tr><td>{{ name }}</td><td><code>{{ value }}</code></td></tr>
{% endfor %}</table>
<h2>Signatures</h2><table><tr><th>printed name</th><th>role</th><th>meaning</th><th>signed (UTC)</th>
<th>reason</th><th>key fingerprint</th><th>valid</th></tr>
{% for s in signatures %}<tr><td>{{ s.signer }}</td><td>{{ s.role }}</td><td>{{ s.meaning }}</td>
<td>{{ s.signed_at }}</td><td>{{ s.reason or "" }}</td><td><code>{{ s.key_fingerprint }}</code></td>
<td>{{ "yes" if s.valid else "NO: " ~ s.problem }}</td></tr>{% else %}<tr><td colspan="7">none</td></tr>
{% endfor %}</table>
<h2>Tasks</h2><table><tr><th>task</th><th>status</th><th>attempt</th><th>exit</th><th>command</th>
<th>started</th><th>ended</th></tr>
{% for t in tasks %}{% for a in t.attempts %}<tr><td>{{ t.name }}</td><td>{{ a.status }}</td>
<td>{{ a.attempt }}</td><td>{{ a.exit_code }}</td><td><code>{{ a.command }}</code></td>
<td>{{ a.started_at }}</td><td>{{ a.ended_at }}</td></tr>{% else %}<tr><td>{{ t.name }}</td>
<td>{{ t.status }}</td><td colspan="5"></td></tr>{% endfor %}{% endfor %}</table>
<h2>Files</h2><table><tr><th>role</th><th>task</th><th>path</th><th>sha256</th><th>size</th></tr>
{% for f in files %}<tr><td>{{ f.role }}</td><td>{{ f.task }}</td><td>{{ f.path }}</td>
<td><code>{{ f.sha256 }}</code></td><td>{{ f.size }}</td></tr>{% endfor %}</table>
<h2>Audit trail</h2><table><tr><th>at (UTC)</th><th>actor</th><th>action</th><th>from</th><th>to</th>
<th>detail</th></tr>
{% for e in audit %}<tr{% if e.amended %} class="amended"{% endif %}><td>{{ e.at }}</td><td>{{ e.actor }}</td>
<td>{{ e.action }}{% if e.amended %} (amended){% endif %}</td><td>{{ e.from_status or "" }}</td>
<td>{{ e.to_status or "" }}</td><td><code>{{ e.detail }}</code></td></tr>{% endfor %}</table>
<h2>Event hashes</h2><table><tr><th>position</th><th>seq</th><th>type</th><th>at (UTC)</th><th>hash</th></tr>
{% for e in events %}<tr><td>{{ e.position }}</td><td>{{ e.sequence }}</td><td>{{ e.type }}</td>
<td>{{ e.at }}</td><td><code>{{ e.hash }}</code></td></tr>{% endfor %}</table>
<h2>Inclusion proof</h2>
<p>Digest: tree size {{ digest.tree_size }}, root <code>{{ digest.root_hash }}</code>.</p>
{% if proof %}<p>The run's last event (position {{ head.position }}, hash <code>{{ head.hash }}</code>) is
leaf {{ proof.leaf_index }} of that tree; audit path (RFC 9162 2.1.3):</p>
<ol>{% for p in proof.audit_path %}<li><code>{{ p }}</code></li>{% endfor %}</ol>
{% else %}<p>The digest does not include the run's last event yet; ask again in a moment.</p>{% endif %}
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _env.from_string(_HTML)


def render_html(data: dict[str, Any]) -> str:
    return _template.render(**data)


def _text(value: Any) -> str:
    """A value as Paragraph markup: control characters out, XML escaped."""
    return escape(_CONTROL.sub("\ufffd", "" if value is None else str(value)))


def render_pdf(data: dict[str, Any]) -> bytes:
    """The same report as a PDF (ReportLab's platypus: paragraphs and wrapped tables)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    run = data["run"]
    story: list[Any] = []

    def heading(text: str) -> None:
        story.append(Paragraph(_text(text), styles["Heading2"]))

    def table(header: list[str], rows: list[list[Any]], widths: list[float] | None = None) -> None:
        head = [[Paragraph(f"<b>{_text(h)}</b>", small) for h in header]]
        body: list[list[Any]] = [[Paragraph(_text(v), small) for v in row] for row in rows]
        cells: list[list[Any]] = [*head, *(body or [[Paragraph("none", small)] + [""] * (len(header) - 1)])]
        grid = Table(cells, colWidths=widths, repeatRows=1)
        grid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ]
            )
        )
        story.append(grid)
        story.append(Spacer(1, 0.3 * cm))

    story.append(Paragraph(_text(f"Run report: {run['workflow']} v{run['version']}"), styles["Title"]))
    story.append(
        Paragraph(
            _text(
                f"A human-readable true copy of run {run['run_id']}, "
                f"produced at {data['digest']['at']} (UTC)."
            )
            + (
                " <b>Rows marked AMENDED were recorded after the run's first entry.</b>"
                if data["amended"]
                else ""
            ),
            styles["BodyText"],
        )
    )
    heading("Summary")
    keys = ["run_id", "workflow", "version", "definition_hash", "status", "triggered_by", "trigger_kind"]
    keys += ["created_at", "started_at", "completed_at", "error"]
    table(["field", "value"], [[k, run.get(k)] for k in keys], [4 * cm, 13 * cm])
    heading("Parameters")
    table(["name", "value"], [[k, v] for k, v in run["parameters"].items()], [4 * cm, 13 * cm])
    heading("Signatures")
    table(
        ["printed name", "role", "meaning", "signed (UTC)", "reason", "valid"],
        [
            [
                s["signer"],
                s["role"],
                s["meaning"],
                s["signed_at"],
                s["reason"] or "",
                "yes" if s["valid"] else "NO",
            ]
            for s in data["signatures"]
        ],
        [3.2 * cm, 1.8 * cm, 2.4 * cm, 4.2 * cm, 4 * cm, 1.4 * cm],
    )
    heading("Tasks")
    table(
        ["task", "status", "attempt", "exit", "command", "ended"],
        [
            [
                t["name"],
                a.get("status"),
                a.get("attempt"),
                a.get("exit_code"),
                a.get("command"),
                a.get("ended_at"),
            ]
            for t in data["tasks"]
            for a in (t["attempts"] or [{"status": t["status"]}])
        ],
        [2.5 * cm, 1.8 * cm, 1.3 * cm, 1.1 * cm, 6 * cm, 4.3 * cm],
    )
    heading("Files")
    table(
        ["role", "task", "path", "sha256", "size"],
        [[f["role"], f["task"], f["path"], f["sha256"], f["size"]] for f in data["files"]],
        [1.5 * cm, 2.2 * cm, 3.5 * cm, 8.3 * cm, 1.5 * cm],
    )
    heading("Audit trail")
    table(
        ["at (UTC)", "actor", "action", "to", "detail"],
        [
            [
                e["at"],
                e["actor"],
                e["action"] + (" AMENDED" if e["amended"] else ""),
                e["to_status"],
                e["detail"],
            ]
            for e in data["audit"]
        ],
        [3.8 * cm, 2.8 * cm, 2.6 * cm, 1.6 * cm, 6.2 * cm],
    )
    heading("Event hashes")
    table(
        ["position", "type", "at (UTC)", "hash"],
        [[e["position"], e["type"], e["at"], e["hash"]] for e in data["events"]],
        [1.6 * cm, 3.2 * cm, 3.8 * cm, 8.4 * cm],
    )
    heading("Inclusion proof")
    digest, proof, head = data["digest"], data["proof"], data["head"]
    story.append(
        Paragraph(_text(f"Digest: tree size {digest['tree_size']}, root {digest['root_hash']}."), small)
    )
    if proof is None:
        story.append(Paragraph("The digest does not include the run's last event yet.", small))
    else:
        story.append(
            Paragraph(
                _text(
                    f"Last event (position {head['position']}, hash {head['hash']}) is leaf "
                    f"{proof['leaf_index']}; audit path: {' '.join(proof['audit_path'])}"
                ),
                small,
            )
        )
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, title=f"Run report {run['run_id']}", leftMargin=2 * cm, rightMargin=2 * cm
    )
    document.build(story)
    return buffer.getvalue()
