"""The database settings: validated at start like the others; the URL's password is a secret."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from bot.logs import redact
from bot.settings import load_settings
from tests.test_settings_validation import error_of
from tests.test_store_settings_cli import BASE_ENV, clean_env, env  # noqa: F401  (fixture)


def fblink(env: dict[str, str], cwd: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it, with only ``env`` for settings."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, cwd=cwd, timeout=60
    )


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("FBLINK_DATABASE_URL", "mysql://u@h/db", "must be a PostgreSQL URL"),
        ("FBLINK_DATABASE_URL", "fblink.db", "must be a PostgreSQL URL"),
        ("FBLINK_DB_POOL_SIZE", "0", "greater than or equal to 1"),
        ("FBLINK_DB_CONNECT_TIMEOUT", "0", "greater than 0"),
        ("FBLINK_DB_STATEMENT_TIMEOUT", "-1", "greater than or equal to 0"),
    ],
)
def test_bad_database_settings_stop_start_up_naming_the_variable(env, name, value, says):
    text = error_of(env, **{name: value})
    assert text.startswith(f"{name}:") and says in text


def test_the_url_selects_postgresql_and_its_password_is_never_logged(env):
    env.setenv("FBLINK_DATABASE_URL", "postgresql://fblink:s3cret-pw-42@db.internal:5432/fblink")
    s = load_settings()
    assert s.database.startswith("postgresql://") and s.fblink_database == "fblink.db"
    assert "s3cret-pw-42" not in redact("connecting to postgresql://fblink:s3cret-pw-42@db.internal:5432/fblink")


def test_check_config_names_the_database_without_its_password(tmp_path):
    url = "postgresql://fblink_nobody:s3cret-pw-42@127.0.0.1:5432/test"  # never connected to: a check reads settings
    env = clean_env(**{**BASE_ENV, "FBLINK_DATABASE_URL": url})
    out = fblink(env, tmp_path, "check-config")
    assert out.returncode == 0, out.stderr
    assert "postgresql://fblink_nobody@127.0.0.1/test" in out.stdout
    assert "s3cret-pw-42" not in out.stdout + out.stderr


def test_serve_on_an_unreachable_database_says_so_in_one_line(tmp_path):
    env = clean_env(
        **{
            **BASE_ENV,
            "FBLINK_DATABASE_URL": "postgresql://fblink:s3cret-pw-42@127.0.0.1:1/none",
            "FBLINK_DB_CONNECT_TIMEOUT": "2",
        }
    )
    out = fblink(env, tmp_path, "serve", "--port", "1")
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("fblink: cannot open the database at postgresql://fblink@127.0.0.1/none")
    assert "refused" in last.lower() and "s3cret-pw-42" not in out.stderr


def test_check_config_lists_every_problem_at_once(tmp_path):
    env = clean_env(
        **{k: v for k, v in BASE_ENV.items() if k not in ("FACEBOOK_APP_ID", "VONAGE_API_SECRET")},
        FBLINK_DB_POOL_SIZE="0",
        FBLINK_ADMINS="not-a-user",
    )
    out = fblink(env, tmp_path, "check-config")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[0] == "fblink: configuration error: 4 problem(s)"
    for name in ("FACEBOOK_APP_ID: missing", "VONAGE_API_SECRET: missing", "FBLINK_DB_POOL_SIZE:", "FBLINK_ADMINS:"):
        assert any(line.strip().startswith(name) for line in lines[1:]), (name, lines)
