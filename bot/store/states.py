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
from bot.crypto import CryptoError, Vault
from bot.store.engine import Params, Row
from bot.store.models import OAuthState


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def state_ref(state: str) -> str:
    """What a login button carries back to fblink when clicked: its state's hash (the key of its
    row), never the state itself."""
    return _hash_state(state)


def _state(row: dict[str, Any], response_url: str | None = None) -> OAuthState:
    payload = json.loads(row["payload"] or "{}")
    return OAuthState(
        row["team_id"],
        row["user_id"],
        row["channel_id"],
        row["purpose"],
        payload,
        row.get("browser_hash"),
        response_url,
        (str(row["prompt_channel"]), str(row["prompt_ts"]))
        if row.get("prompt_channel") and row.get("prompt_ts")
        else None,
    )


class StateRows:
    """OAuth states and idempotency keys; the Store supplies the statements and the vault."""

    vault: Vault

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
        response_url: str | None = None,
    ) -> str:
        """A random single-use state bound to team+user; only its hash is stored. The user's
        earlier unfinished states are cancelled: only the newest login link works.
        ``response_url``: where the message showing this login button can be replaced (encrypted)."""
        state = secrets.token_urlsafe(32)
        await self.execute("DELETE FROM oauth_states WHERE expires_at < ?", [now - DAY])
        await self.cancel_states(team_id, user_id, now=now)
        url_enc = self.vault.encrypt(response_url) if response_url else None
        await self.execute(
            "INSERT INTO oauth_states (state_hash, team_id, user_id, channel_id, purpose, payload, created_at,"
            " expires_at, response_url_enc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                _hash_state(state),
                team_id,
                user_id,
                channel_id,
                purpose,
                json.dumps(payload or {}),
                now,
                now + ttl,
                url_enc,
            ],
        )
        return state

    async def note_prompt_url(self, team_id: str, user_id: str, ref: str, response_url: str) -> None:
        """The person clicked the login button of an open link (``ref``: :func:`state_ref`): Slack
        sent the response_url of the message showing it, kept (encrypted) to mark that message done
        or replaced later, unless the prompt's place is already known."""
        await self.execute(
            "UPDATE oauth_states SET response_url_enc = ? WHERE state_hash = ? AND team_id = ? AND user_id = ?"
            " AND used_at IS NULL AND response_url_enc IS NULL AND prompt_ts IS NULL",
            [self.vault.encrypt(response_url), ref, team_id, user_id],
        )

    async def note_prompt_message(self, team_id: str, user_id: str, channel: str, ts: str) -> None:
        """The user's open login link was posted as a message of its own (a DM): where it is."""
        await self.execute(
            "UPDATE oauth_states SET prompt_channel = ?, prompt_ts = ? WHERE team_id = ? AND user_id = ?"
            " AND used_at IS NULL",
            [channel, ts, team_id, user_id],
        )

    async def cancel_states(self, team_id: str, user_id: str, *, now: int) -> list[str | tuple[str, str]]:
        """Cancel the user's unfinished states; where the prompts that showed them are (a response_url,
        or a message's channel and ts), those this call cancelled, so each can be marked replaced.
        The URLs are then forgotten."""
        rows = await self.select(
            "SELECT state_hash, response_url_enc, prompt_channel, prompt_ts FROM oauth_states"
            " WHERE team_id = ? AND user_id = ? AND used_at IS NULL",
            [team_id, user_id],
        )
        if not rows:
            return []
        cancelled = await self.select(
            "UPDATE oauth_states SET used_at = ?, response_url_enc = NULL WHERE team_id = ? AND user_id = ?"
            " AND used_at IS NULL RETURNING state_hash",
            [now, team_id, user_id],
        )
        mine = [r for r in rows if r["state_hash"] in {str(c["state_hash"]) for c in cancelled}]
        urls: list[str | tuple[str, str]] = [
            self._open_url(r["response_url_enc"]) for r in mine if r["response_url_enc"]
        ]
        return urls + [
            (str(r["prompt_channel"]), str(r["prompt_ts"])) for r in mine if r["prompt_channel"] and r["prompt_ts"]
        ]

    def _open_url(self, enc: str) -> str:
        try:
            return self.vault.decrypt(enc)
        except CryptoError:  # written under a key no longer configured: the prompt just stays as it is
            return ""

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
            " AND confirmed_at IS NOT NULL"
            " RETURNING team_id, user_id, channel_id, purpose, payload, browser_hash, response_url_enc,"
            " prompt_channel, prompt_ts",
            [now, _hash_state(state), now],
        )
        if not rows:
            return None
        enc = rows[0]["response_url_enc"]
        if enc:  # needed once, by the caller that replaces the prompt: not kept for the row's last day
            await self.execute(
                "UPDATE oauth_states SET response_url_enc = NULL WHERE state_hash = ?", [_hash_state(state)]
            )
        return _state(rows[0], self._open_url(enc) if enc else None)

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
