"""Helpers shared by the command modules: settings from ``--database-url``, opening the ledger."""

from __future__ import annotations

import argparse
import os

from ledger.settings import Settings, parse_database_url


def settings_from(args: argparse.Namespace) -> Settings:
    url = getattr(args, "database_url", None) or os.environ.get("RUNLEDGER_DATABASE_URL")
    settings = Settings(database_url=url) if url else Settings()
    parse_database_url(settings.database_url)  # raises ValueError -> exit 2
    return settings
