"""Workflow definitions (SPEC section 5) are validated before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.definition import (
    coerce_parameter_text,
    load_definition_text,
    parse_definition,
    resolve_parameters,
    topological_order,
)
from ledger.errors import InvalidDefinition, InvalidParameters


def definition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "research_pipeline",
        "params": {
            "query": {"type": "string", "required": True},
            "max_urls": {"type": "integer", "default": 50},
            "seed": {"type": "file", "required": False},
        },
        "tasks": [
            {
                "name": "discover",
                "command": ["python3", "-c", "print(1)", "{{ params.query }}"],
                "outputs": ["urls.json"],
            },
            {
                "name": "summarise",
                "depends_on": ["discover"],
                "command": ["wc", "-l", "{{ tasks.discover.outputs.count }}"],
                "inputs": ["urls.json"],
                "outputs": ["summary.txt"],
                "on_failure": "continue",
            },
        ],
    }
    base.update(overrides)
    return base


def test_the_spec_example_definition_is_accepted() -> None:
    parsed = parse_definition(definition())
    assert [t.name for t in parsed.tasks] == ["discover", "summarise"]


def test_yaml_is_parsed_to_the_same_object_as_json() -> None:
    text = "name: x\ntasks:\n  - name: a\n    command: [echo, hi]\n"
    assert load_definition_text(text) == {"name": "x", "tasks": [{"name": "a", "command": ["echo", "hi"]}]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "colour"),
        ({"name": "Bad Name!"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"tasks": [{"name": "a", "command": "echo hi"}]}, "command"),
        ({"tasks": [{"name": "a", "command": []}]}, "command"),
        ({"tasks": [{"name": "a", "command": ["x"], "depends_on": ["ghost"]}]}, "unknown task"),
        (
            {
                "tasks": [
                    {"name": "a", "command": ["x"], "depends_on": ["b"]},
                    {"name": "b", "command": ["x"], "depends_on": ["a"]},
                ]
            },
            "cycle",
        ),
        ({"tasks": [{"name": "a", "command": ["x"], "outputs": ["../escape"]}]}, "leaves"),
        ({"tasks": [{"name": "a", "command": ["x"], "inputs": ["/etc/passwd"]}]}, "relative"),
        ({"tasks": [{"name": "a", "command": ["x"], "shell": True}]}, "shell"),
        ({"tasks": [{"name": "a", "command": ["{{ params.nope }}"]}]}, "unknown parameter"),
        ({"tasks": [{"name": "a", "command": ["x"]}, {"name": "a", "command": ["y"]}]}, "duplicate"),
        ({"params": {"n": {"type": "integer", "default": "five"}}}, "default"),
        ({"params": {"n": {"type": "date"}}}, "type"),
        ({"tasks": [{"name": "a", "command": ["x"], "image": "busybox"}]}, "image"),
        ({"tasks": [{"name": "a", "command": ["x"], "image": "Bad Image:1"}]}, "image"),
        ({"tasks": [{"name": "a", "command": ["x"], "image": "x@sha256:abc"}]}, "image"),
        ({"tasks": [{"name": "a", "command": ["x"], "image": "x:1", "network": "bridge"}]}, "network"),
        ({"tasks": [{"name": "a", "command": ["x"], "network": "host"}]}, "container tasks"),
        ({"tasks": [{"name": "a", "command": ["x"], "resources": {"cpus": 1}}]}, "container tasks"),
        (
            {"tasks": [{"name": "a", "command": ["x"], "image": "x:1", "resources": {"memory_mb": 1}}]},
            "memory_mb",
        ),
        ({"tasks": [{"name": "a", "command": ["x"], "image": "x:1", "resources": {"gpus": 1}}]}, "gpus"),
    ],
)
def test_bad_definitions_are_refused_with_a_clear_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDefinition) as raised:
        parse_definition(definition(**change))
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "image",
    [
        "busybox:1.36",
        "localhost/rl-test:1",
        "registry.example.com:5000/team/tool:v1.2",
        f"x@sha256:{'a' * 64}",
    ],
)
def test_container_tasks_name_an_image_by_tag_or_digest_with_network_and_limits(image: str) -> None:
    task = {"name": "a", "command": ["x"], "image": image, "network": "host"}
    parsed = parse_definition(definition(tasks=[task | {"resources": {"cpus": 0.5, "memory_mb": 64}}]))
    spec = parsed.tasks[0]
    assert (spec.image, spec.network) == (image, "host")
    assert spec.resources is not None and (spec.resources.cpus, spec.resources.memory_mb) == (0.5, 64)
    assert parse_definition(definition(tasks=[{"name": "b", "command": ["x"]}])).tasks[0].network == "none"


def test_a_task_may_only_template_outputs_of_tasks_upstream_of_it() -> None:
    tasks = [
        {"name": "a", "command": ["{{ tasks.b.outputs.x }}"]},
        {"name": "b", "command": ["x"]},
    ]
    with pytest.raises(InvalidDefinition, match="not upstream"):
        parse_definition(definition(tasks=tasks))


def test_topological_order_puts_dependencies_first() -> None:
    parsed = parse_definition(
        definition(
            tasks=[
                {"name": "c", "command": ["x"], "depends_on": ["a", "b"]},
                {"name": "b", "command": ["x"], "depends_on": ["a"]},
                {"name": "a", "command": ["x"]},
            ]
        )
    )
    assert topological_order(parsed) == ["a", "b", "c"]


def test_parameters_get_defaults_and_types_are_checked() -> None:
    parsed = parse_definition(definition())
    assert resolve_parameters(parsed, {"query": "q"}) == {"query": "q", "max_urls": 50, "seed": None}
    for bad in (
        {"query": 1},
        {},
        {"query": "q", "max_urls": "5"},
        {"query": "q", "max_urls": True},
        {"query": "q", "unknown": 1},
        {"query": "q", "seed": "not-a-hash"},
        {"query": "q", "max_urls": 2**60},
    ):
        with pytest.raises(InvalidParameters):
            resolve_parameters(parsed, bad)


def test_command_line_values_are_coerced_to_the_declared_type() -> None:
    parsed = parse_definition(definition())
    assert coerce_parameter_text(parsed, "max_urls", "7") == 7
    with pytest.raises(InvalidParameters):
        coerce_parameter_text(parsed, "max_urls", "seven")


def test_yaml_values_json_cannot_express_are_refused() -> None:
    with pytest.raises(InvalidDefinition):
        load_definition_text("name: x\nwhen: 2026-01-01\ntasks: []\n")
    with pytest.raises(InvalidDefinition):
        load_definition_text("- just\n- a list\n")


def test_an_integer_the_command_line_cannot_read_is_named_with_an_article_that_fits() -> None:
    parsed = parse_definition(definition())
    with pytest.raises(InvalidParameters, match="must be an integer, got 'seven'"):
        coerce_parameter_text(parsed, "max_urls", "seven")


@pytest.mark.parametrize(
    ("where", "key", "message"),
    [
        ("params", "requird", "params.query.requird: unknown key 'requird' (did you mean 'required'?)"),
        ("tasks", "depend_on", "tasks.0.depend_on: unknown key 'depend_on' (did you mean 'depends_on'?)"),
        ("top", "descripton", "descripton: unknown key 'descripton' (did you mean 'description'?)"),
    ],
)
def test_an_unknown_key_is_named_with_the_nearest_known_key(where: str, key: str, message: str) -> None:
    raw = definition()
    if where == "params":
        raw["params"]["query"][key] = True
    elif where == "tasks":
        raw["tasks"][0][key] = []
    else:
        raw[key] = "x"
    with pytest.raises(InvalidDefinition) as refused:
        parse_definition(raw)
    assert message in refused.value.detail
    assert "Extra inputs are not permitted" not in refused.value.detail


@pytest.mark.parametrize(
    ("argument", "offset"),
    [("{{ params.query ", 0), ("--q={{ params.query", 4), ("{{ params.query }} and {{ params.query", 23)],
)
def test_a_template_left_open_is_refused_with_task_argv_index_and_offset(argument: str, offset: int) -> None:
    raw = definition()
    raw["tasks"][0]["command"] = ["echo", "ok", argument]
    with pytest.raises(InvalidDefinition) as refused:
        parse_definition(raw)
    assert f"task 'discover': command[2] character {offset}: '{{{{' is never closed" in refused.value.detail


def test_a_closing_brace_pair_alone_is_code_not_a_template() -> None:
    raw = definition()
    raw["tasks"][0]["command"] = ["python3", "-c", "print({'a': {'b': 1}})"]
    assert parse_definition(raw).tasks[0].command[2] == "print({'a': {'b': 1}})"
