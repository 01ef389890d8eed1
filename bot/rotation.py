"""`fblink rotate-keys`: re-encrypt every stored secret with the newest FBLINK_SECRET_KEY.

Safe while the bot runs, on either engine: rows are read outside any transaction (paged
by primary key), re-encrypted off the write lock, and written back in short batches (one
write transaction each) with a compare-and-swap on the old ciphertext, so a row another
process changed meanwhile is never overwritten; it is read again and rotated on its own.
Encrypted columns are found by name (``*_enc``: fb_users.token_enc, fb_pages.token_enc,
vonage_keys.secret_enc, links.token_enc, and any added later), so a new migration needs
no change here. A row no listed key can decrypt is reported by its ids, never its
contents, and skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.crypto import CryptoError, Vault
from bot.store import Engine
from bot.store.engine import EncryptedColumn

RETRIES = 5  # re-reads of a row that keeps changing under us before giving up on it


@dataclass
class ColumnReport:
    """What rotation did to one encrypted column."""

    table: str
    column: str
    rewritten: int = 0
    current: int = 0  # already under the newest key (written since, or rotated before)
    busy: list[str] = field(default_factory=list)  # kept changing under us: run again
    undecryptable: list[str] = field(default_factory=list)  # row ids only

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"

    def line(self) -> str:
        text = (
            f"{self.name}: {self.rewritten} rewritten, {self.current} already current, "
            f"{len(self.undecryptable)} undecryptable"
        )
        if self.undecryptable:
            text += " (" + "; ".join(self.undecryptable[:50]) + (" ..." if len(self.undecryptable) > 50 else "") + ")"
        if self.busy:
            text += f", {len(self.busy)} changing too often, run again ({'; '.join(self.busy[:20])})"
        return text


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Column:
    """One encrypted column: batched reads by primary key, CAS writes, ids for the report."""

    def __init__(self, engine: Engine, vault: Vault, col: EncryptedColumn) -> None:
        if not col.key:
            raise ValueError(f"{col.table} has no primary key: its rows cannot be rotated safely")
        self.engine, self.vault = engine, vault
        self.report = ColumnReport(col.table, col.column)
        self.key = list(col.key)
        t, c = _quote(col.table), _quote(col.column)
        keys = ", ".join(_quote(k) for k in self.key)
        where_key = " AND ".join(f"{_quote(k)} = ?" for k in self.key)
        marks = ", ".join("?" for _ in self.key)
        self.sql_first = f"SELECT {keys}, {c} AS value FROM {t} WHERE {c} IS NOT NULL ORDER BY {keys} LIMIT ?"
        self.sql_batch = (
            f"SELECT {keys}, {c} AS value FROM {t} WHERE ({keys}) > ({marks}) AND {c} IS NOT NULL"
            f" ORDER BY {keys} LIMIT ?"
        )
        self.sql_one = f"SELECT {c} AS value FROM {t} WHERE {where_key}"
        self.sql_cas = f"UPDATE {t} SET {c} = ? WHERE {where_key} AND {c} = ?"

    def ident(self, key: list[Any]) -> str:
        return f"{self.report.table}(" + ", ".join(f"{n}={v}" for n, v in zip(self.key, key, strict=True)) + ")"

    def _new_value(self, ciphertext: str, ident: str) -> str | None:
        """The rotated ciphertext, or None when the row needs no write (current or undecryptable)."""
        if self.vault.is_current(ciphertext):
            self.report.current += 1
            return None
        try:
            return self.vault.rotate(ciphertext)
        except CryptoError:
            self.report.undecryptable.append(ident)
            return None

    async def _write(self, updates: list[tuple[str, list[Any], str]]) -> list[int]:
        """One short write transaction; the positions (in ``updates``) whose ciphertext changed since read."""
        lost = []
        async with self.engine.transaction():
            for i, (new, key, old) in enumerate(updates):
                if await self.engine.execute(self.sql_cas, [new, *key, old]) != 1:
                    lost.append(i)
        self.report.rewritten += len(updates) - len(lost)
        return lost

    async def _retry(self, key: list[Any], ident: str) -> None:
        """A concurrent writer won the race: take its value and rotate that (if it needs it)."""
        for _ in range(RETRIES):
            row = await self.engine.one(self.sql_one, key)
            if row is None or row["value"] is None:
                return  # deleted or cleared meanwhile: nothing to rotate
            new = self._new_value(row["value"], ident)
            if new is None or not await self._write([(new, key, row["value"])]):
                return
        self.report.busy.append(ident)

    async def run(self, batch: int) -> ColumnReport:
        last: list[Any] | None = None
        while True:
            if last is None:
                rows = await self.engine.fetch(self.sql_first, [batch])
            else:
                rows = await self.engine.fetch(self.sql_batch, [*last, batch])
            if not rows:
                return self.report
            last = [rows[-1][k] for k in self.key]
            updates: list[tuple[str, list[Any], str]] = []
            idents: list[str] = []
            for row in rows:
                key = [row[k] for k in self.key]
                ident = self.ident(key)
                new = self._new_value(row["value"], ident)
                if new is not None:
                    updates.append((new, key, row["value"]))
                    idents.append(ident)
            if updates:
                for i in await self._write(updates):
                    await self._retry(updates[i][1], idents[i])


async def rotate_keys(
    engine: Engine, vault: Vault, *, batch: int = 500, progress: Callable[[ColumnReport], None] | None = None
) -> list[ColumnReport]:
    """Re-encrypt every encrypted column with the newest key; one report per column."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    reports = []
    for col in await engine.encrypted_columns():
        report = await _Column(engine, vault, col).run(batch)
        reports.append(report)
        if progress is not None:
            progress(report)
    return reports
