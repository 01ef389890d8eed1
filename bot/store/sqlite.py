"""The SQLite engine: the embedded default, through sqlite-utils.

Calls stay synchronous inside (a local SQLite call takes microseconds, and moving each to
a thread would cost more than it saves) behind the awaitable :class:`~bot.store.engine.Engine`
interface. A statement never yields to the event loop, so a transaction whose body awaits
only this engine cannot interleave with another task's statements; the lock makes that
hold even for a body that does yield.

The clock: one machine, one kernel clock. Every process on the file reads the same time,
so leases and claims compare the app clock's ``now`` (the wall clock in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlite_utils import Database

from bot.store import wal
from bot.store.engine import Dialect, EncryptedColumn, Engine, Params, Row
from bot.store.migrations import migrate, migrations, names, open_database

log = logging.getLogger(__name__)

DIALECT = Dialect(
    now="?",
    skip_locked="",
    row_lock="",
    nocase_fmt="{} COLLATE NOCASE",
    same_fmt="{a} IS {b}",
    greatest_fmt="max({a}, {b})",
)

_in_tx: contextvars.ContextVar[object | None] = contextvars.ContextVar("fblink_sqlite_tx", default=None)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteEngine(Engine):
    """One connection per process (WAL; ``BEGIN IMMEDIATE`` write transactions)."""

    name = "sqlite"
    dialect = DIALECT
    blocking = True

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = f"sqlite:{path}"
        self.db: Database = open_database(path)
        migrate(self.db, path)  # the embedded default keeps migrating itself at start, under a file lock
        self._lock = asyncio.Lock()
        self.checkpoints: asyncio.Task[None] | None = None  # the WAL checkpointer of a serving process

    def twin(self) -> SqliteEngine:
        return SqliteEngine(self.path)

    async def connect(self) -> None:
        return None

    async def serve(self) -> None:
        """WAL checkpoints move to a worker thread (see :mod:`bot.store.wal`)."""
        if self.checkpoints is None and self.path != ":memory:":
            wal.hand_over(self.db)
            self.checkpoints = asyncio.ensure_future(self._checkpoint_forever())

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(wal.EVERY)
            try:
                await asyncio.to_thread(wal.checkpoint, self.path)
            except Exception as exc:  # a locked or missing file: the next one tries again
                log.warning("WAL checkpoint failed: %s", type(exc).__name__)

    async def close(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.checkpoints
            self.checkpoints = None
            await asyncio.to_thread(wal.checkpoint, self.path)
        self.db.close()

    async def _outside(self) -> None:
        """A statement outside a transaction waits for one that is open (and suspended) to end."""
        if self._lock.locked() and _in_tx.get() is not self:
            async with self._lock:
                pass

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        await self._outside()
        cursor = self.db.conn.execute(sql, params)
        if cursor.description is None:
            return []
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    async def execute(self, sql: str, params: Params = ()) -> int:
        await self._outside()
        return self.db.conn.execute(sql, params).rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if _in_tx.get() is self:
            yield
            return
        async with self._lock:
            token = _in_tx.set(self)
            conn = self.db.conn
            conn.execute("BEGIN IMMEDIATE")  # the write lock up front: no upgrade deadlock
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                _in_tx.reset(token)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """A deferred read transaction: in WAL mode it sees one state and blocks no writer."""
        async with self._lock:
            token = _in_tx.set(self)
            self.db.conn.execute("BEGIN")
            try:
                yield
            finally:
                self.db.conn.execute("COMMIT")
                _in_tx.reset(token)

    def now_param(self, now: int, shift: int) -> int:
        return now

    async def migrate(self) -> list[str]:
        before = {m.name for m in migrations.pending(self.db)}
        migrate(self.db, self.path)
        return [name for name in names() if name in before]

    async def pending(self) -> list[str]:
        return [m.name for m in migrations.pending(self.db)]

    async def tables(self) -> list[str]:
        rows = await self.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE '%marker' ORDER BY name"
        )
        return [r["name"] for r in rows]

    async def encrypted_columns(self) -> list[EncryptedColumn]:
        found = []
        for table in await self.tables():
            info = await self.fetch(f"PRAGMA table_info({_quote(table)})")
            key = tuple(r["name"] for r in sorted((r for r in info if r["pk"]), key=lambda r: r["pk"]))
            for col in info:
                if str(col["name"]).endswith("_enc"):
                    found.append(EncryptedColumn(table, str(col["name"]), key))
        return found
