"""Schema migrations, kept apart from the queries (as sqlite-utils keeps migrations apart from db).

Applied once per database under a file lock, so several processes starting together
do not race each other.
"""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path

from sqlite_utils import Database, Migrations

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


@migrations()
def m004_page_leases(db: Database) -> None:
    # One change per (team, Page) at a time across every process sharing this file.
    db.execute(
        "CREATE TABLE page_leases (team_id TEXT NOT NULL, page_id TEXT NOT NULL, owner TEXT NOT NULL,"
        " expires_at INTEGER NOT NULL, PRIMARY KEY (team_id, page_id))"
    )


@migrations()
def m005_state_confirmation(db: Database) -> None:
    # A login state counts only once the Slack user confirmed it on fblink's own page.
    db.execute("ALTER TABLE oauth_states ADD COLUMN confirmed_at INTEGER")


@migrations()
def m006_page_business_and_no_token_reason(db: Database) -> None:
    # Pages found through a Business Portfolio, and why a Page came without a Page token.
    db.execute("ALTER TABLE fb_pages ADD COLUMN business_id TEXT")
    db.execute("ALTER TABLE fb_pages ADD COLUMN business_name TEXT")
    db.execute("ALTER TABLE fb_pages ADD COLUMN no_token_reason TEXT")


@migrations()
def m101_unreadable_rows_and_retention(db: Database) -> None:
    # A link whose stored token cannot be decrypted is marked (shown as broken) and skipped, never fatal.
    db.execute("ALTER TABLE links ADD COLUMN unreadable_at INTEGER")
    # Retention: finished reminder rows by age, and the stale-claim order (fewest attempts first).
    db.execute("ALTER TABLE reminders ADD COLUMN finished_at INTEGER")  # posted, dropped or given up
    db.execute("UPDATE reminders SET finished_at = COALESCE(posted_at, claimed_at) WHERE status != 'claimed'")
    db.execute("CREATE INDEX reminders_finished ON reminders (finished_at) WHERE status != 'claimed'")
    db.execute("CREATE INDEX audit_at ON audit (at)")


@migrations()
def m102_state_browser(db: Database) -> None:
    # The browser that confirmed a login state (hash of its cookie): the callback must come from it.
    db.execute("ALTER TABLE oauth_states ADD COLUMN browser_hash TEXT")


@migrations()
def m103_slack_pace(db: Database) -> None:
    # Slack's pace shared by every process: when a channel's next post, or any call of a Web API
    # method after a 429's Retry-After, may start (epoch seconds).
    db.execute("CREATE TABLE slack_pace (key TEXT PRIMARY KEY, not_before REAL NOT NULL)")


@migrations()
def m110_slack_installations(db: Database) -> None:
    # Distributed mode: one row per install, keyed as Slack keys them: (enterprise, team) for a
    # workspace, (enterprise, NULL) for an org-wide install. Tokens only as *_enc (Fernet), so
    # `fblink rotate-keys` covers them. Install states: hashed, single use, expiring.
    db.executescript(
        """
        CREATE TABLE slack_installations (
            id INTEGER PRIMARY KEY,
            enterprise_id TEXT,
            enterprise_name TEXT,
            enterprise_url TEXT,
            team_id TEXT,
            team_name TEXT,
            is_enterprise_install INTEGER NOT NULL DEFAULT 0,
            app_id TEXT,
            token_type TEXT,
            bot_id TEXT,
            bot_user_id TEXT,
            bot_scopes TEXT NOT NULL DEFAULT '',
            bot_token_enc TEXT,
            bot_refresh_token_enc TEXT,
            bot_token_expires_at INTEGER,
            user_id TEXT,
            user_scopes TEXT NOT NULL DEFAULT '',
            user_token_enc TEXT,
            user_refresh_token_enc TEXT,
            user_token_expires_at INTEGER,
            incoming_webhook_url_enc TEXT,
            incoming_webhook_channel TEXT,
            incoming_webhook_channel_id TEXT,
            incoming_webhook_configuration_url TEXT,
            installed_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX slack_installations_key
            ON slack_installations (COALESCE(enterprise_id, ''), COALESCE(team_id, ''));
        CREATE INDEX slack_installations_expiry ON slack_installations (bot_token_expires_at)
            WHERE bot_token_expires_at IS NOT NULL;
        CREATE TABLE slack_install_states (
            state_hash TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX slack_install_states_expiry ON slack_install_states (expires_at);
        """
    )


@migrations()
def m120_state_response_url(db: Database) -> None:
    # The response_url of the message that showed the login button (encrypted), so the spent
    # prompt can be replaced when its login finishes or a newer login link cancels it.
    db.execute("ALTER TABLE oauth_states ADD COLUMN response_url_enc TEXT")


@migrations()
def m150_installs_gone_and_teams(db: Database) -> None:
    # Uninstall and revocation: an install is marked gone (tokens deleted at once) and kept until
    # retention; a reinstall is a new row, so the one-per-key index covers live installs only.
    # slack_teams: each workspace's org (links and reminders know only the team), and since when it
    # is gone. Workspace installs made before this step are recorded at once.
    db.executescript(
        """
        ALTER TABLE slack_installations ADD COLUMN gone_at INTEGER;
        DROP INDEX slack_installations_key;
        CREATE UNIQUE INDEX slack_installations_key
            ON slack_installations (COALESCE(enterprise_id, ''), COALESCE(team_id, '')) WHERE gone_at IS NULL;
        CREATE TABLE slack_teams (
            team_id TEXT PRIMARY KEY,
            enterprise_id TEXT,
            name TEXT,
            seen_at INTEGER NOT NULL,
            gone_at INTEGER
        );
        CREATE INDEX slack_teams_enterprise ON slack_teams (enterprise_id) WHERE enterprise_id IS NOT NULL;
        CREATE INDEX slack_teams_gone ON slack_teams (gone_at) WHERE gone_at IS NOT NULL;
        INSERT INTO slack_teams (team_id, enterprise_id, seen_at)
            SELECT team_id, enterprise_id, installed_at FROM slack_installations WHERE team_id IS NOT NULL
            ON CONFLICT DO NOTHING;
        """
    )


@migrations()
def m130_reminder_attempts(db: Database) -> None:
    # Exactly once across a crash between Slack's answer and the confirm: when (epoch seconds of the
    # wall clock) and where a post of this claim was last sent, so a worker that takes the claim over
    # reads that channel's history for the message before posting again.
    db.execute("ALTER TABLE reminders ADD COLUMN attempt_at INTEGER")
    db.execute("ALTER TABLE reminders ADD COLUMN attempt_channel TEXT")


@migrations()
def m131_slack_pace_sent(db: Database) -> None:
    # When a channel's last post was in fact sent (then answered), so the next one, from any
    # process, counts its gap from the real send rather than from its booking.
    db.execute("ALTER TABLE slack_pace ADD COLUMN sent_at REAL")


@migrations()
def m140_team_admins(db: Database) -> None:
    # Distributed mode: the fblink admins a workspace added (and its installer), per workspace.
    db.executescript(
        """
        CREATE TABLE team_admins (
            team_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            added_by TEXT NOT NULL,
            added_at INTEGER NOT NULL,
            PRIMARY KEY (team_id, user_id)
        );
        """
    )


def names() -> list[str]:
    """The schema's version: the migrations' names in order (PostgreSQL's steps carry the same)."""
    return [m.name for m in migrations._migrations]


@migrations()
def m121_state_prompt_message(db: Database) -> None:
    # A login prompt posted as a message of its own (the App Home's Log in answers in the DM):
    # where it is, so chat.update can mark it done or replaced, as a response_url does for the others.
    db.execute("ALTER TABLE oauth_states ADD COLUMN prompt_channel TEXT")
    db.execute("ALTER TABLE oauth_states ADD COLUMN prompt_ts TEXT")
