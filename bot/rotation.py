"""`fblink rotate-keys`: re-encrypt every stored secret with the newest FBLINK_SECRET_KEY.

Safe while the bot runs: rows are read outside any transaction, re-encrypted off the
write lock, and written back in short batches (one BEGIN IMMEDIATE each) with a
compare-and-swap on the old ciphertext, so a row another process changed meanwhile is
never overwritten; it is read again and rotated on its own. Encrypted columns are found
by name (``*_enc``: fb_users.token_enc, fb_pages.token_enc, vonage_keys.secret_enc,
links.token_enc, and any added later), so a new migration needs no change here.
A row no listed key can decrypt is reported by its ids, never its contents, and skipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.crypto import CryptoError, Vault

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


def encrypted_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(table, column) for every ``*_enc`` column, in a stable order."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    found = []
    for table in tables:
        for col in conn.execute(f"PRAGMA table_info({_quote(table)})"):
            if str(col[1]).endswith("_enc"):
                found.append((table, str(col[1])))
    return found


def _pk_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    cols = sorted((r[5], r[1]) for r in conn.execute(f"PRAGMA table_info({_quote(table)})") if r[5])
    return [name for _, name in cols]


class _Column:
    """One encrypted column: batched reads, CAS writes, ids for the report."""

    def __init__(self, conn: sqlite3.Connection, vault: Vault, table: str, column: str) -> None:
        self.conn, self.vault = conn, vault
        self.report = ColumnReport(table, column)
        t, c = _quote(table), _quote(column)
        pks = _pk_columns(conn, table)
        ids = ", ".join(_quote(p) for p in pks) if pks else "rowid"
        self.id_names = pks or ["rowid"]
        self.sql_batch = f"SELECT rowid, {c}, {ids} FROM {t} WHERE rowid > ? AND {c} IS NOT NULL ORDER BY rowid LIMIT ?"
        self.sql_one = f"SELECT {c} FROM {t} WHERE rowid = ?"
        self.sql_cas = f"UPDATE {t} SET {c} = ? WHERE rowid = ? AND {c} = ?"

    def ident(self, row: tuple[Any, ...]) -> str:
        return (
            f"{self.report.table}(" + ", ".join(f"{n}={v}" for n, v in zip(self.id_names, row[2:], strict=False)) + ")"
        )

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

    def _write(self, updates: list[tuple[str, int, str]]) -> list[int]:
        """One short write transaction; the rowids whose ciphertext changed since we read it."""
        lost = []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for new, rowid, old in updates:
                if self.conn.execute(self.sql_cas, (new, rowid, old)).rowcount != 1:
                    lost.append(rowid)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.report.rewritten += len(updates) - len(lost)
        return lost

    def _retry(self, rowid: int, ident: str) -> None:
        """A concurrent writer won the race: take its value and rotate that (if it needs it)."""
        for _ in range(RETRIES):
            row = self.conn.execute(self.sql_one, (rowid,)).fetchone()
            if row is None or row[0] is None:
                return  # deleted or cleared meanwhile: nothing to rotate
            new = self._new_value(row[0], ident)
            if new is None or not self._write([(new, rowid, row[0])]):
                return
        self.report.busy.append(ident)

    def run(self, batch: int) -> ColumnReport:
        last = 0
        while True:
            rows = self.conn.execute(self.sql_batch, (last, batch)).fetchall()
            if not rows:
                return self.report
            last = rows[-1][0]
            updates, idents = [], {}
            for row in rows:
                ident = self.ident(row)
                new = self._new_value(row[1], ident)
                if new is not None:
                    updates.append((new, row[0], row[1]))
                    idents[row[0]] = ident
            if updates:
                for rowid in self._write(updates):
                    self._retry(rowid, idents[rowid])


def open_connection(path: str) -> sqlite3.Connection:
    """A connection of its own (autocommit; waits for the bot's short write locks)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def rotate_keys(
    conn: sqlite3.Connection, vault: Vault, *, batch: int = 500, progress: Callable[[ColumnReport], None] | None = None
) -> list[ColumnReport]:
    """Re-encrypt every encrypted column with the newest key; one report per column."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    reports = []
    for table, column in encrypted_columns(conn):
        report = _Column(conn, vault, table, column).run(batch)
        reports.append(report)
        if progress is not None:
            progress(report)
    return reports
