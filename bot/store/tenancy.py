"""Per-workspace settings of distributed mode (a part of the Store): the fblink admins a
workspace added with `/fblink admins add` (and its installer), and its default Vonage key.

Every query names the workspace, so one workspace's admins or keys are never another's.
"""

from __future__ import annotations

from bot.store.engine import Params, Row


class TeamRows:
    """The workspace's admins and default key; the Store supplies the statements."""

    async def select(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    async def add_team_admin(self, team_id: str, user_id: str, *, by: str, now: int) -> bool:
        """False when they already were one (the first addition is kept)."""
        return (
            await self.execute(
                "INSERT INTO team_admins (team_id, user_id, added_by, added_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (team_id, user_id) DO NOTHING",
                [team_id, user_id, by, now],
            )
            > 0
        )

    async def remove_team_admin(self, team_id: str, user_id: str) -> bool:
        return await self.execute("DELETE FROM team_admins WHERE team_id = ? AND user_id = ?", [team_id, user_id]) > 0

    async def team_admins(self, team_id: str) -> list[Row]:
        """The workspace's added admins, first added first."""
        return await self.select(
            "SELECT user_id, added_by, added_at FROM team_admins WHERE team_id = ? ORDER BY added_at, user_id",
            [team_id],
        )

    async def is_team_admin(self, team_id: str, user_id: str) -> bool:
        row = await self.one("SELECT 1 AS one FROM team_admins WHERE team_id = ? AND user_id = ?", [team_id, user_id])
        return row is not None

    async def default_key(self, team_id: str) -> str | None:
        """The workspace's first added Vonage key: what a link without a key uses."""
        row = await self.one(
            "SELECT api_key FROM vonage_keys WHERE team_id = ? ORDER BY added_at, api_key LIMIT 1", [team_id]
        )
        return str(row["api_key"]) if row else None
