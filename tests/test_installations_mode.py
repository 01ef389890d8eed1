"""Distributed mode: chosen by configuration, installed through "Add to Slack" over HTTP.

The settings tests pin which variables choose which mode (and that both at once are refused,
saying why). The HTTP test walks an install as a browser does, against the fake Slack (Bolt's
install page, the fake's authorize page, the redirect back), then sends signed commands from
the installed workspace and from one that never installed fblink.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from bot.fakes import slack_events as se
from bot.fakes.slack_oauth import Installer
from bot.oauth import BOT_SCOPES
from bot.settings import SettingsError, load_settings
from tests.conftest import ENTERPRISE, START, VONAGE_KEY, Running
from tests.sweep_helpers import DAY, run_sweep
from tests.test_store_settings_cli import BASE_ENV, clean_env, env  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTED = {"slack_bot_token": None, "slack_client_id": "1111.2222", "slack_client_secret": "fake-client-secret"}


# -- settings ---------------------------------------------------------------------------------
def test_a_bot_token_alone_is_single_workspace_mode(env) -> None:  # type: ignore[no-untyped-def]
    s = load_settings()
    assert s.slack_bot_token and not s.distributed


def test_client_id_and_secret_alone_are_distributed_mode(env) -> None:  # type: ignore[no-untyped-def]
    env.delenv("SLACK_BOT_TOKEN")
    env.setenv("SLACK_CLIENT_ID", "1111.2222")
    env.setenv("SLACK_CLIENT_SECRET", "s3cret")
    s = load_settings()
    assert s.distributed and s.slack_bot_token is None


def test_both_modes_at_once_are_refused_saying_why(env) -> None:  # type: ignore[no-untyped-def]
    env.setenv("SLACK_CLIENT_ID", "1111.2222")
    env.setenv("SLACK_CLIENT_SECRET", "s3cret")
    with pytest.raises(SettingsError) as info:
        load_settings()
    text = str(info.value)
    assert "SLACK_BOT_TOKEN" in text and "SLACK_CLIENT_ID" in text and "choose one" in text
    assert "s3cret" not in text and "\n" not in text


@pytest.mark.parametrize(
    ("present", "missing"), [("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"), ("SLACK_CLIENT_SECRET", "SLACK_CLIENT_ID")]
)
def test_half_a_client_is_refused_naming_the_other_half(env, present: str, missing: str) -> None:  # type: ignore[no-untyped-def]
    env.delenv("SLACK_BOT_TOKEN")
    env.setenv(present, "1111.2222")
    with pytest.raises(SettingsError, match=f"^{missing}: missing"):
        load_settings()


def test_neither_mode_is_refused_naming_both(env) -> None:  # type: ignore[no-untyped-def]
    env.delenv("SLACK_BOT_TOKEN")
    with pytest.raises(SettingsError, match=r"SLACK_BOT_TOKEN: missing.*SLACK_CLIENT_ID"):
        load_settings()


def test_distributed_mode_refuses_socket_mode(env) -> None:  # type: ignore[no-untyped-def]
    env.delenv("SLACK_BOT_TOKEN")
    env.setenv("SLACK_CLIENT_ID", "1111.2222")
    env.setenv("SLACK_CLIENT_SECRET", "s3cret")
    env.setenv("SLACK_APP_TOKEN", "xapp-1-A1-abc")
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN"):
        load_settings()


def test_the_install_asks_for_the_manifests_bot_scopes() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert set(BOT_SCOPES) == set(manifest["oauth_config"]["scopes"]["bot"])


# -- an install over HTTP ---------------------------------------------------------------------
def walk_install(bot: Running) -> tuple[httpx.Response, str, str]:
    """A browser: fblink's "Add to Slack" page, Slack's authorize page, back to fblink's redirect."""
    browser = httpx.Client(timeout=10)
    page = browser.get(bot.url + "/slack/install")
    assert page.status_code == 200 and "Add to Slack" in page.text
    link = re.search(r'href="([^"]+/oauth/v2/authorize[^"]*)"', page.text)
    assert link is not None, page.text
    allow = browser.get(link.group(1).replace("&amp;", "&"), follow_redirects=False)
    assert allow.status_code == 302
    back = urlsplit(allow.headers["location"])
    assert back.path == "/slack/oauth_redirect"
    # fblink's public URL is https://fblink.test: the browser lands on this test's server instead, and
    # hands back the state cookie the install page set (Secure: httpx keeps it for https only)
    cookie = page.headers["set-cookie"].split(";")[0]
    assert "Secure" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    redirect = f"{bot.url}{back.path}?{back.query}"
    return browser.get(redirect, headers={"Cookie": cookie}), redirect, cookie


def help_answer(bot: Running, team: str) -> Any:
    r = bot.command("help", team=team)
    assert r.status_code == 200, r.text
    return r.json()


def test_an_install_walked_over_http_then_a_command_from_that_workspace_is_answered(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    bot = start_app(**DISTRIBUTED)
    before = help_answer(bot, "T0NEW")
    assert "not installed" in before["text"]  # nobody installed fblink there yet

    slack.oauth.install_as(Installer(team_id="T0NEW", team_name="New Co", enterprise_id=ENTERPRISE, user_id="U0INS"))
    done, _, _ = walk_install(bot)
    assert done.status_code == 200, done.text
    rows = bot.store.select("SELECT enterprise_id, team_id, team_name, user_id, bot_token_enc FROM slack_installations")
    assert len(rows) == 1 and rows[0]["team_id"] == "T0NEW" and rows[0]["enterprise_id"] == ENTERPRISE
    live = slack.oauth.live_tokens()
    assert len(live) == 1 and live[0].value not in str(rows)  # the token Slack issued, stored encrypted
    assert bot.store.select("SELECT * FROM slack_install_states") == []  # the state was used up

    auth_tests = len(slack.calls(path="/api/auth.test"))  # Bolt's install asks auth.test once for the bot id
    for _ in range(5):
        answer = help_answer(bot, "T0NEW")
        assert "not installed" not in str(answer) and answer.get("blocks")
    assert len(slack.calls(path="/api/auth.test")) == auth_tests  # authorize made no round trip
    assert "not installed" in help_answer(bot, "T0OTHER")["text"]  # another workspace is still refused


def test_a_replayed_redirect_installs_nothing(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    bot = start_app(**DISTRIBUTED)
    slack.oauth.install_as(Installer(team_id="T0NEW", enterprise_id=ENTERPRISE))
    done, redirect, cookie = walk_install(bot)
    assert done.status_code == 200
    bot.store.execute("DELETE FROM slack_installations")
    exchanges = len(slack.oauth.exchanges)
    replay = httpx.get(redirect, headers={"Cookie": cookie}, timeout=10)  # the same state, cookie and code
    assert replay.status_code == 401 and "invalid_state" in replay.text, replay.text
    forged = httpx.get(bot.url + "/slack/oauth_redirect?code=x&state=forged", headers={"Cookie": cookie}, timeout=10)
    assert forged.status_code in (400, 401)
    assert len(slack.oauth.exchanges) == exchanges  # no code reached Slack
    assert bot.store.select("SELECT id FROM slack_installations") == []


def test_single_workspace_mode_has_no_install_routes(bot: Running) -> None:
    assert httpx.get(bot.url + "/slack/install", timeout=10).status_code == 404
    assert "not installed" not in str(help_answer(bot, "T0001"))


def test_each_workspace_is_spoken_to_with_its_own_token_by_handlers_and_the_sweep(start_app, slack) -> None:  # type: ignore[no-untyped-def]
    """Two workspaces installed: App Home in B is published with B's token, and a reminder due in A is
    posted by a sweep (the worker's path: fresh services, no Bolt) with A's token, never the other's."""
    slack.oauth.client_id, slack.oauth.client_secret = (
        DISTRIBUTED["slack_client_id"],
        DISTRIBUTED["slack_client_secret"],
    )
    bot = start_app(**DISTRIBUTED)
    for team in ("T0AAA", "T0BBB"):
        slack.oauth.install_as(Installer(team_id=team, team_name=f"{team} Co", user_id="U0INS"))
        assert walk_install(bot)[0].status_code == 200
    token = {t.installer.team_id: t.value for t in slack.oauth.live_tokens()}
    assert set(token) == {"T0AAA", "T0BBB"} and token["T0AAA"] != token["T0BBB"]

    body = se.app_home_opened(user_id="U0B", channel_id="D0B", team_id="T0BBB")
    assert bot.post_signed(json.dumps(body).encode(), "application/json").status_code == 200
    deadline = time.monotonic() + 10
    while not (published := slack.calls(path="/api/views.publish")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r.headers["authorization"] for r in published] == ["Bearer " + token["T0BBB"]]
    assert slack.home_of("U0B") is not None  # B's person sees a Home

    bot.store.upsert_link(
        "T0AAA",
        "PAGE_A",
        now=START,
        page_name="Shop A",
        api_key=VONAGE_KEY,
        linked_by="U0A",
        channel_id="C0AOPS",
        expires_at=START + 5 * DAY,
        status="active",
        next_due_at=START - 10,
    )
    run_sweep(bot, START)
    posted = [r for r in slack.calls(path="/api/chat.postMessage") if "C0AOPS" in str(r.params)]
    assert posted and {r.headers["authorization"] for r in posted} == {"Bearer " + token["T0AAA"]}
    assert any("Shop A" in str(m.get("text")) for m in slack.messages if m["channel"] == "C0AOPS")
