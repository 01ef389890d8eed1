"""Socket Mode: with SLACK_APP_TOKEN set, Slack traffic arrives over a WebSocket.

The real app (create_app + uvicorn) talks to a fake Slack that serves
apps.connections.open and the WebSocket; the HTTP port keeps only the
Facebook callback, health and metrics routes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.app import FblinkApp, create_app
from bot.fakes import slack_events as se
from bot.fakes import slack_payloads as sp
from bot.fakes.graph import FakeGraph
from bot.fakes.slack import FakeSlack
from bot.fakes.socket_mode import FakeSocketMode
from tests.conftest import APP_ID, BOT_TOKEN, ENTERPRISE, TEAM, serve
from tests.flows import browser, button_urls, buttons, confirm_login, query, text_of
from tests.store_sync import for_app

APP_TOKEN = "xapp-1-A0001-test"


@dataclass
class SocketBot:
    app: FblinkApp
    url: str
    http: httpx.Client
    socket: FakeSocketMode
    slack: FakeSlack
    _triggers = itertools.count(1)

    def command(self, text: str, *, user: str = "U1", channel: str = "C1", response: str = "r") -> dict[str, Any]:
        """Send `/fblink <text>` as a slash_commands envelope; return the app's ack message."""
        payload = sp.slash_command(
            text=text,
            team_id=TEAM,
            user_id=user,
            channel_id=channel,
            enterprise_id=ENTERPRISE,
            enterprise_name=sp.HOSTILE["enterprise_name"],
            response_url=self.slack.response_url(response, channel, user),
            trigger_id=self.slack.issue_trigger(f"{next(self._triggers)}.{int(time.time())}.a1b2c3", user),
        )
        return self.send("slash_commands", payload)

    def send(self, type: str, payload: dict[str, Any]) -> dict[str, Any]:
        envelope_id = self.socket.send_envelope(type, payload)
        ack = self.socket.wait_ack(envelope_id, timeout=5)
        assert ack["envelope_id"] == envelope_id
        return ack


@pytest.fixture
def socket_slack(slack) -> Iterator[FakeSocketMode]:  # type: ignore[no-untyped-def]
    fake = FakeSocketMode(slack, app_token=APP_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def socket_bot(make_settings, socket_slack, slack, clock) -> Iterator[SocketBot]:  # type: ignore[no-untyped-def]
    # Depends on socket_slack, so the app is stopped before the fake goes away.
    settings = make_settings(
        slack_app_token=APP_TOKEN,
        slack_signing_secret=None,
        slack_api_url=socket_slack.api_url,
    )
    app = create_app(settings, clock=clock, scheduler=False)
    server, thread, url = serve(app)
    client = browser(timeout=5)  # keeps fblink's login cookie, as a browser does
    try:
        yield SocketBot(app=app, url=url, http=client, socket=socket_slack, slack=slack)
    finally:
        client.close()
        server.should_exit = True
        thread.join(10)
        assert not thread.is_alive(), "the app did not shut down"


def test_settings_need_no_signing_secret_in_socket_mode(socket_bot):
    settings = socket_bot.app.services.settings
    assert settings.socket_mode
    assert settings.slack_signing_secret is None


def test_app_opens_the_socket_with_the_app_token(socket_bot):
    # Start-up waited for the connection: apps.connections.open went to slack_api_url with the xapp- token.
    socket_bot.socket.wait_connected(timeout=5)
    assert socket_bot.socket.connections == 1
    # two opens: fblink checks the app token once at start-up (so a bad token fails fast), then the socket client
    assert len(socket_bot.socket.opens) == 2
    assert all(o["authorization"] == f"Bearer {APP_TOKEN}" for o in socket_bot.socket.opens)


def test_help_is_answered_in_the_socket_ack(socket_bot):
    ack = socket_bot.command("help")
    payload = ack["payload"]
    assert payload["response_type"] == "ephemeral"
    for sub in ("login", "logout", "pages", "link", "status", "remind", "keys"):
        assert f"/fblink {sub}" in text_of(payload)
    # Bolt authorized with the bot token against the same fake Web API
    assert any(
        r.path == "/api/auth.test" and r.headers.get("authorization") == f"Bearer {BOT_TOKEN}"
        for r in socket_bot.slack.requests
    )
    # socket traffic is counted and timed like HTTP traffic
    metrics = socket_bot.http.get(socket_bot.url + "/metrics").text
    assert 'fblink_slack_requests_total{command="help",kind="command"} 1.0' in metrics


def test_login_button_comes_back_over_the_socket_and_callback_is_served(socket_bot, graph: FakeGraph):
    ack = socket_bot.command("login")
    payload = ack["payload"]
    assert any(b["text"]["text"] == "Continue with Facebook" for b in buttons(payload))
    (confirm_url,) = button_urls(payload)
    url = confirm_login(socket_bot, confirm_url)  # the browser half runs over HTTP
    assert url.startswith("https://www.facebook.test/v25.0/dialog/oauth?")
    q = query(url)
    assert q["client_id"] == APP_ID
    state = q["state"]
    assert len(state) >= 32

    # The browser half still runs over HTTP, and the DM goes out through the Web API.
    graph.add_user("FB1", "Ada Lovelace", pages=[])
    r = socket_bot.http.get(
        socket_bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": state}
    )
    assert r.status_code == 200, r.text
    dm = socket_bot.slack.wait_message("Connected to Facebook as", timeout=5)
    assert "Ada Lovelace" in text_of(dm)
    login = for_app(socket_bot.app).get_login(TEAM, "U1")
    assert login is not None and login.fb_name == "Ada Lovelace"


def test_slow_command_acks_then_answers_on_response_url(socket_bot):
    ack = socket_bot.command("sync", response="sync")
    assert "Syncing with Vonage" in text_of(ack["payload"])
    resp = socket_bot.slack.wait_response("Synced with Vonage", timeout=5)
    assert resp["url_name"] == "sync"
    assert resp["replace_original"] is True  # the answer takes the "working" line's place


def test_a_command_that_needs_a_login_answers_with_the_prompt_in_the_ack(socket_bot):
    """No "working" line before a refusal: without a Facebook login the ack is the login prompt."""
    ack = socket_bot.command("pages", response="pages")
    assert "Fetching" not in text_of(ack["payload"])
    assert "not logged in to Facebook" in text_of(ack["payload"]) and button_urls(ack["payload"])


def test_payload_named_places_and_text_work_over_the_socket(socket_bot):
    """Socket Mode payloads are JSON already; the word "payload" in names or text changes nothing."""
    ack = socket_bot.command("unlink payload-pros", response="sock")
    assert "Unlinking" in text_of(ack["payload"])
    socket_bot.slack.wait_response("payload-pros", timeout=5)


def test_button_click_over_the_socket(socket_bot):
    payload = sp.block_actions(
        action_id="pages_next",
        value="0",
        user_id="U1",
        response_url=socket_bot.slack.response_url("click", "C1", "U1", "1700000000.000100"),
        enterprise_id=ENTERPRISE,
        enterprise_name="payload & co",
    )
    socket_bot.slack.issue_trigger(payload["trigger_id"], "U1")
    ack = socket_bot.send("interactive", payload)
    assert not ack.get("payload")  # a button click is acked empty
    resp = socket_bot.slack.wait_for(
        lambda: [r for r in socket_bot.slack.responses if r["url_name"] == "click"], timeout=5
    )
    assert "/fblink pages" in text_of(resp) and resp[0]["replace_original"] is True  # no Pages stored for U1


def test_app_home_opened_over_the_socket_publishes_the_home_tab(socket_bot):
    socket_bot.send("events_api", se.app_home_opened(user_id="U1", enterprise_id=ENTERPRISE))
    home = socket_bot.slack.wait_for(lambda: socket_bot.slack.home_of("U1"), timeout=5)
    assert home["type"] == "home" and home["id"] and home["hash"]


def test_http_port_serves_health_and_callback_but_not_slack_events(socket_bot):
    r = socket_bot.http.get(socket_bot.url + "/healthz")
    assert r.status_code == 200 and r.json()["ok"] is True
    r = socket_bot.http.post(
        socket_bot.url + "/slack/events",
        content=b"command=%2Ffblink&text=help",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code in (404, 405)
    r = socket_bot.http.get(socket_bot.url + "/facebook/callback", params={"state": "nope", "code": "x"})
    assert r.status_code != 404  # the route exists (an unknown state is refused by the handler)
    # nothing the HTTP request carried reached Slack
    assert not socket_bot.slack.responses


def test_app_shuts_down_and_closes_the_socket(make_settings, socket_slack, clock):
    settings = make_settings(slack_app_token=APP_TOKEN, slack_signing_secret=None, slack_api_url=socket_slack.api_url)
    app = create_app(settings, clock=clock, scheduler=False)
    server, thread, _ = serve(app)
    socket_slack.wait_connected(timeout=5)
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()
    socket_slack.wait_disconnected(timeout=5)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # uvicorn exits its thread
def test_a_rejected_app_token_fails_start_up_instead_of_retrying_forever(make_settings, socket_slack, clock):
    settings = make_settings(
        slack_app_token="xapp-1-A0001-revoked", slack_signing_secret=None, slack_api_url=socket_slack.api_url
    )
    app = create_app(settings, clock=clock, scheduler=False)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        serve(app)
    assert time.monotonic() - started < 10
    assert socket_slack.connections == 0  # no socket was ever opened with the bad token
