"""docker-compose.yml parses and every runledger command it names exists in the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, dict[str, object]]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(document["services"])


def test_compose_file_has_postgres_and_the_three_runledger_processes() -> None:
    found = services()
    assert {"postgres", "api", "worker", "projections"} <= set(found)
    for name in ("api", "worker", "projections"):
        env = found[name]["environment"]
        assert isinstance(env, dict)
        assert str(env["RUNLEDGER_DATABASE_URL"]).startswith("postgresql://")


@pytest.mark.parametrize("name", ["api", "worker", "projections"])
def test_every_command_in_the_compose_file_parses_with_the_real_cli(name: str) -> None:
    command = services()[name]["command"]
    assert isinstance(command, list) and command[0] == "runledger"
    args = build_parser().parse_args(command[1:])
    assert callable(args.handler)


def test_the_image_the_services_build_installs_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile
    for package in ("ledger", "projections", "api"):
        assert f"COPY {package}" in dockerfile
