"""One settings class for every entry point, read from ``RUNLEDGER_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./.runledger/ledger.db"
DEFAULT_CONTAINER_RUN_FLAGS = "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNLEDGER_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    #: Content-addressed file store; defaults to ``files/`` next to the SQLite database (or
    #: ``./.runledger/files`` with PostgreSQL).
    files_dir: Path | None = None
    #: Where secrets (the first admin token, the Ed25519 key) live; defaults like files_dir.
    data_dir: Path | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"
    lease_seconds: float = Field(default=30.0, gt=0, le=60.0)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    pool_size: int = Field(default=8, ge=1)
    lock_timeout_seconds: int = Field(default=5, ge=1)
    #: PostgreSQL: how long a request or loop waits for a pooled connection (or a new one)
    #: before it gives up: while the database is away, requests get 503 and loops report down
    #: after this long.
    pool_timeout_seconds: int = Field(default=10, ge=1)
    #: Aggregates (runs, workflows) the write side keeps in memory; 0 turns the cache off.
    aggregate_cache_size: int = Field(default=1000, ge=0)
    runs_dir: Path | None = None
    #: The TCP port ``runledger serve`` listens on unless ``--port`` says otherwise.
    port: int = Field(default=8000, ge=0, le=65535)
    #: ``podman`` or ``docker`` (a name on PATH or a path) for tasks that name an ``image``;
    #: unset: podman if installed, else docker.
    container_runtime: str | None = None
    #: Extra flags for every ``<runtime> run`` (split like a shell would, never run by one).
    #: The default fits hosts where crun cannot drive hybrid cgroups and the default ulimits
    #: cannot be set inside a container.
    container_run_flags: str = DEFAULT_CONTAINER_RUN_FLAGS
    #: Run tasks as this user (name or uid) when the server runs as root: tasks then cannot
    #: read the data directory's secrets (README, "What a task can see").
    task_user: str | None = None
    #: Names of further server environment variables a task may see (comma-separated); the
    #: server's own ``RUNLEDGER_*`` variables are never passed on.
    task_env_allow: str = ""
    #: Refuse cancel, replay, resume, labels, holds and expunge without a ``reason`` (SPEC 10).
    require_reason: bool = False
    #: How long ``serve``'s projection runner gathers new events before it applies them as one
    #: batch (SQLite: its poll interval; PostgreSQL: how long it lingers after a notification).
    #: Each batch costs each view a transaction, so at a few events a second a longer wait
    #: is less CPU per event; listings lag by about this much more.
    projection_batch_ms: int = Field(default=100, ge=1, le=5000)
    #: Days a finished run is kept when its definition sets no ``retention`` (SPEC section
    #: 11); unset: kept forever.
    retention_days: float | None = Field(default=None, gt=0)
    #: Seconds between the projection runner's retention passes (0: none).
    retention_interval_seconds: float = Field(default=3600.0, ge=0)
    #: Runs a retention pass expunges per write (one save, one reference count, one key
    #: DELETE, one erased-files INSERT each); what it holds in memory is about one page.
    retention_page_runs: int = Field(default=500, ge=1, le=10_000)
    #: Keep a finished run's working directory instead of removing it once its outputs are stored.
    keep_run_dirs: bool = False
    #: The web UI's session cookies: the key that signs them (every server process of one
    #: ledger must share it; when unset, a random key in ``<data dir>/ui-session-key``) and how
    #: many hours a sign-in lasts.
    ui_session_key: str | None = None
    ui_session_hours: float = Field(default=8.0, gt=0, le=24 * 30)

    @property
    def task_env_names(self) -> list[str]:
        names = [n.strip() for n in self.task_env_allow.split(",") if n.strip()]
        return [n for n in names if not n.upper().startswith("RUNLEDGER_")]

    @property
    def database(self) -> DatabaseConfig:
        return parse_database_url(self.database_url)

    @property
    def state_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        db = self.database
        if db.sqlite_path is not None and db.sqlite_path != ":memory:":
            return Path(db.sqlite_path).resolve().parent
        return Path(".runledger").resolve()

    @property
    def file_store_dir(self) -> Path:
        return self.files_dir if self.files_dir is not None else self.state_dir / "files"

    @property
    def run_work_dir(self) -> Path:
        return self.runs_dir if self.runs_dir is not None else self.state_dir / "runs"


@dataclass(frozen=True)
class DatabaseConfig:
    kind: Literal["sqlite", "postgres"]
    sqlite_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = "postgres"
    schema: str = ""


class InvalidDatabaseURL(ValueError):
    pass


def parse_database_url(url: str) -> DatabaseConfig:
    """``sqlite:///path/ledger.db`` or ``postgresql://user:pw@host:port/db[?schema=name]``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise InvalidDatabaseURL(f"no database file in {url!r}")
        return DatabaseConfig(kind="sqlite", sqlite_path=path)
    parts = urlsplit(url)
    if parts.scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        query = parse_qs(parts.query)
        schema = query.get("schema", [""])[0]
        if schema and not schema.replace("_", "").isalnum():
            raise InvalidDatabaseURL(f"invalid schema name {schema!r}")
        return DatabaseConfig(
            kind="postgres",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
            schema=schema,
        )
    raise InvalidDatabaseURL(
        f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host:port/db"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
