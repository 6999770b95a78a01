"""The run report renders whatever a run holds: markup, NUL and odd characters are shown as
text in HTML (escaped) and PDF (ReportLab's markup escaped, control characters replaced)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from api.report import render_html, render_pdf

HOSTILE = "<b>bold</b> & <script>alert(1)</script>\x00\x07 \ud7ff \u2028 Zoë"


def report_data() -> dict[str, Any]:
    run = {
        "run_id": "r-1",
        "workflow": HOSTILE,
        "version": 1,
        "definition_hash": "0" * 64,
        "status": "success",
        "triggered_by": HOSTILE,
        "trigger_kind": "name",
        "created_at": "2026-12-03T10:00:00.000000Z",
        "started_at": None,
        "completed_at": None,
        "error": None,
        "replay_of": None,
        "resume_of": None,
        "parameters": {"q": HOSTILE, "n": {"nested": [1, 2]}},
    }
    signature = {
        "signer": "Dana <Quality> & Co",
        "role": "operator",
        "meaning": "approved",
        "reason": HOSTILE,
        "signed_at": "2026-12-03T10:01:02.123456Z",
        "key_fingerprint": "a" * 64,
        "valid": True,
        "problem": None,
    }
    audit = [
        {
            "at": "2026-12-03T10:00:00.000000Z",
            "actor": HOSTILE,
            "action": "triggered",
            "from_status": None,
            "to_status": "pending",
            "detail": {"x": HOSTILE},
            "amended": False,
        },
        {
            "at": "2026-12-03T10:05:00.000000Z",
            "actor": "ops",
            "action": "labelled",
            "from_status": None,
            "to_status": None,
            "detail": {},
            "amended": True,
        },
    ]
    return {
        "run": run,
        "tasks": [
            {
                "name": "t",
                "status": "success",
                "attempts": [
                    {
                        "attempt": 1,
                        "status": "success",
                        "exit_code": 0,
                        "command": [HOSTILE],
                        "started_at": None,
                        "ended_at": None,
                    }
                ],
            }
        ],
        "files": [{"role": "output", "task": "t", "path": HOSTILE, "sha256": "b" * 64, "size": 1}],
        "audit": audit,
        "signatures": [signature],
        "events": [{"position": 0, "sequence": 1, "type": "Run.Triggered", "at": "x", "hash": "c" * 64}],
        "head": {"position": 0, "hash": "c" * 64},
        "digest": {"tree_size": 1, "root_hash": "d" * 64, "at": "2026-12-03T10:06:00.000000Z"},
        "proof": {"leaf_index": 0, "tree_size": 1, "audit_path": []},
        "amended": True,
    }


def test_html_escapes_everything_and_marks_amended_entries() -> None:
    html = render_html(report_data())
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Dana &lt;Quality&gt; &amp; Co" in html
    assert "labelled (amended)" in html and "2026-12-03T10:01:02.123456Z" in html


def test_the_pdf_renders_hostile_text_and_shows_the_signature(tmp_path: Path) -> None:
    pdf = render_pdf(report_data())
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdftotext") is None:  # .ci/run installs it: in CI a missing one fails
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is required in CI")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = "".join(text.split())
    assert "Dana<Quality>&Co" in flat and "approved" in flat and "2026-12-03T10:01:02.123456Z" in flat
    assert "AMENDED" in text
