"""Storage: SQLite through sqlite-utils, the only module that writes SQL.

Every row is scoped by Slack team id. Tokens and secrets are stored encrypted
(see :mod:`bot.crypto`); this module takes and returns ciphertext only through
the Vault it is given, so plaintext never reaches the database file. Times are
UTC epoch integers.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from bot.crypto import Vault

migrations = Migrations("fblink")


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE oauth_states (
            state_hash TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            channel_id TEXT,
            purpose TEXT NOT NULL DEFAULT 'login',
            payload TEXT,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER
        );
        CREATE TABLE fb_users (
            team_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            fb_user_id TEXT NOT NULL,
            fb_name TEXT NOT NULL,
            token_enc TEXT NOT NULL,
            token_expires_at INTEGER,
            data_access_expires_at INTEGER,
            scopes TEXT NOT NULL DEFAULT '[]',
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (team_id, user_id)
        );
        CREATE TABLE fb_pages (
            team_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            page_id TEXT NOT NULL,
            name TEXT NOT NULL,
            category TEXT NOT NULL DEFAULT '',
            tasks TEXT NOT NULL DEFAULT '[]',
            token_enc TEXT NOT NULL,
            fetched_at INTEGER NOT NULL,
            PRIMARY KEY (team_id, user_id, page_id)
        );
        CREATE TABLE vonage_keys (
            team_id TEXT NOT NULL,
            api_key TEXT NOT NULL,
            secret_enc TEXT NOT NULL,
            added_by TEXT NOT NULL,
            added_at INTEGER NOT NULL,
            PRIMARY KEY (team_id, api_key)
        );
        CREATE TABLE links (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL,
            page_id TEXT NOT NULL,
            page_name TEXT NOT NULL,
            api_key TEXT NOT NULL,
            application_id TEXT,
            application_name TEXT,
            linked_by TEXT,
            linked_at INTEGER NOT NULL,
            channel_id TEXT,
            expires_at INTEGER,
            status TEXT NOT NULL DEFAULT 'active',
            period INTEGER NOT NULL DEFAULT 1,
            needs_relink INTEGER NOT NULL DEFAULT 0,
            reminder_channel TEXT,
            muted INTEGER NOT NULL DEFAULT 0,
            next_due_at INTEGER,
            broken_at INTEGER,
            breakages INTEGER NOT NULL DEFAULT 0,
            checked_at INTEGER,
            updated_at INTEGER NOT NULL,
            UNIQUE (team_id, page_id)
        );
        CREATE INDEX links_due ON links (next_due_at) WHERE status = 'active' AND next_due_at IS NOT NULL;
        CREATE INDEX links_team_expiry ON links (team_id, expires_at);
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            link_id INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
            team_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            period INTEGER NOT NULL,
            threshold INTEGER NOT NULL,
            status TEXT NOT NULL,
            claimed_at INTEGER,
            claim_id TEXT,
            posted_at INTEGER,
            channel_id TEXT,
            message_ts TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            UNIQUE (link_id, kind, period, threshold)
        );
        CREATE INDEX reminders_claimed ON reminders (claimed_at) WHERE status = 'claimed';
        CREATE TABLE team_settings (
            team_id TEXT PRIMARY KEY,
            reminder_channel TEXT,
            updated_by TEXT,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            team_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            user_id TEXT,
            action TEXT NOT NULL,
            page_id TEXT,
            detail TEXT,
            result TEXT NOT NULL
        );
        CREATE INDEX audit_page ON audit (team_id, page_id, id);
        CREATE TABLE idempotency (
            key TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL
        );
        """
    )


@migrations()
def m002_status_order_index(db: Database) -> None:
    # Matches list_links' ORDER BY, so a status page reads 10 rows instead of sorting them all.
    db.execute(
        "CREATE INDEX links_team_status_order ON links"
        " (team_id, expires_at IS NULL, expires_at, page_name COLLATE NOCASE)"
    )


@migrations()
def m003_link_token_and_probe_index(db: Database) -> None:
    # The Page token fblink gave Vonage (encrypted), so the daily probe checks that very token.
    db.execute("ALTER TABLE links ADD COLUMN token_enc TEXT")
    db.execute("UPDATE links SET checked_at = 0 WHERE checked_at IS NULL")
    db.execute("CREATE INDEX links_probe ON links (checked_at) WHERE status = 'active'")


@migrations()
def m004_page_business_and_no_token_reason(db: Database) -> None:
    # Pages found through a Business Portfolio, and why a Page came without a Page token.
    db.execute("ALTER TABLE fb_pages ADD COLUMN business_id TEXT")
    db.execute("ALTER TABLE fb_pages ADD COLUMN business_name TEXT")
    db.execute("ALTER TABLE fb_pages ADD COLUMN no_token_reason TEXT")


# ---------------------------------------------------------------------------
# value objects


@dataclass(frozen=True)
class FacebookLogin:
    team_id: str
    user_id: str
    fb_user_id: str
    fb_name: str
    token: str
    token_expires_at: int | None
    data_access_expires_at: int | None
    scopes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"FacebookLogin(team_id={self.team_id!r}, user_id={self.user_id!r}, fb_name={self.fb_name!r})"


@dataclass(frozen=True)
class StoredPage:
    page_id: str
    name: str
    category: str
    tasks: tuple[str, ...]
    token: str
    business_name: str | None = None
    no_token_reason: str | None = None  # set when Graph gave no Page token: cannot be linked

    def __repr__(self) -> str:
        return f"StoredPage({self.page_id!r}, {self.name!r})"

    @property
    def can_link(self) -> bool:
        return bool(self.token) and bool({"MESSAGING", "MANAGE"} & set(self.tasks))


@dataclass(frozen=True)
class OAuthState:
    team_id: str
    user_id: str
    channel_id: str | None
    purpose: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Link:
    id: int
    team_id: str
    page_id: str
    page_name: str
    api_key: str
    application_id: str | None
    application_name: str | None
    linked_by: str | None
    linked_at: int
    channel_id: str | None
    expires_at: int | None
    status: str
    period: int
    needs_relink: bool
    reminder_channel: str | None
    muted: bool
    next_due_at: int | None
    broken_at: int | None
    breakages: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Link":
        return cls(
            **{k: row[k] for k in cls.__dataclass_fields__ if k not in ("needs_relink", "muted")},
            needs_relink=bool(row["needs_relink"]),
            muted=bool(row["muted"]),
        )


def _hash_state(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def open_database(path: str) -> Database:
    """Open (creating) the SQLite file in WAL mode, usable from any thread of one process."""
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
    db = Database(conn)
    if path != ":memory:":
        db.enable_wal()
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def migrate(db: Database, path: str) -> None:
    """Apply pending migrations once, even when several processes start together."""
    if path == ":memory:":
        migrations.apply(db)
        return
    lock_path = Path(path).with_name(Path(path).name + ".migrate-lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            migrations.apply(db)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Store:
    """Typed reads and writes; one instance per process, shared by all handlers."""

    def __init__(self, path: str, vault: Vault) -> None:
        self.path = path
        self.db = open_database(path)
        self.vault = vault
        migrate(self.db, path)

    def close(self) -> None:
        self.db.close()

    def __deepcopy__(self, memo: dict[int, Any]) -> "Store":
        return self

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

    def _select(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Rows of a read-only SELECT as dicts. Unlike ``db.query`` it takes no savepoint:
        the ack path reads on every request, and a plain SELECT needs no write guard."""
        cursor = self.db.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row)) for row in cursor.fetchall()]

    def _one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self._select(sql, params)
        return rows[0] if rows else None

    def ping(self) -> bool:
        return self._one("SELECT 1 AS ok") == {"ok": 1}

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
        """A random single-use state bound to team+user; only its hash is stored."""
        state = secrets.token_urlsafe(32)
        self.db.execute(
            "DELETE FROM oauth_states WHERE expires_at < ?", [now - 86400]
        )
        self.db.execute(
            "INSERT INTO oauth_states (state_hash, team_id, user_id, channel_id, purpose, payload, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_hash_state(state), team_id, user_id, channel_id, purpose, json.dumps(payload or {}), now, now + ttl],
        )
        return state

    def consume_state(self, state: str, *, now: int) -> OAuthState | None:
        """Mark a state used and return it; None when unknown, expired or already used."""
        if not state or len(state) > 200:
            return None
        rows = list(
            self.db.query(
                "UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL AND expires_at >= ?"
                " RETURNING team_id, user_id, channel_id, purpose, payload",
                [now, _hash_state(state), now],
            )
        )
        if not rows:
            return None
        row = rows[0]
        return OAuthState(row["team_id"], row["user_id"], row["channel_id"], row["purpose"], json.loads(row["payload"] or "{}"))

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
        row = self._one("SELECT * FROM fb_users WHERE team_id = ? AND user_id = ?", [team_id, user_id])
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

    def forget_login(self, team_id: str, user_id: str) -> bool:
        """Logout: drop the user's Facebook token and every Page token we hold for them."""
        with self.transaction():
            n = self.db.execute("DELETE FROM fb_users WHERE team_id = ? AND user_id = ?", [team_id, user_id]).rowcount
            self.db.execute("DELETE FROM fb_pages WHERE team_id = ? AND user_id = ?", [team_id, user_id])
        return n > 0

    def save_pages(self, team_id: str, user_id: str, pages: list[Any], *, now: int) -> None:
        """Replace the user's cached Page list (with encrypted Page tokens)."""
        with self.transaction():
            self.db.execute("DELETE FROM fb_pages WHERE team_id = ? AND user_id = ?", [team_id, user_id])
            for p in pages:
                self.db.execute(
                    "INSERT INTO fb_pages (team_id, user_id, page_id, name, category, tasks, token_enc, fetched_at,"
                    " business_id, business_name, no_token_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [team_id, user_id, p.id, p.name, p.category, json.dumps(list(p.tasks)), self.vault.encrypt(p.access_token), now,
                     getattr(p, "business_id", None), getattr(p, "business_name", None), getattr(p, "no_token_reason", None)],
                )

    def get_pages(self, team_id: str, user_id: str) -> list[StoredPage]:
        rows = self.db.query(
            "SELECT * FROM fb_pages WHERE team_id = ? AND user_id = ? ORDER BY name COLLATE NOCASE, page_id",
            [team_id, user_id],
        )
        return [
            StoredPage(r["page_id"], r["name"], r["category"], tuple(json.loads(r["tasks"])), self.vault.decrypt(r["token_enc"]),
                       r["business_name"], r["no_token_reason"])
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
        return self.db.execute("DELETE FROM vonage_keys WHERE team_id = ? AND api_key = ?", [team_id, api_key]).rowcount > 0

    def list_keys(self, team_id: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT api_key, added_by, added_at FROM vonage_keys WHERE team_id = ? ORDER BY api_key", [team_id]
            )
        )

    def key_secret(self, team_id: str, api_key: str) -> str | None:
        row = self._one("SELECT secret_enc FROM vonage_keys WHERE team_id = ? AND api_key = ?", [team_id, api_key])
        return self.vault.decrypt(row["secret_enc"]) if row else None

    # -- links ---------------------------------------------------------------
    def get_link(self, team_id: str, page_id: str) -> Link | None:
        row = self._one("SELECT * FROM links WHERE team_id = ? AND page_id = ?", [team_id, page_id])
        return Link.from_row(row) if row else None

    def get_link_by_id(self, link_id: int) -> Link | None:
        row = self._one("SELECT * FROM links WHERE id = ?", [link_id])
        return Link.from_row(row) if row else None

    def list_links(self, team_id: str, *, include_gone: bool = True, limit: int = -1, offset: int = 0) -> list[Link]:
        """Links of a workspace, soonest expiry first (unknown expiry last); paged in SQL."""
        where = "" if include_gone else " AND status != 'gone'"
        rows = self._select(
            "SELECT * FROM links WHERE team_id = ?" + where
            + " ORDER BY expires_at IS NULL, expires_at, page_name COLLATE NOCASE LIMIT ? OFFSET ?",
            [team_id, limit, max(0, offset)],
        )
        return [Link.from_row(r) for r in rows]

    def count_links(self, team_id: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM links WHERE team_id = ?", [team_id])
        return int(row["n"]) if row else 0

    def upsert_link(self, team_id: str, page_id: str, *, now: int, page_token: str | None = None,
                    **fields: Any) -> Link:
        """Create or update the link row of a Page (one per Page per workspace).

        ``page_token`` is the token given to Vonage; it is stored encrypted.
        """
        fields["updated_at"] = now
        if page_token is not None:
            fields["token_enc"] = self.vault.encrypt(page_token)
        existing = self.get_link(team_id, page_id)
        if existing is None:
            fields.setdefault("linked_at", now)
            fields.setdefault("checked_at", 0)
            cols = ["team_id", "page_id", *fields]
            self.db.execute(
                f"INSERT INTO links ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [team_id, page_id, *fields.values()],
            )
        else:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE links SET {sets} WHERE id = ?", [*fields.values(), existing.id])
        link = self.get_link(team_id, page_id)
        assert link is not None
        return link

    def link_state_counts(self, now: int) -> dict[str, int]:
        """Links by state across all workspaces, for /metrics."""
        row = self._one(
            "SELECT SUM(status = 'active' AND broken_at IS NULL AND (expires_at IS NULL OR expires_at > ?)) AS active,"
            " SUM(status = 'active' AND broken_at IS NULL AND expires_at <= ?) AS expired,"
            " SUM(status = 'active' AND broken_at IS NOT NULL) AS broken, SUM(status = 'gone') AS gone,"
            " SUM(status = 'active' AND expires_at IS NULL) AS unknown_expiry FROM links", [now, now])
        return {k: int(v or 0) for k, v in (row or {}).items()}

    def delete_link(self, team_id: str, page_id: str) -> None:
        self.db.execute("DELETE FROM links WHERE team_id = ? AND page_id = ?", [team_id, page_id])

    # -- team settings ---------------------------------------------------------
    def team_reminder_channel(self, team_id: str) -> str | None:
        row = self._one("SELECT reminder_channel FROM team_settings WHERE team_id = ?", [team_id])
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
        self, team_id: str, action: str, *, now: int, user_id: str | None, page_id: str | None = None,
        detail: str = "", result: str = "ok",
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
        self.db.execute("DELETE FROM idempotency WHERE created_at < ?", [now - 86400])
        cur = self.db.execute(
            "INSERT INTO idempotency (key, created_at) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at WHERE idempotency.created_at < ?",
            [key, now, now - ttl])
        return cur.rowcount == 1


# ---------------------------------------------------------------------------
# reminders: claim before posting, confirm after (exactly once across processes)

DAY = 86400


@dataclass(frozen=True)
class Claim:
    reminder_id: int
    claim_id: str
    kind: str  # "expiry" or "broken"
    threshold: int  # days before expiry (0 = expired notice), or the breakage number
    link: Link


def next_threshold_due(expires_at: int, thresholds: tuple[int, ...], below: int | None) -> tuple[int | None, int | None]:
    """The next threshold (days) after ``below`` in this period and when it falls due; (None, None) when done."""
    steps = sorted(set(thresholds) | {0}, reverse=True)
    later = [t for t in steps if below is None or t < below]
    if not later:
        return None, None
    return later[0], expires_at - later[0] * DAY


def claim_due(store: "Store", *, now: int, thresholds: tuple[int, ...], lease: int, limit: int = 1000) -> list[Claim]:
    """Find due links through the partial index, claim the most urgent threshold of each.

    One IMMEDIATE transaction: two processes sweeping the same file serialize here,
    and the unique (link, kind, period, threshold) key makes a second claim impossible.
    Claims older than ``lease`` that were never confirmed (a crash, a failed post) are
    handed out again.
    """
    steps = sorted(set(thresholds) | {0}, reverse=True)
    claims: list[Claim] = []
    with store.transaction():
        rows = list(store.db.query(
            "SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL AND next_due_at <= ?"
            " ORDER BY next_due_at LIMIT ?", [now, limit]))
        for row in rows:
            link = Link.from_row(row)
            assert link.expires_at is not None
            due = [t for t in steps if link.expires_at - t * DAY <= now]
            if not due:  # next_due_at came from other thresholds (FBLINK_REMINDER_DAYS changed): reschedule
                store.db.execute("UPDATE links SET next_due_at = ? WHERE id = ?",
                                 [link.expires_at - steps[0] * DAY, link.id])
                continue
            urgent = min(due)
            _, nxt = next_threshold_due(link.expires_at, thresholds, urgent)
            store.db.execute("UPDATE links SET next_due_at = ? WHERE id = ?", [nxt, link.id])
            if link.muted:
                continue
            claim_id = secrets.token_hex(8)
            cur = store.db.execute(
                "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
                " VALUES (?, ?, 'expiry', ?, ?, 'claimed', ?, ?) ON CONFLICT DO NOTHING",
                [link.id, link.team_id, link.period, urgent, now, claim_id],
            )
            if cur.rowcount == 1:
                claims.append(Claim(cur.lastrowid, claim_id, "expiry", urgent, link))
        stale = list(store.db.query(
            "SELECT id, link_id, kind, period, threshold FROM reminders WHERE status = 'claimed' AND claimed_at <= ?"
            " ORDER BY claimed_at LIMIT ?", [now - lease, limit]))
        for r in stale:
            link = store.get_link_by_id(r["link_id"])
            claim_id = secrets.token_hex(8)
            store.db.execute("UPDATE reminders SET claimed_at = ?, claim_id = ?, attempts = attempts + 1 WHERE id = ?",
                             [now, claim_id, r["id"]])
            outdated = (
                link is None or link.status != "active" or link.muted
                or r["period"] != link.period  # re-linked since: that reminder is moot
                or (r["kind"] == "broken" and link.broken_at is None)  # mended since
            )
            if outdated:
                store.db.execute("UPDATE reminders SET status = 'dropped' WHERE id = ?", [r["id"]])
                continue
            claims.append(Claim(r["id"], claim_id, r["kind"], r["threshold"], link))
    return claims


def claim_breakage(store: "Store", link: Link, *, now: int) -> Claim | None:
    """Record a newly broken token and claim its alert (once per breakage)."""
    with store.transaction():
        row = store._one("SELECT broken_at, breakages FROM links WHERE id = ?", [link.id])
        if row is None or row["broken_at"] is not None:
            store.db.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link.id])
            return None
        seq = row["breakages"] + 1
        store.db.execute("UPDATE links SET broken_at = ?, breakages = ?, checked_at = ? WHERE id = ?",
                         [now, seq, now, link.id])
        claim_id = secrets.token_hex(8)
        cur = store.db.execute(
            "INSERT INTO reminders (link_id, team_id, kind, period, threshold, status, claimed_at, claim_id)"
            " VALUES (?, ?, 'broken', ?, ?, 'claimed', ?, ?) ON CONFLICT DO NOTHING",
            [link.id, link.team_id, link.period, seq, now, claim_id],
        )
        if cur.rowcount != 1:
            return None
        fresh = store.get_link_by_id(link.id)
        assert fresh is not None
        return Claim(cur.lastrowid, claim_id, "broken", seq, fresh)


def mark_checked(store: "Store", link_id: int, *, now: int) -> None:
    store.db.execute("UPDATE links SET checked_at = ? WHERE id = ?", [now, link_id])


def links_to_probe(store: "Store", *, now: int, every: int = DAY, limit: int = 1000) -> list[tuple[Link, str | None]]:
    """Active links not checked for ``every`` seconds (partial index), with the token Vonage holds."""
    rows = store.db.query(
        "SELECT * FROM links WHERE status = 'active' AND checked_at <= ? ORDER BY checked_at LIMIT ?",
        [now - every, limit])
    return [(Link.from_row(r), store.vault.decrypt(r["token_enc"]) if r.get("token_enc") else None) for r in rows]


def confirm(store: "Store", claim: Claim, *, channel_id: str, message_ts: str, now: int) -> bool:
    """The post went out: record where, so a relink can update it. False if the claim was lost."""
    cur = store.db.execute(
        "UPDATE reminders SET status = 'posted', posted_at = ?, channel_id = ?, message_ts = ? WHERE id = ? AND claim_id = ?",
        [now, channel_id, message_ts, claim.reminder_id, claim.claim_id])
    return cur.rowcount == 1


def release(store: "Store", claim: Claim, *, error: str) -> None:
    """The post failed: make the claim stale at once so the next sweep retries it."""
    store.db.execute(
        "UPDATE reminders SET claimed_at = 0, last_error = ? WHERE id = ? AND claim_id = ? AND status = 'claimed'",
        [error[:200], claim.reminder_id, claim.claim_id])


def posted_for_period(store: "Store", link_id: int, period: int) -> list[dict[str, Any]]:
    """Messages posted for a link period; ``shared`` > 1 marks a digest covering other Pages too."""
    return list(store.db.query(
        "SELECT id, kind, threshold, channel_id, message_ts,"
        " (SELECT COUNT(*) FROM reminders r2 WHERE r2.message_ts = reminders.message_ts"
        "  AND r2.channel_id = reminders.channel_id) AS shared"
        " FROM reminders WHERE link_id = ? AND period = ? AND status = 'posted' AND message_ts IS NOT NULL",
        [link_id, period]))


def reminders_in_message(store: "Store", channel_id: str, message_ts: str) -> list[dict[str, Any]]:
    return list(store.db.query(
        "SELECT link_id, kind, period, threshold FROM reminders WHERE channel_id = ? AND message_ts = ? ORDER BY id",
        [channel_id, message_ts]))


def page_token_of(store: "Store", team_id: str, user_id: str | None, page_id: str) -> str | None:
    """The Page token we hold from the linker's login (None after they logged out)."""
    if not user_id:
        return None
    row = store._one("SELECT token_enc FROM fb_pages WHERE team_id = ? AND user_id = ? AND page_id = ?",
                     [team_id, user_id, page_id])
    return store.vault.decrypt(row["token_enc"]) if row else None
