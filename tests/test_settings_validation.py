"""Settings that could never work stop start-up with one line naming the variables involved."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from bot.settings import SettingsError, load_settings
from tests.test_store_settings_cli import BASE_ENV, clean_env, env  # noqa: F401  (fixture)


def error_of(env, **values: str) -> str:  # type: ignore[no-untyped-def]
    for k, v in values.items():
        env.setenv(k, v)
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    "days,ttl,bad", [("14,7,3,1", "14", "14"), ("30,7", "30", "30"), ("60,45,7", "30", "45, 60"), ("1", "1", "1")]
)
def test_reminder_days_must_be_below_the_link_ttl(env, days, ttl, bad):
    text = error_of(env, FBLINK_REMINDER_DAYS=days, FBLINK_LINK_TTL_DAYS=ttl)
    assert text.startswith("FBLINK_REMINDER_DAYS:") and "FBLINK_LINK_TTL_DAYS" in text
    assert f"({ttl}); {bad} " in text


def test_reminder_days_just_below_the_ttl_are_fine(env):
    env.setenv("FBLINK_REMINDER_DAYS", "13,7")
    env.setenv("FBLINK_LINK_TTL_DAYS", "14")
    s = load_settings()
    assert s.reminder_days == (13, 7) and s.fblink_link_ttl_days == 14


@pytest.mark.parametrize("ttl", ["91", "365", "3650"])
def test_link_ttl_cannot_outlive_facebooks_data_access_window(env, ttl):
    text = error_of(env, FBLINK_LINK_TTL_DAYS=ttl)
    assert text.startswith("FBLINK_LINK_TTL_DAYS: must be at most 90 days") and "data access" in text


def test_link_ttl_of_exactly_90_days_is_the_default_and_allowed(env):
    assert load_settings().fblink_link_ttl_days == 90
    env.setenv("FBLINK_LINK_TTL_DAYS", "90")
    assert load_settings().fblink_link_ttl_days == 90


def test_several_secret_keys_are_accepted_and_a_bad_one_is_named_by_position(env):
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env.setenv("FBLINK_SECRET_KEY", f"{new}, {old}")
    assert load_settings().fblink_secret_key == f"{new}, {old}"
    text = error_of(env, FBLINK_SECRET_KEY=f"{new},{old[:-4]}")
    assert text.startswith("FBLINK_SECRET_KEY: key 2 of 2 is not a Fernet key") and old[:-4] not in text
    assert error_of(env, FBLINK_SECRET_KEY=f"{new},{new}") == "FBLINK_SECRET_KEY: lists the same key twice"
    assert error_of(env, FBLINK_SECRET_KEY=" , ").startswith("FBLINK_SECRET_KEY: must be a Fernet key")


def test_metrics_token_must_be_long_enough(env):
    assert load_settings().fblink_metrics_token is None
    assert error_of(env, FBLINK_METRICS_TOKEN="short").startswith("FBLINK_METRICS_TOKEN: must be at least 16")
    assert "FBLINK_METRICS_TOKEN" in error_of(env, FBLINK_METRICS_TOKEN="has a space in it, long")
    env.setenv("FBLINK_METRICS_TOKEN", "s3cret-scrape-token-0123")
    assert load_settings().fblink_metrics_token == "s3cret-scrape-token-0123"


def test_serve_refuses_to_start_naming_both_variables(tmp_path):
    env = clean_env(**BASE_ENV, FBLINK_REMINDER_DAYS="30,7", FBLINK_LINK_TTL_DAYS="30")
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert out.returncode == 2
    assert "FBLINK_REMINDER_DAYS" in out.stderr and "FBLINK_LINK_TTL_DAYS" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("budget,minutes", [("900", "15"), ("3600", "5"), ("61", "1")])
def test_probe_budget_must_fit_inside_the_sweep_interval(env, budget, minutes):
    text = error_of(env, FBLINK_PROBE_BUDGET=budget, FBLINK_SWEEP_MINUTES=minutes)
    assert "FBLINK_PROBE_BUDGET" in text and "FBLINK_SWEEP_MINUTES" in text
    assert f"({minutes} min)" in text


def test_a_probe_budget_just_inside_the_interval_is_fine(env):
    env.setenv("FBLINK_PROBE_BUDGET", "59")
    env.setenv("FBLINK_SWEEP_MINUTES", "1")
    s = load_settings()
    assert s.fblink_probe_budget == 59 and s.fblink_sweep_minutes == 1
