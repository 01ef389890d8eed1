"""Issue: the bot, Facebook login and the user's Pages, end to end over real HTTP."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from handlers.commands import SUBCOMMANDS
from tests.conftest import APP_ID, BOT_TOKEN, sign
from tests.flows import button_urls, buttons, confirm_login, log_in, login_state, query, text_of

PAGES = [
    {"id": "101", "name": "Acme <Coffee> & Tea", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "102", "name": "Zürich Bäckerei ☕", "category": "Bakery", "tasks": ["MESSAGING"]},
]


# -- help and request checking -----------------------------------------------------


@pytest.mark.parametrize("text", ["", "help", "frobnicate", "HELP", "  "])
def test_help_lists_every_subcommand(bot, text):
    r = bot.command(text)
    assert r.status_code == 200
    body = r.json()
    assert body["response_type"] == "ephemeral"
    for sub in ("login", "logout", "pages", "link", "unlink", "relink", "status", "remind", "sync", "keys"):
        assert f"/fblink {sub}" in text_of(body)
    assert len(SUBCOMMANDS) >= 10


def test_unsigned_and_badly_signed_requests_are_401(bot):
    body = b"command=%2Ffblink&text=help&team_id=T0001&user_id=U1"
    r = bot.http.post(
        bot.url + "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 401
    assert bot.post_signed(body, "application/x-www-form-urlencoded", signature="v0=deadbeef").status_code == 401
    old = str(int(time.time()) - 6 * 60)
    assert bot.post_signed(body, "application/x-www-form-urlencoded", timestamp=old).status_code == 401
    wrong_secret = sign(body, str(int(time.time())), secret="not-the-secret")
    assert bot.post_signed(body, "application/x-www-form-urlencoded", signature=wrong_secret).status_code == 401
    assert not bot.slack.responses


def test_garbage_and_non_utf8_bodies_never_5xx(bot):
    r = bot.post_signed(b"\xff\xfe\x00garbage", "application/x-www-form-urlencoded")
    assert r.status_code == 400
    r = bot.post_signed(b"\xff\xfe", "application/x-www-form-urlencoded", signature="v0=00")
    assert r.status_code == 401
    for junk in (b"", b"%%%", b"payload=not-json", b"{]", b"payload=%7B%7D"):
        r = bot.post_signed(junk, "application/x-www-form-urlencoded")
        assert r.status_code in (400, 404), (junk, r.status_code, r.text)
    # nothing reached a listener: no answer, no message, no view, no row
    assert not bot.slack.responses and not bot.slack.messages and not bot.slack.views
    assert bot.store.one("SELECT COUNT(*) AS n FROM audit")["n"] == 0


def test_long_argument_is_handled(bot):
    r = bot.command("link " + "x" * 3000)
    assert r.status_code == 200
    answer = r.json()  # not logged in: offered a login link in the ack itself, nothing linked
    assert "not logged in to Facebook" in answer["text"] and button_urls(answer)
    assert bot.store.list_links("T0001") == []


def test_healthz_and_metrics(bot):
    r = bot.http.get(bot.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True, "database": "ok"}
    bot.command("help")
    m = bot.http.get(bot.url + "/metrics")
    assert m.status_code == 200
    assert 'fblink_slack_requests_total{command="help",kind="command"}' in m.text


# -- login ----------------------------------------------------------------------------


def test_login_button_leads_to_the_dialog(bot):
    r = bot.command("login")
    payload = r.json()
    assert payload["response_type"] == "ephemeral"
    assert any(b["text"]["text"] == "Continue with Facebook" for b in buttons(payload))
    (confirm_url,) = button_urls(payload)
    assert confirm_url.startswith("https://fblink.test/facebook/login?state=")
    url = confirm_login(bot, confirm_url)
    assert url.startswith("https://www.facebook.test/v25.0/dialog/oauth?")
    q = query(url)
    assert q["client_id"] == APP_ID
    assert q["redirect_uri"] == "https://fblink.test/facebook/callback"
    assert q["response_type"] == "code"
    assert q["scope"] == "pages_show_list,pages_messaging,pages_manage_metadata,business_management"
    assert len(q["state"]) >= 32
    assert q["state"] != login_state(bot)  # random each time


def test_login_with_config_id(start_app):
    bot = start_app(facebook_login_config_id="cfg-42")
    (url,) = button_urls(bot.command("login").json())
    q = query(confirm_login(bot, url))
    assert q["config_id"] == "cfg-42" and "scope" not in q


def test_full_login_stores_encrypted_token_and_tells_user(bot, graph):
    r = log_in(bot, graph, pages=PAGES)
    assert "return to Slack" in r.text
    dm = bot.slack.wait_message("Connected to Facebook as")
    assert dm["channel"] == "D1"  # U1's own DM with fblink (the fake opens D<id> for U<id>)
    assert "Ada Lovelace" in text_of(dm)
    login = bot.store.get_login("T0001", "U1")
    assert login is not None and login.fb_name == "Ada Lovelace"
    assert login.data_access_expires_at
    assert set(login.scopes) >= {"pages_show_list", "pages_messaging"}
    # Graph was called in order, with appsecret_proof on user-token calls
    paths = [c.path for c in graph.requests]
    assert paths[:2] == ["/v25.0/oauth/access_token", "/v25.0/oauth/access_token"]
    assert "/v25.0/debug_token" in paths and "/v25.0/me" in paths
    me = graph.calls("GET", "/v25.0/me")[0]
    assert me.query["appsecret_proof"] == graph.appsecret_proof(me.query["access_token"])
    # the token is not in the database file in clear
    raw = b"".join(p.read_bytes() for p in Path(bot.services.settings.fblink_database).parent.glob("fblink.db*"))
    assert login.token.encode() not in raw


def test_callback_rejects_missing_forged_reused_and_expired_state(bot, graph):
    graph.add_user("FB1", "Ada")
    assert bot.http.get(bot.url + "/facebook/callback").status_code == 400
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": "forged"})
    assert r.status_code == 400 and "/fblink login" in r.text
    assert graph.requests == []  # no call to Facebook before the state checks out
    state = login_state(bot)
    assert (
        bot.http.get(
            bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": state}
        ).status_code
        == 200
    )
    replay = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": state})
    assert replay.status_code == 400
    late = login_state(bot)
    bot.clock.advance(601)
    n = len(graph.requests)
    assert (
        bot.http.get(
            bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": late}
        ).status_code
        == 400
    )
    assert len(graph.requests) == n


def test_state_is_bound_to_the_user_who_asked(bot, graph):
    graph.add_user("FB2", "Grace")
    state = login_state(bot, user="U2")
    bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB2"), "state": state})
    assert bot.store.get_login("T0001", "U2").fb_name == "Grace"
    assert bot.store.get_login("T0001", "U1") is None


def test_access_denied_shows_page_and_tells_slack(bot, graph):
    state = login_state(bot)
    r = bot.http.get(
        bot.url + "/facebook/callback",
        params={
            "error": "access_denied",
            "error_reason": "user_denied",
            "error_description": "Permissions error",
            "state": state,
        },
    )
    assert r.status_code == 200 and "cancelled" in r.text
    assert bot.slack.wait_message("You cancelled the Facebook login")["channel"] == "D1"
    assert graph.requests == []


def test_unknown_code_is_a_4xx_page(bot, graph):
    state = login_state(bot)
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": "AQnot-a-real-code", "state": state})
    assert r.status_code == 400
    assert "/fblink login" in r.text
    assert bot.store.get_login("T0001", "U1") is None


def test_whoami_names_the_connected_account_and_offers_disconnect(bot, graph):
    assert "No Facebook account is connected" in bot.command("whoami").text
    log_in(bot, graph, pages=PAGES, name="Ada Lovelace", data_access_expires_at=1_800_000_000)
    answer = bot.command("whoami").json()
    assert "Connected to Facebook as *Ada Lovelace* (`FB1`)" in text_of(answer) and "<!date^1800000000^" in text_of(
        answer
    )
    assert [b["action_id"] for b in buttons(answer)] == ["login_disconnect"]
    assert "No Facebook account is connected" in bot.command("whoami", user="U2").text  # bound to U1 only


def test_declined_permission_offers_rerequest(bot, graph):
    log_in(bot, graph, declined={"pages_messaging"})
    dm = bot.slack.wait_message("pages_messaging")
    (url,) = button_urls(dm)
    assert query(confirm_login(bot, url))["auth_type"] == "rerequest"


def test_graph_busy_during_login_says_so(bot, graph):
    graph.add_user("FB1", "Ada")
    state = login_state(bot)
    graph.fail("GET /v25.0/oauth/access_token", status=503, times=10)
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": state})
    assert r.status_code == 503 and "busy" in r.text
    assert bot.slack.wait_message("Facebook is busy")["channel"] == "D1"
    assert len(graph.calls("GET", "/v25.0/oauth/access_token")) == 3  # retried per policy


def test_graph_rate_limit_is_retried_during_login(bot, graph):
    graph.add_user("FB1", "Ada")
    state = login_state(bot)
    graph.fail(
        "GET /v25.0/me",
        status=400,
        times=1,
        body={
            "error": {
                "message": "(#4) Application request limit reached",
                "type": "OAuthException",
                "code": 4,
                "fbtrace_id": "x",
            }
        },
    )
    graph.fail("GET /v25.0/debug_token", status=429, headers={"Retry-After": "0"}, times=1)
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": state})
    assert r.status_code == 200
    assert bot.store.get_login("T0001", "U1") is not None


def test_no_secret_in_logs(bot, graph, caplog):
    caplog.set_level(logging.DEBUG)
    log_in(bot, graph, pages=PAGES)
    bot.command("pages")
    bot.slack.wait_response("Acme")
    login = bot.store.get_login("T0001", "U1")
    text = caplog.text
    assert login.token not in text
    assert BOT_TOKEN not in text
    for p in bot.store.get_pages("T0001", "U1"):
        assert p.token not in text


# -- pages -----------------------------------------------------------------------------


def test_pages_requires_login(bot):
    r = bot.command("pages")  # the login prompt is the ack itself: no "working" line before it
    assert r.status_code == 200 and "Fetching" not in r.text and "not logged in to Facebook" in r.text
    assert button_urls(r.json())


def test_pages_lists_escaped_names_categories_and_status(bot, graph):
    log_in(bot, graph, pages=PAGES)
    bot.command("pages")
    resp = bot.slack.wait_response("Acme")
    blob = text_of(resp)
    assert "Acme &lt;Coffee&gt; &amp; Tea" in blob
    assert "<Coffee>" not in blob
    assert "Zürich Bäckerei ☕" in blob
    assert "`101`" in blob and "Cafe" in blob and "not linked" in blob
    call = graph.calls("GET", "/v25.0/me/accounts")[0]
    assert call.query["fields"] == "id,name,category,tasks,access_token"
    assert call.query["appsecret_proof"] == graph.appsecret_proof(call.query["access_token"])
    # Page tokens are stored encrypted
    stored = bot.store.get_pages("T0001", "U1")
    assert {p.page_id for p in stored} == {"101", "102"}


def test_many_pages_follow_cursors_and_paginate_with_next(bot, graph):
    many = [{"id": str(1000 + i), "name": f"Page {i:03d}", "category": "Shop", "tasks": ["MANAGE"]} for i in range(230)]
    log_in(bot, graph, pages=many)
    bot.command("pages")
    first = bot.slack.wait_response("Page 000")
    assert "(230)" in text_of(first)
    assert len(graph.calls("GET", "/v25.0/me/accounts")) == 3  # limit=100: 100 + 100 + 30
    assert len(first["blocks"]) <= 50
    nxt = [b for b in buttons(first) if b["action_id"] == "pages_next"]
    assert nxt and nxt[0]["value"] == "10"
    bot.slack.responses.clear()
    r = bot.click("pages_next", "10")
    assert r.status_code == 200
    second = bot.slack.wait_response("Page 010")
    assert second.get("replace_original") is True
    assert "Page 009" not in text_of(second)
    # a forged offset is clamped, never a crash
    bot.slack.responses.clear()
    bot.click("pages_next", "99999")
    assert "Page 229" in text_of(bot.slack.wait_response("Page 229"))


def test_dead_token_offers_new_login(bot, graph):
    log_in(bot, graph, pages=PAGES)
    graph.kill_token("FB1", subcode=460)
    bot.command("pages")
    resp = bot.slack.wait_response("expired or was revoked")
    assert button_urls(resp)


def test_graph_busy_for_pages_says_facebook_is_busy(bot, graph):
    log_in(bot, graph, pages=PAGES)
    graph.fail(
        "GET /v25.0/me/accounts",
        status=400,
        times=10,
        body={
            "error": {
                "message": "(#17) User request limit reached",
                "type": "OAuthException",
                "code": 17,
                "fbtrace_id": "y",
            }
        },
    )
    bot.command("pages")
    bot.slack.wait_response("Facebook is busy")


def test_logout_forgets_tokens(bot, graph):
    log_in(bot, graph, pages=PAGES)
    bot.command("pages")
    bot.slack.wait_response("Acme")
    r = bot.command("logout")
    assert "deleted your Facebook login" in r.text
    assert bot.store.get_login("T0001", "U1") is None
    assert bot.store.get_pages("T0001", "U1") == []
    assert "not logged in" in bot.command("logout").text
