"""Storage, configuration and the command line."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from bot.crypto import CryptoError, Vault
from bot.logs import redact
from bot.settings import SettingsError, load_settings
from tests.store_sync import sync_store

KEY = Fernet.generate_key().decode()
BASE_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1-test",
    "SLACK_SIGNING_SECRET": "sig",
    "FACEBOOK_APP_ID": "1",
    "FACEBOOK_APP_SECRET": "s",
    "VONAGE_API_KEY": "k",
    "VONAGE_API_SECRET": "vs",
    "FBLINK_PUBLIC_URL": "https://bot.test",
    "FBLINK_SECRET_KEY": KEY,
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_"))}
    env.update(extra)
    return env


# -- settings ---------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for k in list(os.environ):
        if k.startswith(("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_")):
            monkeypatch.delenv(k)
    for k, v in BASE_ENV.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


def test_settings_defaults_and_derived(env):
    s = load_settings()
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.facebook_api_version == "v25.0"
    assert s.vonage_api_url == "https://api.nexmo.com"
    assert s.fblink_database == "fblink.db"
    assert s.reminder_days == (14, 7, 3, 1)
    assert s.redirect_uri == "https://bot.test/facebook/callback"
    assert s.admins == frozenset() and not s.socket_mode


@pytest.mark.parametrize(
    "name,value,words",
    [
        ("SLACK_BOT_TOKEN", None, "SLACK_BOT_TOKEN: missing"),
        ("FBLINK_SECRET_KEY", None, "FBLINK_SECRET_KEY: missing"),
        ("FBLINK_PUBLIC_URL", None, "FBLINK_PUBLIC_URL: missing"),
        ("SLACK_BOT_TOKEN", "xoxp-user", "SLACK_BOT_TOKEN: must be a bot token"),
        ("FBLINK_SECRET_KEY", "short", "FBLINK_SECRET_KEY: must be a Fernet key"),
        ("FBLINK_PUBLIC_URL", "bot.test", "FBLINK_PUBLIC_URL: must be an http(s) URL"),
        ("FACEBOOK_API_VERSION", "25", "FACEBOOK_API_VERSION: must look like v25.0"),
        ("FBLINK_REMINDER_DAYS", "14,x", "FBLINK_REMINDER_DAYS"),
        ("FBLINK_ADMINS", "bob", "FBLINK_ADMINS"),
        ("FBLINK_LINK_TTL_DAYS", "0", "FBLINK_LINK_TTL_DAYS"),
        ("SLACK_APP_TOKEN", "xoxb-nope", "SLACK_APP_TOKEN"),
    ],
)
def test_bad_settings_name_the_variable(env, name, value, words):
    if value is None:
        env.delenv(name)
    else:
        env.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_signing_secret_required_unless_socket_mode(env):
    env.delenv("SLACK_SIGNING_SECRET")
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        load_settings()
    env.setenv("SLACK_APP_TOKEN", "xapp-1-A1-abc")
    assert load_settings().socket_mode


def test_dotenv_file_is_read(env, tmp_path):
    env.delenv("VONAGE_API_KEY")
    (tmp_path / ".env").write_text("VONAGE_API_KEY=fromdotenv\n")
    assert load_settings().vonage_api_key == "fromdotenv"


def test_oauth_env_refused(env):
    env.setenv("SLACK_CLIENT_ID", "1")
    env.setenv("SLACK_CLIENT_SECRET", "2")
    with pytest.raises(SettingsError, match="SLACK_CLIENT_ID"):
        load_settings()


# -- storage ------------------------------------------------------------------------------


def test_vault_round_trip_and_wrong_key():
    v = Vault(KEY)
    c = v.encrypt("EAAsecret-token")
    assert "EAAsecret" not in c and v.decrypt(c) == "EAAsecret-token"
    with pytest.raises(CryptoError):
        Vault(Fernet.generate_key().decode()).decrypt(c)
    assert KEY not in repr(v)


@pytest.mark.sqlite_only
def test_store_uses_wal_and_partial_index(tmp_path):
    store = sync_store(str(tmp_path / "s.db"), Vault(KEY))
    assert store.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    plan = " ".join(
        r[-1]
        for r in store.db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM links WHERE status = 'active' AND next_due_at IS NOT NULL"
            " AND next_due_at <= 5 ORDER BY next_due_at LIMIT 10"
        )
    )
    assert "USING INDEX links_due" in plan
    # times are integers, not text
    cols = {r[1]: r[2] for r in store.db.conn.execute("PRAGMA table_info(links)")}
    assert cols["expires_at"] == "INTEGER" and cols["next_due_at"] == "INTEGER"


@pytest.mark.sqlite_only
def test_state_is_single_use_and_expires(tmp_path):
    store = sync_store(str(tmp_path / "s.db"), Vault(KEY))
    s = store.create_state("T1", "U1", now=1000)
    assert store.consume_state(s, now=1001) is None  # never confirmed on fblink's page
    assert store.confirm_state(s, now=1001, browser="b" * 64)
    assert store.consume_state(s, now=1001).user_id == "U1"
    assert store.consume_state(s, now=1002) is None
    s2 = store.create_state("T1", "U1", now=1000)
    store.confirm_state(s2, now=1000, browser="b" * 64)
    assert store.consume_state(s2, now=1601) is None
    raw = Path(tmp_path / "s.db").read_bytes() + Path(str(tmp_path / "s.db") + "-wal").read_bytes()
    assert s2.encode() not in raw  # only hashes are stored


def test_migrations_run_once_when_processes_start_together(tmp_path):
    db = tmp_path / "race.db"
    code = (
        "import sys; from bot.store import Store; from bot.crypto import Vault; "
        f"Store(sys.argv[1], Vault({KEY!r})); print('ok')"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    assert names.count("m001_initial") == 1


def test_redact_hides_tokens():
    line = "GET /me?access_token=EAAabc123456&appsecret_proof=ff xoxb-1-2-abc Bearer xoxb-9 client_secret=zz"
    out = redact(line)
    for secret in ("EAAabc123456", "xoxb-1-2-abc", "client_secret=zz", "appsecret_proof=ff"):
        assert secret not in out


# -- command line ---------------------------------------------------------------------------


def run(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_gen_key_prints_a_fernet_key(tmp_path):
    out = run("gen-key", env=clean_env())
    assert out.returncode == 0
    Fernet(out.stdout.strip().encode())


def test_serve_exits_naming_missing_variable(tmp_path):
    env = clean_env(**{k: v for k, v in BASE_ENV.items() if k != "FACEBOOK_APP_ID"})
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert out.returncode == 2
    assert "FACEBOOK_APP_ID" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_serve_answers_health_and_stops_cleanly_on_sigterm(tmp_path, slack):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = clean_env(
        **{
            **BASE_ENV,
            "SLACK_API_URL": slack.url + "/api/",
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "FBLINK_DATABASE": str(tmp_path / "serve.db"),
            "FBLINK_LOG_FORMAT": "json",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stderr.read() if proc.poll() is not None else "no answer") from None
                time.sleep(0.1)
        assert r.json() == {"ok": True, "database": "ok"}
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see it
        assert proc.returncode in (0, -signal.SIGTERM), err
        assert "Application shutdown complete" in err and "Scheduler has been shut down" in err
        assert "scheduler started" in err
        assert "will be unused" not in err  # no misleading Bolt warning at start-up
        assert KEY not in err and "xoxb-test-token" not in err
    finally:
        if proc.poll() is None:
            proc.kill()


def test_dedupe_holds_across_two_connections(tmp_path):
    path = str(tmp_path / "dedupe.db")
    a, b = sync_store(path, Vault(KEY)), sync_store(path, Vault(KEY))  # two processes' worth of connections
    assert a.first_time("act:x", now=100, ttl=30) is True
    assert b.first_time("act:x", now=101, ttl=30) is False
    assert a.first_time("act:x", now=110, ttl=30) is False
    assert b.first_time("act:x", now=140, ttl=30) is True  # outside the window: a new request
