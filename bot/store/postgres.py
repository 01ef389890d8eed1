"""The PostgreSQL engine: psycopg 3 and its async connection pool.

psycopg rather than asyncpg because it works behind transaction-mode PgBouncer (how managed
PostgreSQL is usually fronted): set ``FBLINK_DB_PREPARED_STATEMENTS=false`` there, unless
PgBouncer is 1.21+ with ``max_prepared_statements`` on. Connections run in autocommit;
:meth:`PostgresEngine.transaction` opens a real one and hands its connection, through a
context variable, to every statement the same task runs inside it.

The clock: leases and claims are written and compared with the server's ``now()``, so a
process whose clock is minutes off neither takes over a live lease nor re-claims a live
reminder. A test or demo clock shifts it by its declared offset (0 for the wall clock).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from bot.store.engine import Dialect, EncryptedColumn, Engine, Params, Row, StoreError
from bot.store.migrations_pg import STEPS

DIALECT = Dialect(
    now="(floor(extract(epoch from now()))::bigint + ?::bigint)",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    row_lock=" FOR UPDATE",
    nocase_fmt="lower({})",
    same_fmt="{a} IS NOT DISTINCT FROM {b}",
)
MIGRATIONS_TABLE = "fblink_migrations"

Conn = AsyncConnection[DictRow]
_tx: contextvars.ContextVar[tuple[object, Conn] | None] = contextvars.ContextVar("fblink_pg_tx", default=None)


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "postgresql://…"
    host, db, user = (str(params.get(k, "")) for k in ("host", "dbname", "user"))
    return f"postgresql://{user + '@' if user else ''}{host}/{db}"


def conninfo(url: str, *, connect_timeout: float, statement_timeout: float) -> str:
    """The URL plus fblink's timeouts (a statement timeout the URL already sets is kept)."""
    params = conninfo_to_dict(url)
    options = str(params.get("options") or "")
    if "statement_timeout" not in options and statement_timeout > 0:
        options = (options + f" -c statement_timeout={int(statement_timeout * 1000)}").strip()
    extra: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout)), "application_name": "fblink"}
    if options:
        extra["options"] = options
    return make_conninfo(url, **extra)


class PostgresEngine(Engine):
    """A pool of autocommit connections; one checked out per statement or transaction."""

    name = "postgresql"
    dialect = DIALECT

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        prepared_statements: bool = True,
    ) -> None:
        self.url = redact_url(url)
        self.connect_timeout = connect_timeout
        self._sql_cache: dict[str, str] = {}
        self._conninfo = conninfo(url, connect_timeout=connect_timeout, statement_timeout=statement_timeout)
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "prepare_threshold": 5 if prepared_statements else None,
            },
            open=False,
            timeout=connect_timeout,
            name="fblink",
        )

    @staticmethod
    def _params(params: Params) -> Params:
        """PostgreSQL's text cannot hold NUL, which SQLite stores: a NUL that arrives in a Slack payload
        is kept as U+FFFD instead of failing the write (the one difference a user could see)."""
        if any(isinstance(p, str) and "\x00" in p for p in params):
            return [p.replace("\x00", "\ufffd") if isinstance(p, str) else p for p in params]
        return params

    def _sql(self, sql: str) -> str:
        """``?`` placeholders (the Store's) to psycopg's ``%s``; a literal ``%`` is escaped."""
        out = self._sql_cache.get(sql)
        if out is None:
            out = self._sql_cache[sql] = sql.replace("%", "%%").replace("?", "%s")
        return out

    async def connect(self) -> None:
        """One connection first, so a wrong host or password is reported as the server said it
        (libpq's messages carry no password), rather than as a pool that never filled."""
        try:
            conn = await AsyncConnection.connect(self._conninfo)
        except Exception as exc:
            said = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise StoreError(f"cannot open the database at {self.url}: {said}") from None
        await conn.close()
        await self.pool.open(wait=True, timeout=self.connect_timeout)

    async def close(self) -> None:
        await self.pool.close()

    def _joined(self) -> Conn | None:
        current = _tx.get()
        return current[1] if current is not None and current[0] is self else None

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        conn = self._joined()
        if conn is not None:
            cur = await conn.execute(self._sql(sql), self._params(params))
            return list(await cur.fetchall()) if cur.description else []
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._sql(sql), self._params(params))
            return list(await cur.fetchall()) if cur.description else []

    async def execute(self, sql: str, params: Params = ()) -> int:
        conn = self._joined()
        if conn is not None:
            return (await conn.execute(self._sql(sql), self._params(params))).rowcount
        async with self.pool.connection() as conn:
            return (await conn.execute(self._sql(sql), self._params(params))).rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._joined() is not None:
            yield
            return
        async with self.pool.connection() as conn, conn.transaction():
            token = _tx.set((self, conn))
            try:
                yield
            finally:
                _tx.reset(token)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            token = _tx.set((self, conn))
            try:
                yield
            finally:
                _tx.reset(token)

    async def reset_sequences(self) -> None:
        for r in await self.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'"
        ):
            table, column = str(r["table_name"]), str(r["column_name"])
            await self.execute(
                f'SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1,'
                " false)",
                [table, column],
            )

    def now_param(self, now: int, shift: int) -> int:
        return shift

    async def _applied(self, conn: Conn) -> set[str]:
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", [MIGRATIONS_TABLE])
        present = await cur.fetchone()
        if not present or not present["present"]:
            return set()
        cur = await conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")
        return {r["name"] for r in await cur.fetchall()}

    async def migrate(self) -> list[str]:
        done = []
        async with self.pool.connection() as conn, conn.transaction():
            # One migrator per schema at a time; the lock ends with the transaction.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('fblink.migrate.' || current_schema()))")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}"
                " (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            applied = await self._applied(conn)
            for name, ddl in STEPS:
                if name in applied:
                    continue
                await conn.execute(ddl.encode())  # several statements: the simple query protocol
                await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", [name])
                done.append(name)
        return done

    async def pending(self) -> list[str]:
        async with self.pool.connection() as conn:
            applied = await self._applied(conn)
        return [name for name, _ in STEPS if name not in applied]

    async def tables(self) -> list[str]:
        rows = await self.fetch(
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name != ? AND table_name NOT LIKE '%marker' ORDER BY table_name",
            [MIGRATIONS_TABLE],
        )
        return [str(r["name"]) for r in rows]

    async def encrypted_columns(self) -> list[EncryptedColumn]:
        keys = await self.fetch(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name"
            " AND k.table_schema = c.table_schema AND k.table_name = c.table_name"
            " WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema()"
            " ORDER BY k.table_name, k.ordinal_position"
        )
        pks: dict[str, list[str]] = {}
        for r in keys:
            pks.setdefault(str(r["table_name"]), []).append(str(r["column_name"]))
        cols = await self.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND column_name LIKE '%\\_enc' ORDER BY table_name, ordinal_position"
        )
        tables = set(await self.tables())
        return [
            EncryptedColumn(str(r["table_name"]), str(r["column_name"]), tuple(pks.get(str(r["table_name"]), ())))
            for r in cols
            if r["table_name"] in tables
        ]
