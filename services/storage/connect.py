"""The database ``DATABASE_URL`` names: SQLite (``sqlite:///path``) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from services.storage.db import Database, SqliteDatabase
from services.storage.postgres import PostgresDatabase


def open_database(url: str) -> Database:
    """The database ``url`` names (not yet opened)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    return SqliteDatabase(Path(url.removeprefix("sqlite:///")))
