"""Bearer tokens and roles.

Only the SHA-256 of a token is stored, in a small ``runledger_tokens`` table in the ledger's own
database (in the configured schema on PostgreSQL), through the ledger's datastore connection.
Every request looks its token up again, so a revocation takes effect at once.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ledger.domain.workspace import WORKSPACE_PATTERN
from ledger.hashing import format_timestamp
from ledger.settings import DatabaseConfig

Role = Literal["auditor", "operator", "admin", "worker"]
ROLES: tuple[Role, ...] = ("auditor", "operator", "admin", "worker")
#: Roles that include each required role (each of auditor < operator < admin includes the one
#: before; worker tokens may only claim and report; admin may do everything).
GRANTED_BY: dict[Role, frozenset[str]] = {
    "auditor": frozenset({"auditor", "operator", "admin"}),
    "operator": frozenset({"operator", "admin"}),
    "admin": frozenset({"admin"}),
    "worker": frozenset({"worker", "admin"}),
}
TOKEN_PREFIX = "rl_"


#: A token of every workspace (SPEC 9); every token issued before workspaces is one.
ALL_WORKSPACES = "*"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    #: The token's id: what identifies a worker (names are free text and may repeat).
    token_id: str = ""
    #: The workspaces the token covers, or ``("*",)`` for all of them.
    workspaces: tuple[str, ...] = (ALL_WORKSPACES,)

    def has(self, required: Role) -> bool:
        return self.role in GRANTED_BY[required]

    @property
    def every_workspace(self) -> bool:
        return ALL_WORKSPACES in self.workspaces

    def covers(self, workspace: str) -> bool:
        return self.every_workspace or workspace in self.workspaces


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str
    created_at: str
    revoked_at: str | None
    workspaces: tuple[str, ...] = (ALL_WORKSPACES,)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenStore:
    """The token table, on the ledger's datastore (SQLite or PostgreSQL)."""

    def __init__(self, datastore: Any, db: DatabaseConfig) -> None:
        self.datastore = datastore
        self.postgres = db.kind == "postgres"
        schema = db.schema or "public"
        self.table = f'"{schema}".runledger_tokens' if self.postgres else "runledger_tokens"
        self.mark = "%s" if self.postgres else "?"
        self._create_table()

    def _sql(self, text: str) -> str:
        return text.replace("{t}", self.table).replace("?", self.mark)

    def _create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                    "role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, "
                    "revoked_at TEXT)"
                )
            )
        self._add_workspaces_column()

    def _add_workspaces_column(self) -> None:
        """SPEC 9: the token's workspaces (comma-separated names, or ``*``), added to a table
        made before them; every existing token covers every workspace."""
        add = f"ALTER TABLE {self.table} ADD COLUMN workspaces TEXT NOT NULL DEFAULT '*'"
        with self.datastore.transaction(commit=True) as cursor:
            if self.postgres:
                cursor.execute(add.replace("ADD COLUMN", "ADD COLUMN IF NOT EXISTS"))
                return
            cursor.execute(f"PRAGMA table_info({self.table})")
            if any(row["name"] == "workspaces" for row in cursor.fetchall()):
                return
            try:
                cursor.execute(add)
            except Exception as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise

    def create(
        self, *, name: str, role: str, workspaces: Sequence[str] = (ALL_WORKSPACES,)
    ) -> tuple[TokenInfo, str]:
        """A new token: its record and the secret itself (shown once, never stored).
        ``workspaces``: the names it covers, or ``*`` (the caller checks they exist)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        if not name or len(name) > 100:
            raise ValueError("a token name is 1 to 100 characters")
        scope = _workspaces(workspaces)
        token = new_token()
        info = TokenInfo(str(uuid.uuid4()), name, role, format_timestamp(datetime.now(UTC)), None, scope)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO {t} (id, name, role, token_hash, created_at, workspaces) "
                    "VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (info.id, info.name, info.role, hash_token(token), info.created_at, ",".join(scope)),
            )
        return info, token

    def _read(self, text: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of one read-only statement, run on its own: one round trip on
        PostgreSQL (the pool's connections are in autocommit) where a transaction around it
        took three (BEGIN, the statement, ROLLBACK): 475 against 200 us per request's token
        check."""
        if self.postgres:
            with self.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(self._sql(text), params, prepare=True)
                return list(cursor.fetchall())
        with self.datastore.get_connection(commit=False) as conn:
            cursor = conn.cursor()
            cursor.execute(self._sql(text), params)
            return list(cursor.fetchall())

    def authenticate(self, token: str) -> Principal | None:
        rows = self._read(
            "SELECT id, name, role, workspaces FROM {t} WHERE token_hash = ? AND revoked_at IS NULL",
            (hash_token(token),),
        )
        if not rows:
            return None
        row = rows[0]
        return Principal(
            name=str(row["name"]),
            role=row["role"],
            token_id=str(row["id"]),
            workspaces=tuple(str(row["workspaces"]).split(",")),
        )

    def principal_by_id(self, token_id: str) -> Principal | None:
        """The live token with this id (the web UI's session names its token by id)."""
        rows = self._read(
            "SELECT id, name, role, workspaces FROM {t} WHERE id = ? AND revoked_at IS NULL", (token_id,)
        )
        if not rows:
            return None
        return Principal(
            name=str(rows[0]["name"]),
            role=rows[0]["role"],
            token_id=str(rows[0]["id"]),
            workspaces=tuple(str(rows[0]["workspaces"]).split(",")),  # SPEC 9: the session's scope
        )

    def list(self) -> list[TokenInfo]:
        rows = self._read(
            "SELECT id, name, role, created_at, revoked_at, workspaces FROM {t} ORDER BY created_at, id"
        )
        return [
            TokenInfo(
                str(r["id"]),
                str(r["name"]),
                str(r["role"]),
                str(r["created_at"]),
                r["revoked_at"],
                tuple(str(r["workspaces"]).split(",")),
            )
            for r in rows
        ]

    def revoke(self, id_or_name: str) -> int:
        """Revoke the token with this id, or every live token with this name; how many."""
        at = format_timestamp(datetime.now(UTC))
        live = "(id = ? OR name = ?) AND revoked_at IS NULL"
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                self._sql(f"SELECT COUNT(*) AS n FROM {{t}} WHERE {live}"), (id_or_name, id_or_name)
            )
            row = cursor.fetchone()
            cursor.execute(
                self._sql(f"UPDATE {{t}} SET revoked_at = ? WHERE {live}"), (at, id_or_name, id_or_name)
            )
        return int(row["n"]) if row is not None else 0

    def live_ids(self, id_or_name: str) -> builtins.list[str]:
        """The ids of the live tokens :meth:`revoke` would revoke (to record each revocation)."""
        rows = self._read(
            "SELECT id FROM {t} WHERE (id = ? OR name = ?) AND revoked_at IS NULL ORDER BY id",
            (id_or_name, id_or_name),
        )
        return [str(r["id"]) for r in rows]

    def count(self) -> int:
        """How many tokens were ever created (revoked ones included)."""
        rows = self._read("SELECT COUNT(*) AS n FROM {t}")
        return int(rows[0]["n"]) if rows else 0


def _workspaces(names: Sequence[str]) -> tuple[str, ...]:
    """A token's workspaces: ``("*",)``, or distinct workspace names in the given order."""
    scope = tuple(dict.fromkeys(names))
    if not scope:
        raise ValueError("a token covers at least one workspace (or '*')")
    if ALL_WORKSPACES in scope:
        if len(scope) > 1:
            raise ValueError("'*' (every workspace) cannot be combined with workspace names")
        return scope
    for name in scope:
        if not re.fullmatch(WORKSPACE_PATTERN, name):
            raise ValueError(f"a workspace name is 1 to 63 of a-z, 0-9, '_', '.', '-'; got {name!r}")
    return scope


def ensure_admin_token(store: TokenStore, state_dir: Path) -> str | None:
    """On a ledger without any token, create an admin token, write it to
    ``<state_dir>/admin-token`` (mode 0600) and return it; otherwise None."""
    if store.count() > 0:
        return None
    _, token = store.create(name="admin", role="admin")
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def record_issued(ledger: Any, info: TokenInfo, token: str, *, by: str) -> None:
    """``Token.Issued`` for a token just created (its hash prefix, never the token; SPEC 10)."""
    ledger.record_token_issued(
        token_id=info.id, name=info.name, role=info.role, token_hash=hash_token(token), by=by
    )
