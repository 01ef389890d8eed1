"""Workspaces in distributed mode: which org each belongs to, and what is left once fblink is gone.

Links, keys and reminders know only their ``team_id``; ``slack_teams`` records the workspace's
Enterprise Grid org (written at install time, and on the first request from a workspace of an
org-wide install), so its install is found from the team alone. When an install is gone
(uninstalled, or its token revoked) its tokens and the workspace's secrets are deleted at once,
its links leave the sweep and the probes (status ``gone``: neither selects it, and ``sync``
imports a Page that is still at Vonage again), and every other row of the workspace is deleted
after the retention period.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store.core import Store

# Every table of a workspace's own rows, deleted after retention (reminders before links).
TEAM_TABLES = (
    "reminders",
    "links",
    "audit",
    "team_settings",
    "team_admins",
    "page_leases",
    "oauth_states",
    "vonage_keys",
    "fb_pages",
    "fb_users",
)
# The secrets of a workspace, deleted the moment fblink is gone from it (their columns are NOT NULL).
SECRET_TABLES = ("vonage_keys", "fb_pages", "fb_users", "oauth_states")
TOKENS_NULL = (
    "bot_token_enc = NULL, bot_refresh_token_enc = NULL, bot_token_expires_at = NULL, user_token_enc = NULL,"
    " user_refresh_token_enc = NULL, user_token_expires_at = NULL, incoming_webhook_url_enc = NULL"
)


def _in(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class TeamRows:
    """``slack_teams`` and the gone workspaces' rows, on a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def note(self, team_id: str, enterprise_id: str | None, name: str | None = None, *, now: int) -> None:
        """Record a workspace's org (and name) on first sight; later only its name changes. A
        workspace's org is never changed by a request: a payload naming another org's workspace
        must not move that workspace (and its links) under this org's install."""
        await self.store.execute(
            "INSERT INTO slack_teams (team_id, enterprise_id, name, seen_at) VALUES (?, ?, ?, ?) ON CONFLICT (team_id)"
            " DO UPDATE SET name = excluded.name, seen_at = excluded.seen_at"
            " WHERE slack_teams.enterprise_id = excluded.enterprise_id AND excluded.name IS NOT NULL"
            " AND COALESCE(slack_teams.name, '') <> excluded.name",
            [team_id, enterprise_id, name, now],
        )

    async def members(self, team_ids: Sequence[str], enterprise_id: str) -> list[str]:
        """Those of ``team_ids`` recorded as workspaces of this org."""
        if not team_ids:
            return []
        rows = await self.store.select(
            f"SELECT team_id FROM slack_teams WHERE enterprise_id = ? AND team_id IN ({_in(team_ids)})",
            [enterprise_id, *team_ids],
        )
        return [r["team_id"] for r in rows]

    async def workspaces(self, enterprise_id: str) -> list[tuple[str, str | None]]:
        """(team_id, name) of the org's workspaces fblink serves, by name."""
        rows = await self.store.select(
            "SELECT team_id, name FROM slack_teams WHERE enterprise_id = ? AND gone_at IS NULL"
            " ORDER BY COALESCE(name, team_id), team_id",
            [enterprise_id],
        )
        return [(r["team_id"], r["name"]) for r in rows]

    async def get(self, team_id: str) -> tuple[str | None, int | None] | None:
        """(enterprise_id, gone_at) of a workspace fblink has seen, else None."""
        row = await self.store.one("SELECT enterprise_id, gone_at FROM slack_teams WHERE team_id = ?", [team_id])
        return (row["enterprise_id"], row["gone_at"]) if row else None

    async def of_enterprise(self, enterprise_id: str) -> list[str]:
        """The org's workspaces an org-wide install serves (not those with a live install of their own)."""
        rows = await self.store.select(
            "SELECT team_id FROM slack_teams WHERE enterprise_id = ? AND team_id NOT IN"
            " (SELECT team_id FROM slack_installations WHERE gone_at IS NULL AND team_id IS NOT NULL)",
            [enterprise_id],
        )
        return [r["team_id"] for r in rows]

    async def installed(
        self, team_id: str | None, enterprise_id: str | None, *, org: bool, now: int, name: str | None = None
    ) -> None:
        """An install was saved: its workspace (or every known workspace of its org) is served again,
        and starts clean: the links left from before it was gone are deleted (``sync`` imports
        those still at Vonage afresh), so no list shows them as deleted at Vonage."""
        if org and enterprise_id:
            back = "SELECT team_id FROM slack_teams WHERE enterprise_id = ? AND gone_at IS NOT NULL"
            await self._forget_links(back, [enterprise_id])
        elif team_id:
            await self._forget_links(
                "SELECT team_id FROM slack_teams WHERE team_id = ? AND gone_at IS NOT NULL", [team_id]
            )
        if org and enterprise_id:
            await self.store.execute("UPDATE slack_teams SET gone_at = NULL WHERE enterprise_id = ?", [enterprise_id])
        elif team_id:
            await self.store.execute(
                "INSERT INTO slack_teams (team_id, enterprise_id, name, seen_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (team_id) DO UPDATE SET enterprise_id = excluded.enterprise_id,"
                " name = COALESCE(excluded.name, slack_teams.name), seen_at = excluded.seen_at, gone_at = NULL",
                [team_id, enterprise_id, name, now],
            )

    async def _forget_links(self, teams_sql: str, params: list[object]) -> None:
        for table in ("reminders", "links"):
            await self.store.execute(f"DELETE FROM {table} WHERE team_id IN ({teams_sql})", params)

    async def gone_since(self, since: int) -> tuple[set[int], set[str]]:
        """Installs and workspaces marked gone at or after ``since`` (app clock): what every process's
        authorize cache drops, read once per re-check period for the whole cache."""
        rows = await self.store.select(
            "SELECT id, NULL AS team_id FROM slack_installations WHERE gone_at >= ?"
            " UNION ALL SELECT NULL, team_id FROM slack_teams WHERE gone_at >= ?",
            [since, since],
        )
        return {int(r["id"]) for r in rows if r["id"] is not None}, {str(r["team_id"]) for r in rows if r["team_id"]}

    # -- gone ---------------------------------------------------------------------------------
    async def retire_install(self, install_id: int, *, now: int) -> list[str] | None:
        """Mark an install gone and delete its tokens; then :meth:`retire` the workspaces it served
        (one, or every known workspace of an org-wide install). None when it was already gone."""
        async with self.store.transaction():
            row = await self.store.one(
                "SELECT enterprise_id, team_id, is_enterprise_install FROM slack_installations"
                " WHERE id = ? AND gone_at IS NULL" + self.store.dialect.row_lock,
                [install_id],
            )
            if row is None:
                return None
            await self.store.execute(
                f"UPDATE slack_installations SET gone_at = ?, updated_at = ?, {TOKENS_NULL} WHERE id = ?",
                [now, now, install_id],
            )
            if row["is_enterprise_install"] and row["enterprise_id"]:
                teams = await self.of_enterprise(row["enterprise_id"])
            else:
                teams = [row["team_id"]] if row["team_id"] else []
            await self.retire(teams, row["enterprise_id"], now=now)
        return teams

    async def retire(self, team_ids: Sequence[str], enterprise_id: str | None, *, now: int) -> None:
        """fblink is gone from these workspaces: their secrets are deleted, their links leave the
        sweep and the probes (``gone``, page tokens deleted), claimed reminders are dropped."""
        if not team_ids:
            return
        teams = list(team_ids)
        async with self.store.transaction():
            for team in teams:
                await self.store.execute(
                    "INSERT INTO slack_teams (team_id, enterprise_id, seen_at, gone_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (team_id) DO UPDATE SET gone_at = excluded.gone_at",
                    [team, enterprise_id, now, now],
                )
            for table in SECRET_TABLES:
                await self.store.execute(f"DELETE FROM {table} WHERE team_id IN ({_in(teams)})", teams)
            await self.store.execute(
                "UPDATE links SET status = 'gone', next_due_at = NULL, token_enc = NULL, updated_at = ?"
                f" WHERE team_id IN ({_in(teams)})",
                [now, *teams],
            )
            await self.store.execute(
                "UPDATE reminders SET status = 'dropped', last_error = 'uninstalled', finished_at = ?"
                f" WHERE status = 'claimed' AND team_id IN ({_in(teams)})",
                [now, *teams],
            )

    async def prune_gone(self, *, before: int, limit: int = 20) -> int:
        """Delete every row of up to ``limit`` workspaces gone before ``before`` (and installs gone
        then); how many workspaces. Call until it returns 0."""
        rows = await self.store.select(
            "SELECT team_id FROM slack_teams WHERE gone_at IS NOT NULL AND gone_at < ? ORDER BY gone_at LIMIT ?",
            [before, limit],
        )
        teams = [r["team_id"] for r in rows]
        async with self.store.transaction():
            for table in (*TEAM_TABLES, "slack_teams"):
                if teams:
                    await self.store.execute(f"DELETE FROM {table} WHERE team_id IN ({_in(teams)})", teams)
            await self.store.execute(
                "DELETE FROM slack_installations WHERE gone_at IS NOT NULL AND gone_at < ?", [before]
            )
        return len(teams)
