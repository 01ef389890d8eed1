"""Slack installations and install states: the rows behind distributed mode (a part of the store).

One row per install, keyed the way Slack keys them: ``(enterprise_id, team_id)`` for a
workspace (``enterprise_id`` NULL outside Enterprise Grid), ``(enterprise_id, NULL)`` for an
org-wide install. A unique index over ``(COALESCE(enterprise_id, ''), COALESCE(team_id, ''))``
keeps one per key on both engines, and every lookup uses those very expressions so the
index serves it. Tokens (and the incoming-webhook URL, a secret too) are kept only as
``*_enc`` columns, encrypted through the store's Vault, so ``fblink rotate-keys`` covers
them. Install states are stored as hashes, used once, and expire.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from bot.store.engine import Row
from bot.store.teams import TeamRows

if TYPE_CHECKING:
    from bot.store.core import Store

# Live installs only: a gone one (uninstalled or revoked) stays, tokenless, until retention.
KEY_WHERE = "gone_at IS NULL AND COALESCE(enterprise_id, '') = ? AND COALESCE(team_id, '') = ?"
SECRETS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token", "incoming_webhook_url")


@dataclass
class SlackInstall:
    """One installation, tokens in clear (only ever in memory)."""

    enterprise_id: str | None
    team_id: str | None  # None for an org-wide install
    is_enterprise_install: bool
    installed_at: int
    enterprise_name: str | None = None
    enterprise_url: str | None = None
    team_name: str | None = None
    app_id: str | None = None
    token_type: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: str = ""  # comma-separated, as Slack sends them
    bot_token: str | None = None
    bot_refresh_token: str | None = None
    bot_token_expires_at: int | None = None
    user_id: str | None = None  # the installer
    user_scopes: str = ""
    user_token: str | None = None
    user_refresh_token: str | None = None
    user_token_expires_at: int | None = None
    incoming_webhook_url: str | None = None
    incoming_webhook_channel: str | None = None
    incoming_webhook_channel_id: str | None = None
    incoming_webhook_configuration_url: str | None = None
    id: int | None = None  # the row's, once stored
    gone_at: int | None = None  # uninstalled or revoked (such a row is never served)

    @property
    def key(self) -> tuple[str, str]:
        return install_key(self.enterprise_id, self.team_id, org=self.is_enterprise_install)


def install_key(enterprise_id: str | None, team_id: str | None, *, org: bool = False) -> tuple[str, str]:
    """The unique index's values for an install: an org-wide install has no team."""
    return enterprise_id or "", "" if org else team_id or ""


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class InstallationRows:
    """Reads and writes of ``slack_installations`` and ``slack_install_states`` on a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- rows <-> installs ---------------------------------------------------------------
    def _columns(self, inst: SlackInstall) -> dict[str, Any]:
        vault = self.store.vault
        out: dict[str, Any] = {}
        for f in fields(SlackInstall):
            if f.name in ("id", "gone_at"):
                continue
            value = getattr(inst, f.name)
            if f.name in SECRETS:
                out[f.name + "_enc"] = vault.encrypt(value) if value else None
            elif f.name == "is_enterprise_install":
                out[f.name] = 1 if value else 0
            elif f.name == "team_id":
                out[f.name] = None if inst.is_enterprise_install else value  # python-slack-sdk#1639
            else:
                out[f.name] = value
        return out

    def _install(self, row: Row) -> SlackInstall:
        vault = self.store.vault
        values: dict[str, Any] = {}
        for f in fields(SlackInstall):
            if f.name in SECRETS:
                enc = row.get(f.name + "_enc")
                values[f.name] = vault.decrypt(enc) if enc else None
            elif f.name == "is_enterprise_install":
                values[f.name] = bool(row[f.name])
            else:
                values[f.name] = row.get(f.name)
        return SlackInstall(**values)

    # -- installations ----------------------------------------------------------------------
    async def save(self, inst: SlackInstall, *, now: int) -> SlackInstall:
        """Create or replace the install at its key (a reinstall keeps the row's id)."""
        cols = self._columns(inst)  # encrypted before the transaction
        cols["updated_at"] = now
        names = list(cols)
        async with self.store.transaction():
            added = await self.store.execute(
                f"INSERT INTO slack_installations ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
                " ON CONFLICT DO NOTHING",
                list(cols.values()),
            )
            if not added:
                sets = ", ".join(f"{n} = ?" for n in names)
                await self.store.execute(
                    f"UPDATE slack_installations SET {sets} WHERE {KEY_WHERE}", [*cols.values(), *inst.key]
                )
            row = await self.store.one(f"SELECT * FROM slack_installations WHERE {KEY_WHERE}", list(inst.key))
            await TeamRows(self.store).installed(
                inst.team_id, inst.enterprise_id, org=inst.is_enterprise_install, now=now, name=inst.team_name
            )
        assert row is not None
        return self._install(row)

    async def get(self, enterprise_id: str | None, team_id: str | None, *, org: bool = False) -> SlackInstall | None:
        """The install at exactly this key."""
        row = await self.store.one(
            f"SELECT * FROM slack_installations WHERE {KEY_WHERE}", list(install_key(enterprise_id, team_id, org=org))
        )
        return self._install(row) if row else None

    async def find(
        self, enterprise_id: str | None, team_id: str | None, *, is_enterprise_install: bool | None = False
    ) -> SlackInstall | None:
        """The install that serves a request from ``(enterprise_id, team_id)``: the workspace's own,
        else its org's org-wide install (a workspace of an org install has no row of its own)."""
        if is_enterprise_install or team_id is None:
            return await self.get(enterprise_id, None, org=True) if enterprise_id else None
        found = await self.get(enterprise_id, team_id)
        if found is None and enterprise_id:
            found = await self.get(enterprise_id, None, org=True)
        return found

    async def locked(self, install_id: int) -> SlackInstall | None:
        """Inside a transaction: the row, read afresh and held until the transaction ends
        (PostgreSQL: ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already holds the file)."""
        row = await self.store.one(
            "SELECT * FROM slack_installations WHERE id = ?" + self.store.dialect.row_lock, [install_id]
        )
        return self._install(row) if row else None

    async def set_bot_token(
        self, install_id: int, *, token: str, refresh_token: str | None, expires_at: int | None, now: int
    ) -> None:
        vault = self.store.vault
        await self.store.execute(
            "UPDATE slack_installations SET bot_token_enc = ?, bot_refresh_token_enc = ?, bot_token_expires_at = ?,"
            " updated_at = ? WHERE id = ?",
            [
                vault.encrypt(token),
                vault.encrypt(refresh_token) if refresh_token else None,
                expires_at,
                now,
                install_id,
            ],
        )

    async def set_user_token(
        self, install_id: int, *, token: str | None, refresh_token: str | None, expires_at: int | None, now: int
    ) -> None:
        vault = self.store.vault
        await self.store.execute(
            "UPDATE slack_installations SET user_token_enc = ?, user_refresh_token_enc = ?, user_token_expires_at = ?,"
            " updated_at = ? WHERE id = ?",
            [
                vault.encrypt(token) if token else None,
                vault.encrypt(refresh_token) if refresh_token else None,
                expires_at,
                now,
                install_id,
            ],
        )

    async def forget_bot(self, enterprise_id: str | None, team_id: str | None, *, now: int) -> int:
        """Drop the bot token of the install at this key (the row stays)."""
        return await self.store.execute(
            "UPDATE slack_installations SET bot_token_enc = NULL, bot_refresh_token_enc = NULL,"
            f" bot_token_expires_at = NULL, updated_at = ? WHERE {KEY_WHERE}",
            [now, *install_key(enterprise_id, team_id, org=team_id is None)],
        )

    async def forget_user(self, enterprise_id: str | None, team_id: str | None, user_id: str, *, now: int) -> int:
        """Drop the installer's user token, when ``user_id`` is the installer."""
        return await self.store.execute(
            "UPDATE slack_installations SET user_token_enc = NULL, user_refresh_token_enc = NULL,"
            f" user_token_expires_at = NULL, updated_at = ? WHERE {KEY_WHERE} AND user_id = ?",
            [now, *install_key(enterprise_id, team_id, org=team_id is None), user_id],
        )

    async def delete(self, enterprise_id: str | None, team_id: str | None) -> int:
        """Delete the install at this key (``team_id`` None: the org-wide one), tokens and all."""
        return await self.store.execute(
            f"DELETE FROM slack_installations WHERE {KEY_WHERE}",
            list(install_key(enterprise_id, team_id, org=team_id is None)),
        )

    async def due(self, *, before: int, limit: int = 100) -> list[tuple[str | None, str | None, bool]]:
        """Installs whose bot token expires before ``before`` (soonest first): the worker refreshes them."""
        rows = await self.store.select(
            "SELECT enterprise_id, team_id, is_enterprise_install FROM slack_installations"
            " WHERE gone_at IS NULL AND bot_token_expires_at IS NOT NULL AND bot_token_expires_at < ? AND bot_refresh_token_enc IS NOT NULL"
            " ORDER BY bot_token_expires_at LIMIT ?",
            [before, limit],
        )
        return [(r["enterprise_id"], r["team_id"], bool(r["is_enterprise_install"])) for r in rows]

    # -- install states ---------------------------------------------------------------------
    async def issue_state(self, *, now: int, ttl: int) -> str:
        """A random state for one "Add to Slack" click; only its hash is stored."""
        state = secrets.token_urlsafe(32)
        await self.store.execute("DELETE FROM slack_install_states WHERE expires_at < ?", [now])
        await self.store.execute(
            "INSERT INTO slack_install_states (state_hash, created_at, expires_at) VALUES (?, ?, ?)",
            [_hash(state), now, now + ttl],
        )
        return state

    async def consume_state(self, state: str, *, now: int) -> bool:
        """True once for a state issued here and not expired; it is gone afterwards."""
        if not state or len(state) > 200:
            return False
        n = await self.store.execute(
            "DELETE FROM slack_install_states WHERE state_hash = ? AND expires_at >= ?", [_hash(state), now]
        )
        return n == 1
