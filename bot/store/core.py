"""The Store: typed reads and writes over SQLite, the only place (with the ledger) that writes SQL.

Every row is scoped by Slack team id. Tokens and secrets are stored encrypted through
the Vault it is given, so plaintext never reaches the database file. Times are UTC
epoch integers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.clock import DAY
from bot.crypto import Vault
from bot.store.ledger import ReminderLedger
from bot.store.migrations import migrate, open_database
from bot.store.models import FacebookLogin, Link, OAuthState, StoredPage


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _state(row: dict[str, Any]) -> OAuthState:
    payload = json.loads(row["payload"] or "{}")
    return OAuthState(
        row["team_id"], row["user_id"], row["channel_id"], row["purpose"], payload, row.get("browser_hash")
    )


class Store:
    """Typed reads and writes; one instance per process, shared by all handlers."""

    def __init__(self, path: str, vault: Vault) -> None:
        self.path = path
        self.db = open_database(path)
        self.vault = vault
        migrate(self.db, path)
        self.reminders = ReminderLedger(self)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: a write lock taken up front, so no upgrade deadlocks."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def select(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Rows of a read-only SELECT as dicts. Unlike ``db.query`` it takes no savepoint:
        the ack path reads on every request, and a plain SELECT needs no write guard."""
        cursor = self.db.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.select(sql, params)
        return rows[0] if rows else None

    def ping(self) -> bool:
        return self.one("SELECT 1 AS ok") == {"ok": 1}

    # -- OAuth state ---------------------------------------------------------
    def create_state(
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
        self.db.execute("DELETE FROM oauth_states WHERE expires_at < ?", [now - DAY])
        self.db.execute(
            "UPDATE oauth_states SET used_at = ? WHERE team_id = ? AND user_id = ? AND used_at IS NULL",
            [now, team_id, user_id],
        )
        self.db.execute(
            "INSERT INTO oauth_states (state_hash, team_id, user_id, channel_id, purpose, payload, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_hash_state(state), team_id, user_id, channel_id, purpose, json.dumps(payload or {}), now, now + ttl],
        )
        return state

    def peek_state(self, state: str, *, now: int) -> OAuthState | None:
        """The state's binding (team, user, purpose) while it is unused and unexpired; nothing changes."""
        if not state or len(state) > 200:
            return None
        row = self.one(
            "SELECT team_id, user_id, channel_id, purpose, payload FROM oauth_states"
            " WHERE state_hash = ? AND used_at IS NULL AND expires_at >= ?",
            [_hash_state(state), now],
        )
        return _state(row) if row else None

    def confirm_state(self, state: str, *, now: int, browser: str) -> bool:
        """The Slack user saw whom the login binds to and chose to continue to Facebook, in the
        browser whose cookie hashes to ``browser``. Once confirmed, no other browser can confirm it."""
        cur = self.db.execute(
            "UPDATE oauth_states SET confirmed_at = ?, browser_hash = ? WHERE state_hash = ? AND used_at IS NULL"
            " AND expires_at >= ? AND (browser_hash IS NULL OR browser_hash = ?)",
            [now, browser, _hash_state(state), now, browser],
        )
        return cur.rowcount == 1

    def consume_state(self, state: str, *, now: int) -> OAuthState | None:
        """Mark a confirmed state used and return it; None when unknown, unconfirmed, expired or used."""
        if not state or len(state) > 200:
            return None
        rows = list(
            self.db.query(
                "UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL AND expires_at >= ?"
                " AND confirmed_at IS NOT NULL RETURNING team_id, user_id, channel_id, purpose, payload, browser_hash",
                [now, _hash_state(state), now],
            )
        )
        return _state(rows[0]) if rows else None

    # -- Facebook logins and Pages -------------------------------------------
    def save_login(self, login: FacebookLogin, *, now: int) -> None:
        self.db.execute(
            "INSERT INTO fb_users (team_id, user_id, fb_user_id, fb_name, token_enc, token_expires_at,"
            " data_access_expires_at, scopes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (team_id, user_id) DO UPDATE SET fb_user_id=excluded.fb_user_id, fb_name=excluded.fb_name,"
            " token_enc=excluded.token_enc, token_expires_at=excluded.token_expires_at,"
            " data_access_expires_at=excluded.data_access_expires_at, scopes=excluded.scopes, updated_at=excluded.updated_at",
            [
                login.team_id,
                login.user_id,
                login.fb_user_id,
                login.fb_name,
                self.vault.encrypt(login.token),
                login.token_expires_at,
                login.data_access_expires_at,
                json.dumps(list(login.scopes)),
                now,
            ],
        )

    def get_login(self, team_id: str, user_id: str) -> FacebookLogin | None:
        row = self.one("SELECT * FROM fb_users WHERE team_id = ? AND user_id = ?", [team_id, user_id])
        if row is None:
            return None
        return FacebookLogin(
            team_id=row["team_id"],
            user_id=row["user_id"],
            fb_user_id=row["fb_user_id"],
            fb_name=row["fb_name"],
            token=self.vault.decrypt(row["token_enc"]),
            token_expires_at=row["token_expires_at"],
            data_access_expires_at=row["data_access_expires_at"],
            scopes=tuple(json.loads(row["scopes"])),
        )

    def forget_login(self, team_id: str, user_id: str, *, fb_user_id: str | None = None) -> bool:
        """Logout: drop the user's Facebook token and every Page token we hold for them. With
        ``fb_user_id``, only while that Facebook account is the one connected (else nothing)."""
        with self.transaction():
            n = self.db.execute(
                "DELETE FROM fb_users WHERE team_id = ? AND user_id = ? AND (? IS NULL OR fb_user_id = ?)",
                [team_id, user_id, fb_user_id, fb_user_id],
            ).rowcount
            if n == 0 and fb_user_id is not None:
                return False
            self.db.execute("DELETE FROM fb_pages WHERE team_id = ? AND user_id = ?", [team_id, user_id])
        return n > 0

    def forget_link_tokens(self, team_id: str, user_id: str) -> int:
        """Drop the Page tokens of the user's links (a disconnected login's tokens). Returns how many."""
        return self.db.execute(
            "UPDATE links SET token_enc = NULL WHERE team_id = ? AND linked_by = ? AND token_enc IS NOT NULL",
            [team_id, user_id],
        ).rowcount

    def save_pages(self, team_id: str, user_id: str, pages: list[Any], *, now: int) -> None:
        """Replace the user's cached Page list (with encrypted Page tokens)."""
        with self.transaction():
            self.db.execute("DELETE FROM fb_pages WHERE team_id = ? AND user_id = ?", [team_id, user_id])
            for p in pages:
                self.db.execute(
                    "INSERT INTO fb_pages (team_id, user_id, page_id, name, category, tasks, token_enc, fetched_at,"
                    " business_id, business_name, no_token_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        team_id,
                        user_id,
                        p.id,
                        p.name,
                        p.category,
                        json.dumps(list(p.tasks)),
                        self.vault.encrypt(p.access_token),
                        now,
                        p.business_id,
                        p.business_name,
                        p.no_token_reason,
                    ],
                )

    def get_pages(self, team_id: str, user_id: str) -> list[StoredPage]:
        rows = self.db.query(
            "SELECT * FROM fb_pages WHERE team_id = ? AND user_id = ? ORDER BY name COLLATE NOCASE, page_id",
            [team_id, user_id],
        )
        return [
            StoredPage(
                r["page_id"],
                r["name"],
                r["category"],
                tuple(json.loads(r["tasks"])),
                self.vault.decrypt(r["token_enc"]),
                r["business_name"],
                r["no_token_reason"],
            )
            for r in rows
        ]

    # -- Vonage keys -----------------------------------------------------------
    def add_key(self, team_id: str, api_key: str, secret: str, *, by: str, now: int) -> None:
        self.db.execute(
            "INSERT INTO vonage_keys (team_id, api_key, secret_enc, added_by, added_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (team_id, api_key) DO UPDATE SET secret_enc=excluded.secret_enc, added_by=excluded.added_by,"
            " added_at=excluded.added_at",
            [team_id, api_key, self.vault.encrypt(secret), by, now],
        )

    def remove_key(self, team_id: str, api_key: str) -> bool:
        return (
            self.db.execute("DELETE FROM vonage_keys WHERE team_id = ? AND api_key = ?", [team_id, api_key]).rowcount
            > 0
        )

    def list_keys(self, team_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT api_key, added_by, added_at FROM vonage_keys WHERE team_id = ? ORDER BY api_key", [team_id]
            )
        )

    def key_secret(self, team_id: str, api_key: str) -> str | None:
        row = self.one("SELECT secret_enc FROM vonage_keys WHERE team_id = ? AND api_key = ?", [team_id, api_key])
        return self.vault.decrypt(row["secret_enc"]) if row else None

    # -- links ---------------------------------------------------------------
    def get_link(self, team_id: str, page_id: str) -> Link | None:
        row = self.one("SELECT * FROM links WHERE team_id = ? AND page_id = ?", [team_id, page_id])
        return Link.from_row(row) if row else None

    def get_link_by_id(self, link_id: int) -> Link | None:
        row = self.one("SELECT * FROM links WHERE id = ?", [link_id])
        return Link.from_row(row) if row else None

    def list_links(self, team_id: str, *, include_gone: bool = True, limit: int = -1, offset: int = 0) -> list[Link]:
        """Links of a workspace, soonest expiry first (unknown expiry last); paged in SQL."""
        where = "" if include_gone else " AND status != 'gone'"
        rows = self.select(
            "SELECT * FROM links WHERE team_id = ?"
            + where
            + " ORDER BY expires_at IS NULL, expires_at, page_name COLLATE NOCASE LIMIT ? OFFSET ?",
            [team_id, limit, max(0, offset)],
        )
        return [Link.from_row(r) for r in rows]

    def count_links(self, team_id: str) -> int:
        row = self.one("SELECT COUNT(*) AS n FROM links WHERE team_id = ?", [team_id])
        return int(row["n"]) if row else 0

    def upsert_link(
        self, team_id: str, page_id: str, *, now: int, page_token: str | None = None, **fields: Any
    ) -> Link:
        """Create or update the link row of a Page (one per Page per workspace).

        ``page_token`` is the token given to Vonage; it is stored encrypted.
        """
        fields["updated_at"] = now
        if page_token is not None:
            fields["token_enc"] = self.vault.encrypt(page_token)
        existing = self.get_link(team_id, page_id)
        if existing is None:
            # One statement: a row another process inserted meanwhile is updated, never an IntegrityError.
            values = {"linked_at": now, "checked_at": 0, **fields}
            cols = ["team_id", "page_id", *values]
            sets = ", ".join(f"{k} = excluded.{k}" for k in fields)
            self.db.execute(
                f"INSERT INTO links ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
                f" ON CONFLICT (team_id, page_id) DO UPDATE SET {sets}",
                [team_id, page_id, *values.values()],
            )
        else:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE links SET {sets} WHERE id = ?", [*fields.values(), existing.id])
        link = self.get_link(team_id, page_id)
        assert link is not None
        return link

    def link_state_counts(self, now: int) -> dict[str, int]:
        """Links by state across all workspaces, for /metrics."""
        row = self.one(
            "SELECT SUM(status = 'active' AND broken_at IS NULL AND (expires_at IS NULL OR expires_at > ?)) AS active,"
            " SUM(status = 'active' AND broken_at IS NULL AND expires_at <= ?) AS expired,"
            " SUM(status = 'active' AND broken_at IS NOT NULL) AS broken, SUM(status = 'gone') AS gone,"
            " SUM(status = 'active' AND expires_at IS NULL) AS unknown_expiry FROM links",
            [now, now],
        )
        return {k: int(v or 0) for k, v in (row or {}).items()}

    def delete_link(self, team_id: str, page_id: str) -> None:
        self.db.execute("DELETE FROM links WHERE team_id = ? AND page_id = ?", [team_id, page_id])

    # -- Page leases ------------------------------------------------------------
    def acquire_lease(self, team_id: str, page_id: str, owner: str, *, now: int, ttl: int) -> bool:
        """Take the (team, Page) lease unless another owner holds an unexpired one. One statement,
        so two processes cannot both win."""
        cur = self.db.execute(
            "INSERT INTO page_leases (team_id, page_id, owner, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (team_id, page_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
            " WHERE page_leases.expires_at <= ?",
            [team_id, page_id, owner, now + ttl, now],
        )
        return cur.rowcount == 1

    def lease_owner(self, team_id: str, page_id: str, *, now: int) -> str | None:
        """Who holds the Page's unexpired lease, if anyone."""
        row = self.one(
            "SELECT owner FROM page_leases WHERE team_id = ? AND page_id = ? AND expires_at > ?",
            [team_id, page_id, now],
        )
        return row["owner"] if row else None

    def release_lease(self, team_id: str, page_id: str, owner: str) -> None:
        self.db.execute(
            "DELETE FROM page_leases WHERE team_id = ? AND page_id = ? AND owner = ?", [team_id, page_id, owner]
        )

    # -- team settings ---------------------------------------------------------
    def team_reminder_channel(self, team_id: str) -> str | None:
        row = self.one("SELECT reminder_channel FROM team_settings WHERE team_id = ?", [team_id])
        return row["reminder_channel"] if row else None

    def set_team_reminder_channel(self, team_id: str, channel_id: str | None, *, by: str, now: int) -> None:
        self.db.execute(
            "INSERT INTO team_settings (team_id, reminder_channel, updated_by, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (team_id) DO UPDATE SET reminder_channel=excluded.reminder_channel,"
            " updated_by=excluded.updated_by, updated_at=excluded.updated_at",
            [team_id, channel_id, by, now],
        )

    # -- audit and idempotency -------------------------------------------------
    def audit(
        self,
        team_id: str,
        action: str,
        *,
        now: int,
        user_id: str | None,
        page_id: str | None = None,
        detail: str = "",
        result: str = "ok",
    ) -> None:
        self.db.execute(
            "INSERT INTO audit (team_id, at, user_id, action, page_id, detail, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [team_id, now, user_id, action, page_id, detail, result],
        )

    def history(self, team_id: str, page_id: str, limit: int = 10) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT at, user_id, action, detail, result FROM audit WHERE team_id = ? AND page_id = ?"
                " ORDER BY id DESC LIMIT ?",
                [team_id, page_id, limit],
            )
        )

    def first_time(self, key: str, *, now: int, ttl: int = 3600) -> bool:
        """True unless ``key`` was seen in the last ``ttl`` seconds: dedupes retried or double-sent requests.

        One statement, so two processes on the same database cannot both get True.
        """
        self.db.execute("DELETE FROM idempotency WHERE created_at < ?", [now - DAY])
        cur = self.db.execute(
            "INSERT INTO idempotency (key, created_at) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at WHERE idempotency.created_at < ?",
            [key, now, now - ttl],
        )
        return cur.rowcount == 1
