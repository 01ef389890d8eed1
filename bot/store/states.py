"""Single-use rows: OAuth login states and request idempotency keys (a part of the Store).

Kept apart from :mod:`bot.store.core` so each stays small; :class:`~bot.store.core.Store`
inherits these methods, which run on its engine.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from bot.clock import DAY
from bot.store.engine import Params, Row
from bot.store.models import OAuthState


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _state(row: dict[str, Any]) -> OAuthState:
    payload = json.loads(row["payload"] or "{}")
    return OAuthState(
        row["team_id"], row["user_id"], row["channel_id"], row["purpose"], payload, row.get("browser_hash")
    )


class StateRows:
    """OAuth states and idempotency keys; the Store supplies the statements."""

    async def select(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    async def create_state(
        self,
        team_id: str,
        user_id: str,
        *,
        now: int,
        channel_id: str | None = None,
        purpose: str = "login",
        payload: dict[str, Any] | None = None,
        ttl: int = 600,
    ) -> str:
        """A random single-use state bound to team+user; only its hash is stored. The user's
        earlier unfinished states are cancelled: only the newest login link works."""
        state = secrets.token_urlsafe(32)
        await self.execute("DELETE FROM oauth_states WHERE expires_at < ?", [now - DAY])
        await self.execute(
            "UPDATE oauth_states SET used_at = ? WHERE team_id = ? AND user_id = ? AND used_at IS NULL",
            [now, team_id, user_id],
        )
        await self.execute(
            "INSERT INTO oauth_states (state_hash, team_id, user_id, channel_id, purpose, payload, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_hash_state(state), team_id, user_id, channel_id, purpose, json.dumps(payload or {}), now, now + ttl],
        )
        return state

    async def peek_state(self, state: str, *, now: int) -> OAuthState | None:
        """The state's binding (team, user, purpose) while it is unused and unexpired; nothing changes."""
        if not state or len(state) > 200:
            return None
        row = await self.one(
            "SELECT team_id, user_id, channel_id, purpose, payload FROM oauth_states"
            " WHERE state_hash = ? AND used_at IS NULL AND expires_at >= ?",
            [_hash_state(state), now],
        )
        return _state(row) if row else None

    async def confirm_state(self, state: str, *, now: int, browser: str) -> bool:
        """The Slack user saw whom the login binds to and chose to continue to Facebook, in the
        browser whose cookie hashes to ``browser``. Once confirmed, no other browser can confirm it."""
        n = await self.execute(
            "UPDATE oauth_states SET confirmed_at = ?, browser_hash = ? WHERE state_hash = ? AND used_at IS NULL"
            " AND expires_at >= ? AND (browser_hash IS NULL OR browser_hash = ?)",
            [now, browser, _hash_state(state), now, browser],
        )
        return n == 1

    async def consume_state(self, state: str, *, now: int) -> OAuthState | None:
        """Mark a confirmed state used and return it; None when unknown, unconfirmed, expired or used."""
        if not state or len(state) > 200:
            return None
        rows = await self.select(
            "UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL AND expires_at >= ?"
            " AND confirmed_at IS NOT NULL RETURNING team_id, user_id, channel_id, purpose, payload, browser_hash",
            [now, _hash_state(state), now],
        )
        return _state(rows[0]) if rows else None

    # -- idempotency -----------------------------------------------------------
    async def first_time(self, key: str, *, now: int, ttl: int = 3600) -> bool:
        """True unless ``key`` was seen in the last ``ttl`` seconds: dedupes retried or double-sent requests.

        One statement, so two processes on the same database cannot both get True.
        """
        await self.execute("DELETE FROM idempotency WHERE created_at < ?", [now - DAY])
        n = await self.execute(
            "INSERT INTO idempotency (key, created_at) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at WHERE idempotency.created_at < ?",
            [key, now, now - ttl],
        )
        return n == 1
