"""Validation messages a person reads: an unknown key in a request body is named with the
nearest key the body allows (``unknown key 'paramters' (did you mean 'parameters'?)``)
instead of pydantic's "Extra inputs are not permitted"."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from ledger.domain.definition import unknown_key_message


def validation_message(request: Request, error: dict[str, Any]) -> str:
    """The message for one of a request's validation errors."""
    loc: Sequence[Any] = error.get("loc", ())
    if error.get("type") != "extra_forbidden" or len(loc) < 2 or loc[0] != "body":
        return str(error.get("msg", ""))
    model = _model_at(_body_model(request), loc[1:-1])
    allowed = list(model.model_fields) if model is not None else []
    return unknown_key_message(str(loc[-1]), allowed)


def _body_model(request: Request) -> type[BaseModel] | None:
    field = getattr(request.scope.get("route"), "body_field", None)
    return _model_in(getattr(getattr(field, "field_info", None), "annotation", None))


def _model_at(model: type[BaseModel] | None, path: Sequence[Any]) -> type[BaseModel] | None:
    """The model a path of keys and indexes leads to inside ``model`` (None if it leaves
    the models, e.g. into a free-form JSON object)."""
    for part in path:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # an index into a list, or a key of a dict: the same model below
        model = _model_in(field.annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``X | None``, ``list[X]`` or ``Annotated[X, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
