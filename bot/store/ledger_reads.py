"""The reminder ledger's reads and retention: what a re-link updates, what a digest lists, pruning.

Kept apart from the claim path (:mod:`bot.store.ledger`), which writes the rows these read.
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.crypto import Vault
from bot.store.engine import Dialect, Params, Row


class _Store(Protocol):
    vault: Vault

    @property
    def dialect(self) -> Dialect: ...

    async def select(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def one(self, sql: str, params: Params = ()) -> Row | None: ...

    async def execute(self, sql: str, params: Params = ()) -> int: ...


class LedgerReads:
    """Mixed into :class:`bot.store.ledger.ReminderLedger` (``store.reminders``)."""

    store: _Store

    async def prune(self, *, before: int, keep_audit: int = 10, limit: int = 500) -> tuple[int, int]:
        """Retention, one small batch: audit rows older than ``before`` (each Page keeps its
        ``keep_audit`` latest, so `history` still shows them) and finished reminder rows."""
        same_page = self.store.dialect.same("b.page_id", "a.page_id")
        audit = await self.store.execute(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit a WHERE a.at < ? AND a.id < COALESCE(("
            f" SELECT b.id FROM audit b WHERE b.team_id = a.team_id AND {same_page}"
            " ORDER BY b.id DESC LIMIT 1 OFFSET ?), -1) LIMIT ?)",
            [before, keep_audit - 1, limit],
        )
        reminders = await self.store.execute(
            "DELETE FROM reminders WHERE id IN (SELECT id FROM reminders WHERE status != 'claimed'"
            " AND finished_at < ? LIMIT ?)",
            [before, limit],
        )
        return audit, reminders

    async def posted_for_period(self, link_id: int, period: int) -> list[dict[str, Any]]:
        """Messages posted for a link period; ``shared`` > 1 marks a digest covering other Pages too."""
        return await self.store.select(
            "SELECT id, kind, threshold, channel_id, message_ts,"
            " (SELECT COUNT(*) FROM reminders r2 WHERE r2.message_ts = reminders.message_ts"
            "  AND r2.channel_id = reminders.channel_id) AS shared"
            " FROM reminders WHERE link_id = ? AND period = ? AND status = 'posted' AND message_ts IS NOT NULL",
            [link_id, period],
        )

    async def reminders_in_message(self, channel_id: str, message_ts: str) -> list[dict[str, Any]]:
        return await self.store.select(
            "SELECT link_id, kind, period, threshold FROM reminders WHERE channel_id = ? AND message_ts = ? ORDER BY id",
            [channel_id, message_ts],
        )

    async def page_token_of(self, team_id: str, user_id: str | None, page_id: str) -> str | None:
        """The Page token we hold from the linker's login (None after they logged out)."""
        if not user_id:
            return None
        row = await self.store.one(
            "SELECT token_enc FROM fb_pages WHERE team_id = ? AND user_id = ? AND page_id = ?",
            [team_id, user_id, page_id],
        )
        return self.store.vault.decrypt(row["token_enc"]) if row else None
