"""The Store: typed, awaitable reads and writes; the only place (with the ledger) that writes SQL.

The SQL is written once, in what SQLite and PostgreSQL share; the engine it runs on
(:mod:`bot.store.sqlite` or :mod:`bot.store.postgres`) supplies the few fragments that
differ. Every row is scoped by Slack team id. Tokens and secrets are stored encrypted
through the Vault it is given, so plaintext never reaches the database. Times are UTC
epoch integers.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.clock import Clock
from bot.crypto import Vault
from bot.store.engine import Dialect, Engine, Params, Row, SchemaError
from bot.store.ledger import ReminderLedger
from bot.store.models import FacebookLogin, Link, StoredPage
from bot.store.opening import open_engine
from bot.store.pace import SlackPace
from bot.store.states import StateRows
from bot.store.tenancy import TeamRows
from bot.store.views import LINKABLE_TASKS, StatusRows

NO_LIMIT = 2**62  # LIMIT for "all rows", the same on both engines


class Store(StateRows, SlackPace, StatusRows, TeamRows):
    """Typed reads and writes; one instance per process, shared by all handlers."""

    def __init__(self, target: str | Engine, vault: Vault, *, clock: Clock | None = None) -> None:
        self.engine = open_engine(target) if isinstance(target, str) else target
        self.vault = vault
        self.clock = clock or Clock()  # only its shift() is read here: leases use the database's clock
        self.reminders = ReminderLedger(self)

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    async def open(self) -> None:
        """Connect, and refuse a schema behind this version's (``fblink migrate`` brings it up)."""
        await self.engine.connect()
        pending = await self.engine.pending()
        if pending:
            await self.engine.close()
            raise SchemaError(
                f"the database at {self.engine.url} needs {len(pending)} migration(s) ({', '.join(pending)}):"
                " run `fblink migrate` first"
            )

    async def close(self) -> None:
        await self.engine.close()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One write transaction; store calls of this task inside it join it."""
        return self.engine.transaction()

    async def select(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.engine.fetch(sql, params)

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        return await self.engine.one(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self.engine.execute(sql, params)

    def db_now(self, now: int) -> tuple[str, int]:
        """The SQL and parameter of the lease/claim clock (see :mod:`bot.store.engine`)."""
        return self.engine.dialect.now, self.engine.now_param(now, self.clock.shift())

    async def ping(self) -> bool:
        row = await self.one("SELECT 1 AS ok")
        return row is not None and int(row["ok"]) == 1

    # -- Facebook logins and Pages -------------------------------------------
    async def save_login(self, login: FacebookLogin, *, now: int) -> None:
        await self.execute(
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

    async def get_login(self, team_id: str, user_id: str) -> FacebookLogin | None:
        row = await self.one("SELECT * FROM fb_users WHERE team_id = ? AND user_id = ?", [team_id, user_id])
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

    async def login_scopes(self, team_id: str, user_ids: list[str]) -> dict[str, tuple[str, ...]]:
        """The granted scopes of these users' logins, in one read and without decrypting a token
        (a status page judges every linker's permissions on the ack path)."""
        if not user_ids:
            return {}
        rows = await self.select(
            f"SELECT user_id, scopes FROM fb_users WHERE team_id = ? AND user_id IN ({', '.join('?' for _ in user_ids)})",
            [team_id, *user_ids],
        )
        return {r["user_id"]: tuple(json.loads(r["scopes"])) for r in rows}

    async def linkable_page_ids(self, team_id: str, user_id: str) -> set[str]:
        """The ids of the Pages this user could link (``StoredPage.can_link``), without decrypting tokens:
        a Page stored without a token carries its ``no_token_reason``."""
        rows = await self.select(
            "SELECT page_id, tasks FROM fb_pages WHERE team_id = ? AND user_id = ? AND no_token_reason IS NULL",
            [team_id, user_id],
        )
        return {r["page_id"] for r in rows if LINKABLE_TASKS & set(json.loads(r["tasks"]))}

    async def forget_login(self, team_id: str, user_id: str, *, fb_user_id: str | None = None) -> bool:
        """Logout: drop the user's Facebook token and every Page token we hold for them. With
        ``fb_user_id``, only while that Facebook account is the one connected (else nothing)."""
        only = " AND fb_user_id = ?" if fb_user_id is not None else ""
        async with self.transaction():
            n = await self.execute(
                "DELETE FROM fb_users WHERE team_id = ? AND user_id = ?" + only,
                [team_id, user_id, *([fb_user_id] if fb_user_id is not None else [])],
            )
            if n == 0 and fb_user_id is not None:
                return False
            await self.execute("DELETE FROM fb_pages WHERE team_id = ? AND user_id = ?", [team_id, user_id])
        return n > 0

    async def forget_link_tokens(self, team_id: str, user_id: str) -> int:
        """Drop the Page tokens of the user's links (a disconnected login's tokens). Returns how many."""
        return await self.execute(
            "UPDATE links SET token_enc = NULL WHERE team_id = ? AND linked_by = ? AND token_enc IS NOT NULL",
            [team_id, user_id],
        )

    async def save_pages(self, team_id: str, user_id: str, pages: list[Any], *, now: int) -> None:
        """Replace the user's cached Page list (with encrypted Page tokens)."""
        rows = [
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
            ]
            for p in pages
        ]  # encrypted before the transaction: the write lock is held for the writes alone
        keep = [p.id for p in pages]
        async with self.transaction():
            # Upsert, then drop what is gone: two refreshes at once (PostgreSQL lets both run) end
            # with the later list, never a duplicate-key error.
            for row in rows:
                await self.execute(
                    "INSERT INTO fb_pages (team_id, user_id, page_id, name, category, tasks, token_enc, fetched_at,"
                    " business_id, business_name, no_token_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (team_id, user_id, page_id) DO UPDATE SET name = excluded.name,"
                    " category = excluded.category, tasks = excluded.tasks, token_enc = excluded.token_enc,"
                    " fetched_at = excluded.fetched_at, business_id = excluded.business_id,"
                    " business_name = excluded.business_name, no_token_reason = excluded.no_token_reason",
                    row,
                )
            await self.execute(
                "DELETE FROM fb_pages WHERE team_id = ? AND user_id = ?"
                + (f" AND page_id NOT IN ({', '.join('?' for _ in keep)})" if keep else ""),
                [team_id, user_id, *keep],
            )

    async def get_pages(self, team_id: str, user_id: str) -> list[StoredPage]:
        rows = await self.select(
            "SELECT * FROM fb_pages WHERE team_id = ? AND user_id = ? ORDER BY "
            + self.dialect.nocase("name")
            + ", page_id",
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
    async def add_key(self, team_id: str, api_key: str, secret: str, *, by: str, now: int) -> None:
        await self.execute(
            "INSERT INTO vonage_keys (team_id, api_key, secret_enc, added_by, added_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (team_id, api_key) DO UPDATE SET secret_enc=excluded.secret_enc, added_by=excluded.added_by,"
            " added_at=excluded.added_at",
            [team_id, api_key, self.vault.encrypt(secret), by, now],
        )

    async def remove_key(self, team_id: str, api_key: str) -> bool:
        return await self.execute("DELETE FROM vonage_keys WHERE team_id = ? AND api_key = ?", [team_id, api_key]) > 0

    async def list_keys(self, team_id: str) -> list[dict[str, Any]]:
        return await self.select(
            "SELECT api_key, added_by, added_at FROM vonage_keys WHERE team_id = ? ORDER BY api_key", [team_id]
        )

    async def key_secret(self, team_id: str, api_key: str) -> str | None:
        row = await self.one("SELECT secret_enc FROM vonage_keys WHERE team_id = ? AND api_key = ?", [team_id, api_key])
        return self.vault.decrypt(row["secret_enc"]) if row else None

    # -- links ---------------------------------------------------------------
    async def get_link(self, team_id: str, page_id: str) -> Link | None:
        row = await self.one("SELECT * FROM links WHERE team_id = ? AND page_id = ?", [team_id, page_id])
        return Link.from_row(row) if row else None

    async def get_link_by_id(self, link_id: int) -> Link | None:
        row = await self.one("SELECT * FROM links WHERE id = ?", [link_id])
        return Link.from_row(row) if row else None

    async def list_links(
        self, team_id: str, *, include_gone: bool = True, limit: int = -1, offset: int = 0
    ) -> list[Link]:
        """Links of a workspace, soonest expiry first (unknown expiry last); paged in SQL."""
        where = "" if include_gone else " AND status != 'gone'"
        rows = await self.select(
            "SELECT * FROM links WHERE team_id = ?"
            + where
            + " ORDER BY expires_at IS NULL, expires_at, "
            + self.dialect.nocase("page_name")
            + " LIMIT ? OFFSET ?",
            [team_id, limit if limit >= 0 else NO_LIMIT, max(0, offset)],
        )
        return [Link.from_row(r) for r in rows]

    async def links_page(self, team_id: str, *, limit: int, offset: int = 0) -> tuple[list[Link], int]:
        """One page of :meth:`list_links` and the workspace's total, in one statement (a status page
        is one round trip on PostgreSQL, not two). The total is an uncorrelated subquery, counted
        once on the (team_id, expires_at) index: ``COUNT(*) OVER ()`` made SQLite materialise and
        sort every row of the workspace first (1.7 ms against 0.06 ms at 1,000 links)."""
        rows = await self.select(
            "SELECT *, (SELECT COUNT(*) FROM links WHERE team_id = ?) AS total_links FROM links WHERE team_id = ?"
            " ORDER BY expires_at IS NULL, expires_at, " + self.dialect.nocase("page_name") + " LIMIT ? OFFSET ?",
            [team_id, team_id, limit, max(0, offset)],
        )
        if not rows:  # past the end (or none): the total still counts
            return [], await self.count_links(team_id)
        total = int(rows[0]["total_links"])
        return [Link.from_row(r) for r in rows], total  # from_row takes the fields it knows

    async def count_links(self, team_id: str) -> int:
        row = await self.one("SELECT COUNT(*) AS n FROM links WHERE team_id = ?", [team_id])
        return int(row["n"]) if row else 0

    async def upsert_link(
        self, team_id: str, page_id: str, *, now: int, page_token: str | None = None, **fields: Any
    ) -> Link:
        """Create or update the link row of a Page (one per Page per workspace).

        ``page_token`` is the token given to Vonage; it is stored encrypted. One statement
        either way, so a row another process inserted meanwhile is updated, never an
        IntegrityError.
        """
        fields["updated_at"] = now
        if page_token is not None:
            fields["token_enc"] = self.vault.encrypt(page_token)
        existing = await self.get_link(team_id, page_id)
        if existing is None:
            values = {"linked_at": now, "checked_at": 0, **fields}
            cols = ["team_id", "page_id", *values]
            sets = ", ".join(f"{k} = excluded.{k}" for k in fields)
            rows = await self.select(
                f"INSERT INTO links ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
                f" ON CONFLICT (team_id, page_id) DO UPDATE SET {sets} RETURNING *",
                [team_id, page_id, *values.values()],
            )
        else:
            sets = ", ".join(f"{k} = ?" for k in fields)
            rows = await self.select(
                f"UPDATE links SET {sets} WHERE id = ? RETURNING *", [*fields.values(), existing.id]
            )
        if not rows:  # deleted between the read and the update: write it afresh
            return await self.upsert_link(team_id, page_id, now=now, **{**fields, "updated_at": now})
        return Link.from_row(rows[0])

    async def link_state_counts(self, now: int) -> dict[str, int]:
        """Links by state across all workspaces, for /metrics."""
        row = await self.one(
            "SELECT SUM(CASE WHEN status = 'active' AND broken_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
            " THEN 1 ELSE 0 END) AS active,"
            " SUM(CASE WHEN status = 'active' AND broken_at IS NULL AND expires_at <= ? THEN 1 ELSE 0 END) AS expired,"
            " SUM(CASE WHEN status = 'active' AND broken_at IS NOT NULL THEN 1 ELSE 0 END) AS broken,"
            " SUM(CASE WHEN status = 'gone' THEN 1 ELSE 0 END) AS gone,"
            " SUM(CASE WHEN status = 'active' AND expires_at IS NULL THEN 1 ELSE 0 END) AS unknown_expiry FROM links",
            [now, now],
        )
        return {k: int(v or 0) for k, v in (row or {}).items()}

    async def delete_link(self, team_id: str, page_id: str) -> None:
        await self.execute("DELETE FROM links WHERE team_id = ? AND page_id = ?", [team_id, page_id])

    # -- Page leases ------------------------------------------------------------
    async def acquire_lease(self, team_id: str, page_id: str, owner: str, *, now: int, ttl: int) -> bool:
        """Take the (team, Page) lease unless another owner holds an unexpired one. One statement,
        so two processes cannot both win; written and compared with the database's clock."""
        clock, t = self.db_now(now)
        n = await self.execute(
            f"INSERT INTO page_leases (team_id, page_id, owner, expires_at) VALUES (?, ?, ?, {clock} + ?)"
            " ON CONFLICT (team_id, page_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
            f" WHERE page_leases.expires_at <= {clock}",
            [team_id, page_id, owner, t, ttl, t],
        )
        return n == 1

    async def lease_owner(self, team_id: str, page_id: str, *, now: int, lock: bool = False) -> str | None:
        """Who holds the Page's unexpired lease, if anyone. ``lock`` (inside a transaction): no
        one can take the lease over until the transaction ends."""
        clock, t = self.db_now(now)
        row = await self.one(
            "SELECT owner, expires_at > "
            + clock
            + " AS live FROM page_leases WHERE team_id = ? AND page_id = ?"
            + (self.dialect.row_lock if lock else ""),
            [t, team_id, page_id],
        )
        return row["owner"] if row and row["live"] else None

    async def release_lease(self, team_id: str, page_id: str, owner: str) -> None:
        await self.execute(
            "DELETE FROM page_leases WHERE team_id = ? AND page_id = ? AND owner = ?", [team_id, page_id, owner]
        )

    # -- team settings ---------------------------------------------------------
    async def team_reminder_channel(self, team_id: str) -> str | None:
        row = await self.one("SELECT reminder_channel FROM team_settings WHERE team_id = ?", [team_id])
        return row["reminder_channel"] if row else None

    async def set_team_reminder_channel(self, team_id: str, channel_id: str | None, *, by: str, now: int) -> None:
        await self.execute(
            "INSERT INTO team_settings (team_id, reminder_channel, updated_by, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (team_id) DO UPDATE SET reminder_channel=excluded.reminder_channel,"
            " updated_by=excluded.updated_by, updated_at=excluded.updated_at",
            [team_id, channel_id, by, now],
        )

    # -- audit and idempotency -------------------------------------------------
    async def audit(
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
        await self.execute(
            "INSERT INTO audit (team_id, at, user_id, action, page_id, detail, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [team_id, now, user_id, action, page_id, detail, result],
        )

    async def history(self, team_id: str, page_id: str, limit: int = 10) -> list[dict[str, Any]]:
        return await self.select(
            "SELECT at, user_id, action, detail, result FROM audit WHERE team_id = ? AND page_id = ?"
            " ORDER BY id DESC LIMIT ?",
            [team_id, page_id, limit],
        )
