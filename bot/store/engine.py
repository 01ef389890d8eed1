"""The async engine the Store runs on: one interface, one module per SQL dialect.

The Store and the ledger write their SQL once, with ``?`` placeholders, in the subset that
SQLite and PostgreSQL share. What differs lives in each engine's :class:`Dialect` (and its
own module: :mod:`bot.store.sqlite`, :mod:`bot.store.postgres`), never as ``if dialect``
branches in the queries:

- ``now``: the clock leases and claims are compared with. SQLite runs on one machine, so
  the process's clock *is* the machine's; PostgreSQL may serve many machines, so there it
  is the server's ``now()``;
- ``skip_locked`` and ``row_lock``: how a claim batch avoids rows another process is
  claiming, and how a read-then-write holds its row (SQLite's ``BEGIN IMMEDIATE`` already
  serializes writers; PostgreSQL uses ``FOR UPDATE [SKIP LOCKED]``);
- ``nocase(col)`` and ``same(a, b)``: case-insensitive order and null-safe equality;
- ``greatest(a, b)``: the larger of two values (SQLite's two-argument ``max``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]
Params = Sequence[Any]


class StoreError(Exception):
    """The base of the store's errors."""


class SchemaError(StoreError):
    """The database's schema is not the one this version of fblink runs on."""


@dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ between engines."""

    now: str  # an expression with one ``?``: the lease/claim clock, in epoch seconds
    skip_locked: str  # appended to a claim batch's SELECT
    row_lock: str  # appended to a SELECT whose row the transaction then changes
    nocase_fmt: str  # ``{}`` is the column
    same_fmt: str  # ``{a}``, ``{b}``: null-safe equality
    greatest_fmt: str  # ``{a}``, ``{b}``: the larger of two values

    def nocase(self, column: str) -> str:
        return self.nocase_fmt.format(column)

    def same(self, a: str, b: str) -> str:
        return self.same_fmt.format(a=a, b=b)

    def greatest(self, a: str, b: str) -> str:
        return self.greatest_fmt.format(a=a, b=b)


@dataclass(frozen=True)
class EncryptedColumn:
    """A ``*_enc`` column and the primary key that names its rows (for ``fblink rotate-keys``)."""

    table: str
    column: str
    key: tuple[str, ...]


class Engine(abc.ABC):
    """Awaitable reads, writes and transactions on one database.

    A statement run inside :meth:`transaction` (in the same task) joins it; any other runs
    on its own (autocommit).
    """

    name: str
    dialect: Dialect
    url: str  # where it points, without credentials (for messages)
    blocking = False  # True when its calls run on the caller's thread (a long read is then moved off the loop)

    def twin(self) -> Engine:
        """Another engine on the same database, for a worker thread (blocking engines only)."""
        raise NotImplementedError(f"{self.name} needs no second engine for a thread")

    @abc.abstractmethod
    async def connect(self) -> None:
        """Make the connections ready (inside the running event loop)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def serve(self) -> None:
        """A long-running process starts the engine's own upkeep here (SQLite: WAL checkpoints)."""
        return None

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of a SELECT, or of a statement with RETURNING."""

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a write; how many rows it changed."""

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One write transaction; statements of this task inside it join it (nesting joins too)."""

    @abc.abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[None]:
        """A read-only transaction that sees one consistent state while writers go on (for copies)."""

    async def reset_sequences(self) -> None:
        """After rows were copied in with their ids: new rows get ids above them."""
        return None

    @abc.abstractmethod
    def now_param(self, now: int, shift: int) -> int:
        """The value for :attr:`Dialect.now`'s placeholder, given the app clock's ``now`` and its
        deliberate ``shift`` from real time (0 for the wall clock; tests and the demo move it)."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations (safe when several processes start together); their names."""

    @abc.abstractmethod
    async def pending(self) -> list[str]:
        """Migrations this version has that the database has not applied yet."""

    @abc.abstractmethod
    async def encrypted_columns(self) -> list[EncryptedColumn]:
        """Every ``*_enc`` column with its table's primary key, in a stable order."""

    @abc.abstractmethod
    async def tables(self) -> list[str]:
        """fblink's tables (not the engine's own bookkeeping), for copying and checks."""
