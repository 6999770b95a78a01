"""docs/ keeps in step with the code: every route in ``/openapi.json`` and every ``runledger``
command (with each of its options) is documented, and nothing documented is gone."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from api.app import create_app
from cli import build_parser
from ledger.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^\s`?]*)")
HEADING = re.compile(r"^### `runledger ([a-z -]+)`$", re.MULTILINE)


def documented_routes() -> set[tuple[str, str]]:
    text = "\n".join(page.read_text() for page in sorted(DOCS.glob("*.md")))
    return {(method, path) for method, path in ROUTE.findall(text)}


def served_routes(tmp_path: Path) -> set[tuple[str, str]]:
    spec = create_app(Settings(database_url=f"sqlite:///{tmp_path}/ledger.db")).openapi()
    return {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every leaf command (``runs list``, ``verify``) and its long options but ``--help``."""
    found: dict[str, list[str]] = {}
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        options = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
        return {" ".join(prefix): [o for o in options if o != "--help"]}
    for group in groups:
        for name, sub in group.choices.items():
            found |= commands(sub, (*prefix, name))
    return found


def sections(text: str) -> dict[str, str]:
    """``### `runledger NAME` `` heading -> the text up to the next heading."""
    marks = list(HEADING.finditer(text))
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return {m[1]: text[m.end() : end] for m, end in zip(marks, ends, strict=True)}


def test_every_route_in_the_openapi_document_is_documented_and_every_documented_one_exists(
    tmp_path: Path,
) -> None:
    served, documented = served_routes(tmp_path), documented_routes()
    assert sorted(served - documented) == [], "routes served but missing from docs/"
    assert sorted(documented - served) == [], "routes in docs/ that the server does not serve"


def test_every_cli_command_has_a_section_in_docs_cli_md_naming_each_of_its_options() -> None:
    documented = sections((DOCS / "cli.md").read_text())
    expected = commands(build_parser())
    assert sorted(set(expected) - set(documented)) == [], "commands missing from docs/cli.md"
    assert sorted(set(documented) - set(expected)) == [], "docs/cli.md documents commands that do not exist"
    missing = {
        name: [o for o in options if f"`{o}" not in documented[name]] for name, options in expected.items()
    }
    assert {name: options for name, options in missing.items() if options} == {}


def test_the_checks_see_a_missing_route_command_and_option() -> None:
    text = "### `runledger verify`\n`--digest FILE`\n### `runledger runs list`\nnothing\n"
    assert sections(text) == {"verify": "\n`--digest FILE`\n", "runs list": "\nnothing\n"}
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers().add_parser("runs").add_subparsers().add_parser("list")
    sub.add_argument("--limit")
    assert commands(parser) == {"runs list": ["--limit"]}
    assert ROUTE.findall("`GET /api/runs/{run_id}/logs?stream=stdout`") == [
        ("GET", "/api/runs/{run_id}/logs")
    ]


def test_the_readme_links_the_reference_and_no_longer_points_outside_the_repository() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    for page in (
        "docs/api.md",
        "docs/cli.md",
        "docs/definitions.md",
        "docs/guarantees.md",
        "docs/configuration.md",
    ):
        assert f"]({page})" in readme and (DOCS.parent / page).is_file()
    assert "../shared" not in readme and "SPEC.md" not in readme
