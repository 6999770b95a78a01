"""Workflow definitions (SPEC section 5): parsing, validation and parameter resolution.

Past 300 lines on purpose: the whole definition format of SPEC section 5 (keys, types,
templates, container options) is validated in one place, so one file says what a definition
may hold.
"""

from __future__ import annotations

import difflib
import math
import posixpath
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger.domain.inputs import check_value, load_yaml
from ledger.errors import InvalidDefinition, InvalidParameters
from ledger.hashing import is_sha256_hex

NAME_PATTERN = r"^[a-z0-9_.-]{1,100}$"
TASK_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
TEMPLATE_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
TEMPLATE_REF_RE = re.compile(
    r"^(?:params\.(?P<param>[A-Za-z_][A-Za-z0-9_]*)"
    r"|tasks\.(?P<task>[A-Za-z0-9_.-]+)\.outputs\.(?P<output>[A-Za-z0-9_.-]+))$"
)

#: RFC 8785 hashes numbers as IEEE doubles: larger integers would not round-trip.
MAX_SAFE_INT = 2**53 - 1

ParamType = Literal["string", "integer", "number", "boolean", "file"]


def check_relative_path(path: str) -> str:
    """Refuse paths that are empty, absolute or leave the run directory."""
    if not path or "\x00" in path:
        raise ValueError(f"invalid path {path!r}")
    if path.startswith("/") or path.startswith("\\") or re.match(r"^[A-Za-z]:", path):
        raise ValueError(f"path {path!r} must be relative to the run directory")
    normalised = posixpath.normpath(path.replace("\\", "/"))
    if normalised == ".." or normalised.startswith("../") or normalised == ".":
        raise ValueError(f"path {path!r} leaves the run directory")
    return path


RelativePath = Annotated[str, Field(min_length=1, max_length=1024)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Strict):
    type: ParamType
    required: bool = False
    default: Any = None
    description: str | None = None
    #: Stored sealed under the run's key (SPEC section 11); erased when the run is expunged.
    sensitive: bool = False

    @model_validator(mode="after")
    def _default_matches_type(self) -> ParamSpec:
        if self.default is not None:
            problem = type_problem(self.type, self.default)
            if problem:
                raise ValueError(f"default {problem}")
        return self

    @model_validator(mode="after")
    def _sensitive_has_no_plain_copy(self) -> ParamSpec:
        # The definition is stored in the clear: a default there would be the secret itself.
        if self.sensitive and self.default is not None:
            raise ValueError("a sensitive parameter cannot have a default")
        if self.sensitive and self.type == "file":
            raise ValueError("a file parameter cannot be sensitive (its sha256 is no secret)")
        return self


class Retention(_Strict):
    """How long a workflow's finished runs are kept (SPEC section 11); unset: kept forever."""

    days: Annotated[float, Field(gt=0)] | None = None
    keep_failed_days: Annotated[float, Field(gt=0)] | None = None
    keep_last: Annotated[int, Field(ge=0)] | None = None


#: ``name:tag`` or ``name@sha256:<64 hex>`` (a registry host and path may lead the name).
IMAGE_PATTERN = (
    r"^[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._-]*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)


class Resources(_Strict):
    """Limits a container task runs under (``--cpus``, ``--memory``)."""

    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None
    memory_mb: Annotated[int, Field(ge=6, le=1024 * 1024)] | None = None


#: What a signature means (SPEC section 10; 21 CFR 11.50(a)(3)).
SIGNATURE_MEANINGS = ("reviewed", "approved", "rejected", "responsibility", "authorship")


class Approval(_Strict):
    """An approval gate (SPEC 10): the run waits at the task until ``signatures`` signatures
    with ``meaning``, from distinct principals of at least ``role``, are recorded."""

    meaning: Literal["reviewed", "approved", "responsibility", "authorship"] = "approved"
    role: Literal["auditor", "operator", "admin"] = "operator"
    signatures: Annotated[int, Field(ge=1, le=20)] = 1


class TaskSpec(_Strict):
    name: Annotated[str, Field(pattern=TASK_NAME_PATTERN)]
    #: Empty only on an approval gate, which runs nothing.
    command: list[Annotated[str, Field(max_length=65536)]] = []
    approval: Approval | None = None
    depends_on: list[str] = []
    inputs: list[RelativePath] = []
    outputs: list[RelativePath] = []
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay_seconds: Annotated[float, Field(ge=0)] | None = None
    on_failure: Literal["fail", "continue"] = "fail"
    image: Annotated[str, Field(max_length=512, pattern=IMAGE_PATTERN)] | None = None
    network: Literal["none", "host"] = "none"
    resources: Resources | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _a_command_or_an_approval(self) -> TaskSpec:
        if self.approval is None and not self.command:
            raise ValueError(f"task {self.name!r}: a task needs a command (or an approval, for a gate)")
        if self.approval is not None and (self.command or self.image or self.inputs or self.outputs):
            raise ValueError(
                f"task {self.name!r}: an approval gate runs nothing: no command, image, inputs or outputs"
            )
        return self

    @model_validator(mode="after")
    def _paths_stay_inside(self) -> TaskSpec:
        for path in [*self.inputs, *self.outputs]:
            check_relative_path(path)
        return self

    @model_validator(mode="after")
    def _container_keys_need_an_image(self) -> TaskSpec:
        if self.image is None and ("network" in self.model_fields_set or self.resources is not None):
            raise ValueError(
                f"task {self.name!r}: network and resources apply to container tasks (image) only"
            )
        return self


class WorkflowDefinition(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    params: dict[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)], ParamSpec] = {}
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=100)] = 0
    retry_delay_seconds: Annotated[float, Field(ge=0)] = 1.0
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]
    retention: Retention | None = None

    @model_validator(mode="after")
    def _tasks_form_a_dag(self) -> WorkflowDefinition:
        names = [t.name for t in self.tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate task names: {', '.join(duplicates)}")
        known = set(names)
        for task in self.tasks:
            for dep in task.depends_on:
                if dep not in known:
                    raise ValueError(f"task {task.name!r} depends on unknown task {dep!r}")
                if dep == task.name:
                    raise ValueError(f"task {task.name!r} depends on itself")
        topological_order(self)  # raises on a cycle
        for task in self.tasks:
            for index, arg in enumerate(task.command):
                unbalanced = unbalanced_template(arg)
                if unbalanced is not None:
                    offset, what = unbalanced
                    raise ValueError(
                        f"task {task.name!r}: command[{index}] character {offset}: {what} in {arg!r}"
                    )
                for found in TEMPLATE_RE.finditer(arg):
                    self._check_template(task, found[1], f"command[{index}] character {found.start()}")
        return self

    def _check_template(self, task: TaskSpec, ref: str, where: str) -> None:
        match = TEMPLATE_REF_RE.match(ref)
        if match is None:
            raise ValueError(f"task {task.name!r}: {where}: unknown template {{{{ {ref} }}}}")
        if match["param"] and match["param"] not in self.params:
            raise ValueError(f"task {task.name!r}: unknown parameter {match['param']!r}")
        if match["task"] and match["task"] not in upstream_of(self, task.name):
            raise ValueError(
                f"task {task.name!r} uses outputs of {match['task']!r}, which is not upstream of it"
            )

    @property
    def sensitive_params(self) -> frozenset[str]:
        return frozenset(name for name, spec in self.params.items() if spec.sensitive)

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)


def unbalanced_template(arg: str) -> tuple[int, str] | None:
    """The character offset and kind of the first ``{{`` left open in one argv item, or None.
    (A lone ``}}`` is left alone: Python or awk code in an argv item may hold one.)"""
    offset = 0
    while True:
        opening = arg.find("{{", offset)
        if opening == -1:
            return None
        end = arg.find("}}", opening + 2)
        inner = arg.find("{{", opening + 2)
        if end == -1 or (inner != -1 and inner < end):
            return opening, "'{{' is never closed with '}}'"
        offset = end + 2


def topological_order(definition: WorkflowDefinition) -> list[str]:
    """Task names in an order where every task follows its dependencies (Kahn's algorithm)."""
    remaining = {t.name: set(t.depends_on) for t in definition.tasks}
    order: list[str] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            raise ValueError(f"depends_on forms a cycle among: {', '.join(sorted(remaining))}")
        for name in ready:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def upstream_of(definition: WorkflowDefinition, task_name: str) -> set[str]:
    """Every task that ``task_name`` depends on, directly or transitively."""
    by_name = {t.name: t for t in definition.tasks}
    seen: set[str] = set()
    stack = list(by_name[task_name].depends_on)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(by_name[name].depends_on)
    return seen


def _format_validation_error(exc: ValidationError) -> list[dict[str, object]]:
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": _message(err), "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _message(err: Any) -> str:
    """pydantic's message, or for an unknown key one that names it and the nearest known key."""
    if err["type"] != "extra_forbidden" or not err["loc"]:
        return str(err["msg"])
    return unknown_key_message(str(err["loc"][-1]), _allowed_keys(err["loc"][:-1]))


def unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(sorted(allowed))})"
    return f"unknown key {key!r}{hint}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the definition allows where ``loc`` points (a path of keys and list indexes)."""
    model: type[BaseModel] = WorkflowDefinition
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if part == "params":
            model = ParamSpec
            parts = parts[1:]  # the parameter's name
        elif part == "tasks":
            model = TaskSpec
            parts = parts[1:]  # the task's index
    return list(model.model_fields)


def parse_definition(raw: object) -> WorkflowDefinition:
    """Validate a definition (already parsed from JSON or YAML)."""
    if not isinstance(raw, Mapping):
        raise InvalidDefinition("a workflow definition must be a mapping")
    try:
        return WorkflowDefinition.model_validate(dict(raw))
    except ValidationError as exc:
        errors = _format_validation_error(exc)
        summary = "; ".join(f"{e['loc'] or 'definition'}: {e['msg']}" for e in errors)
        raise InvalidDefinition(f"invalid workflow definition: {summary}", errors=errors) from None


def load_definition_text(text: str) -> dict[str, Any]:
    """Parse YAML (a superset of JSON) into the JSON object that gets hashed."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidDefinition(f"definition is not valid YAML or JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidDefinition("a workflow definition must be a mapping")
    check_value(raw, "definition")
    ensure_json_compatible(raw)
    return raw


def ensure_json_compatible(value: object, where: str = "definition") -> None:
    """YAML can express values JSON cannot (dates, non-string keys, NaN); refuse them."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidDefinition(f"{where}: key {key!r} is not a string")
            ensure_json_compatible(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            ensure_json_compatible(item, f"{where}[{index}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidDefinition(f"{where}: {value} is not a JSON number")
    elif value is not None and not isinstance(value, str | int | bool):
        raise InvalidDefinition(f"{where}: {type(value).__name__} values are not JSON")


def type_problem(param_type: str, value: object) -> str | None:
    """Why ``value`` is not a valid ``param_type``, or None when it is."""
    if param_type == "string":
        ok = isinstance(value, str)
    elif param_type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_SAFE_INT
    elif param_type == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
    elif param_type == "boolean":
        ok = isinstance(value, bool)
    elif param_type == "file":
        ok = is_sha256_hex(value)
        if not ok:
            return f"must be the sha256 of a stored file (64 lowercase hex), got {value!r}"
    else:  # pragma: no cover - ParamType is closed
        return f"unknown type {param_type}"
    return None if ok else f"must be of type {param_type}, got {value!r}"


def resolve_parameters(definition: WorkflowDefinition, supplied: Mapping[str, object]) -> dict[str, Any]:
    """Check supplied values against ``params`` and apply defaults."""
    errors: list[dict[str, object]] = []
    for name in supplied:
        if name not in definition.params:
            errors.append({"loc": f"parameters.{name}", "msg": "unknown parameter"})
    resolved: dict[str, Any] = {}
    for name, spec in definition.params.items():
        if name in supplied and supplied[name] is not None:
            value = supplied[name]
            problem = type_problem(spec.type, value)
            if problem:
                errors.append({"loc": f"parameters.{name}", "msg": problem})
                continue
            resolved[name] = value
        elif spec.default is not None:
            resolved[name] = spec.default
        elif spec.required:
            errors.append({"loc": f"parameters.{name}", "msg": "required parameter is missing"})
        else:
            resolved[name] = None
    if errors:
        summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
        raise InvalidParameters(f"parameters do not match the definition: {summary}", errors=errors)
    return resolved


def coerce_parameter_text(definition: WorkflowDefinition, name: str, text: str) -> object:
    """Turn a ``-p key=value`` string from the command line into the declared type."""
    spec = definition.params.get(name)
    if spec is None:
        return text
    try:
        if spec.type == "integer":
            return int(text)
        if spec.type == "number":
            return float(text)
    except ValueError:
        article = "an" if spec.type == "integer" else "a"
        raise InvalidParameters(f"parameter {name!r} must be {article} {spec.type}, got {text!r}") from None
    if spec.type == "boolean":
        lowered = text.lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise InvalidParameters(f"parameter {name!r} must be a boolean, got {text!r}")
    return text
