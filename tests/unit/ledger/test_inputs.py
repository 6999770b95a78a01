"""``ledger.domain.inputs``: the bounds every decoded JSON or YAML value must keep."""

from __future__ import annotations

import pytest
import yaml

from ledger.domain.definition import load_definition_text
from ledger.domain.inputs import MAX_DEPTH, InputRefused, check_value, load_yaml, loads_json
from ledger.errors import InvalidDefinition


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_nul_in_a_value_or_a_key_is_refused_with_where_it_was() -> None:
    with pytest.raises(InputRefused, match=r"body\.a\[1\]: NUL"):
        loads_json('{"a": ["ok", "x\\u0000"]}')
    with pytest.raises(InputRefused, match="a key"):
        check_value({"k\x00": 1})


def test_a_lone_surrogate_is_refused_in_json_and_in_decoded_values() -> None:
    with pytest.raises(ValueError):
        loads_json('{"a": "\\ud800"}')
    with pytest.raises(InputRefused, match="surrogate"):
        check_value({"a": "\ud800"})


def test_nesting_is_bounded_without_touching_the_stack() -> None:
    assert loads_json(nested(MAX_DEPTH)) is not None
    with pytest.raises(InputRefused, match="deeper than 64"):
        loads_json(nested(MAX_DEPTH + 1))
    with pytest.raises(InputRefused):
        loads_json(nested(100_000))


def test_yaml_refuses_aliases_anchors_and_deep_nesting() -> None:
    with pytest.raises(yaml.YAMLError, match="aliases and anchors"):
        load_yaml("a: &x [1]\nb: *x\n")
    with pytest.raises(yaml.YAMLError, match="deeper than 64"):
        load_yaml(nested(MAX_DEPTH + 1))
    assert load_yaml(nested(MAX_DEPTH)) == load_yaml(nested(MAX_DEPTH))
    assert load_yaml("a: [1, {b: c}]") == {"a": [1, {"b": "c"}]}


def test_a_definition_file_with_a_yaml_nul_escape_or_a_bomb_is_refused() -> None:
    with pytest.raises(InvalidDefinition, match="aliases"):
        load_definition_text("a: &a [x, x]\nb: [*a, *a]\n")
    with pytest.raises(InputRefused, match="NUL"):
        load_definition_text('name: n\ndescription: "a\\0b"\n')
