"""Workspaces (SPEC 9): every workflow and run belongs to exactly one.

A workspace other than ``default`` is created by an admin (``Workspace.Created`` on stream
``workspace:<name>``); ``default`` always exists without an event, and holds everything
written before workspaces (events without a ``workspace`` field read as ``default``).

Stream ids of ``default`` workflows are unchanged (``workflow:<name>``, ``definition:<hash>``,
the idempotency digest of ``<name>``), so old ledgers load as they are; another workspace's
are qualified by its name and a ``/`` (``workflow:<ws>/<name>``), which no workflow name or
definition hash holds, so no two workspaces share a stream.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ledger.domain.aggregate import ChainedAggregate, StreamCreated
from ledger.errors import InvalidRequest

DEFAULT_WORKSPACE = "default"
WORKSPACE_PATTERN = r"^[a-z0-9_.-]{1,63}$"
_NAME = re.compile(WORKSPACE_PATTERN)


def check_workspace_name(name: str) -> str:
    """``name`` if it is a workspace name (``[a-z0-9_.-]{1,63}``); InvalidRequest otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(f"a workspace name is 1 to 63 of a-z, 0-9, '_', '.', '-'; got {name!r}")
    return name


def workspace_stream(name: str) -> str:
    return f"workspace:{name}"


def scoped(workspace: str, name: str) -> str:
    """A workflow name (or definition hash) as its workspace's streams key it: unchanged in
    ``default``, ``<workspace>/<name>`` elsewhere."""
    return name if workspace == DEFAULT_WORKSPACE else f"{workspace}/{name}"


def workspace_of(data: dict[str, Any]) -> str:
    """The workspace a stored event's data names (``default`` for events written before)."""
    value = data.get("workspace")
    return value if isinstance(value, str) and value else DEFAULT_WORKSPACE


class Workspace(ChainedAggregate):
    """A named workspace; its one event records who created it."""

    def __init__(self, name: str, created_by: str) -> None:
        self.name = name
        self.created_by = created_by

    class Created(StreamCreated):
        name: str
        created_by: str

    @classmethod
    def create(cls, *, name: str, principal: str, at: datetime) -> Workspace:
        check_workspace_name(name)
        if name == DEFAULT_WORKSPACE:
            raise InvalidRequest("the workspace 'default' always exists")
        return cls.create_stream(
            cls.Created, stream=workspace_stream(name), at=at, name=name, created_by=principal
        )
