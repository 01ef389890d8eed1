"""Database chores for operators: ``fblink migrate``, ``fblink copy-db`` and ``fblink rotate-keys``.

Each opens its own engine from the configured database (or the ones it is given), does one
job and closes it; none needs the bot to be stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.crypto import CryptoError, Vault
from bot.rotation import ColumnReport, rotate_keys
from bot.store import Engine, StoreError

BATCH = 1000  # rows per copy step
FIRST = ("links",)  # copied before the tables whose rows point at them (reminders -> links)


class CopyRefused(StoreError):
    """copy-db will not run: the target holds data, or a schema is not current."""


async def schema_problem(engine: Engine) -> str | None:
    """Why ``serve`` must not start on this database (None when it may): pending migrations."""
    await engine.connect()
    try:
        pending = await engine.pending()
    finally:
        await engine.close()
    if pending:
        return (
            f"the database at {engine.url} is behind this version of fblink ({len(pending)} migration(s) pending:"
            f" {', '.join(pending)}); run `fblink migrate`, then start again"
        )
    return None


async def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations; the names applied (empty when the schema was current)."""
    await engine.connect()
    try:
        return await engine.migrate()
    finally:
        await engine.close()


async def rotate(
    engine: Engine, vault: Vault, *, batch: int, progress: Callable[[ColumnReport], None]
) -> list[ColumnReport]:
    await engine.connect()
    try:
        if pending := await engine.pending():
            raise CopyRefused(f"the database at {engine.url} needs `fblink migrate` first ({', '.join(pending)})")
        return await rotate_keys(engine, vault, batch=batch, progress=progress)
    finally:
        await engine.close()


@dataclass
class CopyReport:
    """Rows copied per table, and the encrypted values that did not decrypt after the copy."""

    rows: dict[str, int] = field(default_factory=dict)
    undecryptable: list[str] = field(default_factory=list)  # table.column(key) only, never a value

    @property
    def ok(self) -> bool:
        return not self.undecryptable


def _order(tables: list[str]) -> list[str]:
    return [t for t in FIRST if t in tables] + [t for t in tables if t not in FIRST]


async def copy_db(
    source: Engine, target: Engine, vault: Vault, *, progress: Callable[[str], None] = lambda _: None
) -> CopyReport:
    """Copy every fblink row from ``source`` into an empty, freshly migrated ``target``; then
    check row counts table by table and that every encrypted value decrypts.

    The source is read in one snapshot (a running bot keeps writing meanwhile: rows it writes
    after the snapshot are not copied, so stop it, or run copy-db again on a fresh target,
    before switching over).
    """
    report = CopyReport()
    await source.connect()
    await target.connect()
    try:
        if pending := await source.pending():
            raise CopyRefused(f"the source at {source.url} needs `fblink migrate` first ({', '.join(pending)})")
        await target.migrate()
        tables = _order(await source.tables())
        for table in await target.tables():
            if await target.one(f'SELECT 1 AS x FROM "{table}" LIMIT 1'):
                raise CopyRefused(f"the target at {target.url} is not empty ({table} has rows): copy into an empty one")
        async with source.snapshot():
            for table in tables:
                rows = await source.fetch(f'SELECT * FROM "{table}"')
                report.rows[table] = len(rows)
                if rows:
                    cols = list(rows[0])
                    names = ", ".join(f'"{c}"' for c in cols)
                    marks = ", ".join("?" for _ in cols)
                    sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
                    for start in range(0, len(rows), BATCH):
                        async with target.transaction():
                            for row in rows[start : start + BATCH]:
                                await target.execute(sql, [row[c] for c in cols])
                progress(f"{table}: {len(rows)} row(s)")
        await target.reset_sequences()
        for table, n in report.rows.items():
            counted = await target.one(f'SELECT COUNT(*) AS n FROM "{table}"')
            copied = int(counted["n"]) if counted else 0
            if copied != n:
                raise StoreError(f"{table}: {n} row(s) read but {copied} in the target")
        report.undecryptable = await _check_decrypts(target, vault)
        return report
    finally:
        await source.close()
        await target.close()


async def _check_decrypts(engine: Engine, vault: Vault) -> list[str]:
    bad = []
    for col in await engine.encrypted_columns():
        keys = ", ".join(f'"{k}"' for k in col.key)
        rows = await engine.fetch(
            f'SELECT {keys}, "{col.column}" AS value FROM "{col.table}" WHERE "{col.column}" IS NOT NULL'
        )
        for row in rows:
            try:
                vault.decrypt(row["value"])
            except CryptoError:
                ident: dict[str, Any] = {k: row[k] for k in col.key}
                bad.append(f"{col.table}.{col.column}(" + ", ".join(f"{k}={v}" for k, v in ident.items()) + ")")
    return bad
