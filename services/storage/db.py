"""The database: SQLite over aiosqlite (the embedded default) or PostgreSQL over asyncpg.

Both speak the same SQL, written once in the repositories with ``?`` placeholders, and run the
same migrations. ``services.storage.connect.open_database`` picks one from ``DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from services.storage.migrations import MIGRATIONS

log = logging.getLogger(__name__)

Row = Any  # aiosqlite.Row or asyncpg.Record: both read by name (``row["id"]``) and ``dict(row)``
Params = Sequence[Any]
Dialect = Literal["sqlite", "postgres"]


# What ``Transaction.lock`` holds.
LOCK_CREDITS = 1  # a user's credits, while a hold is checked and written
LOCK_TURNS = 2  # a story's shots, while one takes its turn at the provider
LOCK_SENDS = 3  # Telegram's send budget, while a send takes its tokens


class Transaction(ABC):
    """Statements inside an open transaction."""

    dialect: Dialect

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abstractmethod
    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT into a table with an ``id``; the new id, or 0 on a conflict."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a query, or None."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query."""

    @abstractmethod
    async def lock(self, scope: int, key: int) -> None:
        """Hold ``key`` of ``scope`` (a user's credits, a story's turns) until the transaction
        ends, against every other process."""


class Database(ABC):
    """What the repositories need of a database, whichever it is."""

    dialect: Dialect

    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect."""

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abstractmethod
    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT into a table with an ``id``; the new id, or 0 on a conflict."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a query, or None."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction: committed when the block ends, rolled back if it raises."""

    async def notify(self, channel: str) -> None:
        """Tell the other processes on this database that ``channel`` has news (a hint only:
        they still find the work by polling). One process on a file: nobody to tell."""
        return None

    async def listen(self, channel: str, callback: Callable[[], object]) -> None:
        """Call ``callback`` whenever another process notifies ``channel``."""
        return None

    async def executemany(self, sql: str, params: Iterable[Params]) -> None:
        """One statement for many parameter sets, in one transaction."""
        async with self.transaction() as tx:
            for p in params:
                await tx.execute(sql, p)

    async def schema_version(self) -> int:
        """The highest migration applied."""
        row = await self.fetchone("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    async def _migrate(self, translate: Callable[[str], str] = str) -> None:
        """Apply the migrations not applied yet, each in its own transaction."""
        async with self.transaction() as tx:
            await tx.execute(
                translate(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL "
                    "DEFAULT CURRENT_TIMESTAMP)"
                )
            )
        current = await self.schema_version()
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            async with self.transaction() as tx:
                for statement in statements:
                    await tx.execute(translate(statement))
                await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            log.info("database migrated to version %d", version)


class SqliteDatabase(Database):
    """A single aiosqlite connection shared by the process.

    Every statement runs under one asyncio lock: the connection is shared by concurrent
    coroutines, and without the lock one coroutine's statement could land inside another's
    transaction. Cross-process safety comes from SQLite itself (WAL + busy timeout) and from
    compare-and-set updates in the repositories.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the file (creating folders), switch to WAL and apply pending migrations."""
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        self._conn = conn
        await self._migrate()

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        async with self._lock:
            cursor = await self.conn.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; return the new row id, or 0 if nothing was inserted (a conflict)."""
        async with self._lock:
            cursor = await self.conn.execute(sql, params)
            rowid = cursor.lastrowid if cursor.rowcount == 1 else 0
            await cursor.close()
            return int(rowid or 0)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a query, or None."""
        async with self._lock:
            cursor = await self.conn.execute(sql, params)
            row = await cursor.fetchone()
            await cursor.close()
            return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query."""
        async with self._lock:
            cursor = await self.conn.execute(sql, params)
            rows = await cursor.fetchall()
            await cursor.close()
            return list(rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolled back if the block raises."""
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTransaction(self.conn)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")


class SqliteTransaction(Transaction):
    """Statements inside an open transaction (the lock is already held)."""

    dialect: Dialect = "sqlite"

    async def lock(self, scope: int, key: int) -> None:
        """Nothing to do: a write transaction (BEGIN IMMEDIATE) locks the whole database."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        cursor = await self._conn.execute(sql, params)
        count = cursor.rowcount
        await cursor.close()
        return count

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; return the new row id, or 0 if nothing was inserted (a conflict)."""
        cursor = await self._conn.execute(sql, params)
        rowid = cursor.lastrowid if cursor.rowcount == 1 else 0
        await cursor.close()
        return int(rowid or 0)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of a query, or None."""
        cursor = await self._conn.execute(sql, params)
        row = await cursor.fetchone()
        await cursor.close()
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of a query."""
        cursor = await self._conn.execute(sql, params)
        rows = await cursor.fetchall()
        await cursor.close()
        return list(rows)
