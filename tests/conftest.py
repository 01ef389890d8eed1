"""Fixtures: fake Slack/Graph/Vonage servers and the real app on real ports.

Nothing here mocks fblink's own code: the app is built by ``create_app`` from
Settings whose upstream URLs point at the fakes, served by uvicorn, and driven
with requests signed exactly as Slack signs them.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from bot.app import FblinkApp, create_app
from bot.clock import FixedClock
from bot.fakes import slack_events as se
from bot.fakes import slack_payloads as sp
from bot.fakes.graph import FakeGraph
from bot.fakes.slack import FakeSlack
from bot.fakes.slack_limits import MESSAGE_BLOCKS, check_blocks
from bot.fakes.vonage import FakeVonage
from bot.settings import Settings
from tests import pg
from tests.flows import browser
from tests.store_sync import SyncStore, for_app

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-token"
TEAM = "T0001"
APP_ID = "123456"
APP_SECRET = "fb-app-secret"
VONAGE_KEY = "abcd1234"
VONAGE_SECRET = "vonage-secret-1"
ENTERPRISE = "E0001"  # an Enterprise Grid org, so enterprise_id/enterprise_name are sent too
START = 1_790_000_000  # 2026-09-21T15:33:20Z: a fixed "now" for the app's clock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body: bytes, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    return sp.sign(body, timestamp, secret)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, team_id=TEAM).start()
    yield fake
    fake.stop()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph(app_id=APP_ID, app_secret=APP_SECRET, api_version="v25.0")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def vonage() -> Iterator[FakeVonage]:
    fake = FakeVonage()
    fake.start()
    fake.add_key(VONAGE_KEY, VONAGE_SECRET)
    yield fake
    fake.stop()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def pytest_report_header(config: pytest.Config) -> str:
    engine = pg.engine_under_test()
    where = f" at {pg.base_url()}" if engine == "postgresql" else ""
    return f"fblink store engine: {engine}{where} (FBLINK_TEST_ENGINE)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: tests of SQLite's own behaviour (WAL, the file), not run on PostgreSQL"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if pg.engine_under_test() != "postgresql":
        return
    skip = pytest.mark.skip(reason="SQLite's own behaviour: runs in the SQLite suite")
    for item in items:
        if "sqlite_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def database(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Where this test's store lives: a SQLite file, or (FBLINK_TEST_ENGINE=postgresql) a fresh,
    migrated PostgreSQL schema."""
    if pg.engine_under_test() == "sqlite":
        yield str(tmp_path / "fblink.db")
        return
    with pg.fresh_schema() as url:
        pg.migrate(url)
        yield url


def settings_for(
    db_path: str, slack: FakeSlack, graph: FakeGraph, vonage: FakeVonage, *, secret_key: str, **overrides: Any
) -> Settings:
    """Settings whose upstreams are the fakes; quick retries so fault tests stay fast. ``db_path``
    is a SQLite path or a PostgreSQL URL (the ``database`` fixture gives the one under test)."""
    values: dict[str, Any] = dict(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.url + "/api/",
        facebook_app_id=APP_ID,
        facebook_app_secret=APP_SECRET,
        facebook_api_version="v25.0",
        facebook_graph_url=graph.url,
        facebook_login_url="https://www.facebook.test",
        vonage_api_key=VONAGE_KEY,
        vonage_api_secret=VONAGE_SECRET,
        vonage_api_url=vonage.url,
        fblink_public_url="https://fblink.test",
        fblink_database=db_path if not db_path.startswith("postgresql://") else "unused.db",
        fblink_database_url=db_path if db_path.startswith("postgresql://") else None,
        fblink_secret_key=secret_key,
        fblink_admins="UADMIN",
        fblink_retry_attempts=3,
        fblink_retry_wait=0.01,
        fblink_retry_total=5,
        fblink_http_timeout=2,
        fblink_channel_gap=0,  # no pause between one channel's reminder posts; tests/test_sweep_delivery.py sets one
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def make_settings(database, slack, graph, vonage):  # type: ignore[no-untyped-def]
    key = Fernet.generate_key().decode()

    def build(**overrides: Any) -> Settings:
        return settings_for(database, slack, graph, vonage, secret_key=key, **overrides)

    return build


def _check_ack_blocks(response: httpx.Response) -> None:
    """An ack body with blocks must be one Slack accepts (slack_sdk's models, via the fake's checks)."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return
    body = response.json()
    if isinstance(body, dict) and "blocks" in body:
        problems = check_blocks(body["blocks"], MESSAGE_BLOCKS)
        assert not problems, f"Slack would refuse this ack: {problems}"


@dataclass
class Running:
    """The app on a real port, driven with requests built as Slack builds them (bot.fakes.slack_payloads).

    Every command and interaction carries the full field set with hostile names (team domain and
    channel "payload…", quotes, emoji, 80-character names), and tells the fake Slack what Slack itself
    would know: the trigger_id it issued, the response_url's conversation, the view a payload came from.
    """

    app: FblinkApp
    url: str
    http: httpx.Client
    slack: FakeSlack
    clock: FixedClock
    _triggers = itertools.count(1)

    @property
    def services(self):  # type: ignore[no-untyped-def]
        return self.app.services

    @property
    def store(self) -> SyncStore:
        """The app's store, called from the test's thread (each call runs on the app's loop)."""
        return for_app(self.app)

    def post_signed(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = timestamp or str(int(time.time()))
        h = sp.signed_headers(body, SIGNING_SECRET, ts, content_type=content_type)
        if signature is not None:
            h["X-Slack-Signature"] = signature
        h.update(headers or {})
        response = self.http.post(self.url + "/slack/events", content=body, headers=h)
        _check_ack_blocks(response)
        return response

    def _trigger(self, user: str | None) -> str:
        return self.slack.issue_trigger(f"{next(self._triggers)}.{int(time.time())}.a1b2c3d4e5f6", user)

    def command(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        team: str = TEAM,
        response: str = "r",
        fields: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        body = sp.slash_command(
            text=text,
            team_id=team,
            user_id=user,
            channel_id=channel,
            enterprise_id=ENTERPRISE,
            enterprise_name=sp.HOSTILE["enterprise_name"],
            trigger_id=self._trigger(user),
            response_url=self.slack.response_url(response, channel, user),
        )
        body.update(fields or {})
        return self.post_signed(sp.form_body(body), "application/x-www-form-urlencoded", **kw)

    def interact(self, payload: Any, **kw: Any) -> httpx.Response:
        """Post an interaction; Slack issued its trigger_id and has its view open for the user."""
        if isinstance(payload, dict):
            user = payload.get("user")
            uid = user.get("id") if isinstance(user, dict) and isinstance(user.get("id"), str) else None
            if isinstance(payload.get("trigger_id"), str):
                self.slack.issue_trigger(payload["trigger_id"], uid)
            if uid and isinstance(payload.get("view"), dict):
                self.slack.plant_view(uid, payload["view"])
        return self.post_signed(sp.interactive_body(payload), "application/x-www-form-urlencoded", **kw)

    def click(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str = "U1",
        channel: str = "C1",
        response: str = "r",
        message_ts: str = "1700000000.000100",
        view: dict[str, Any] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """A button click on a message (or, with `view`, in a modal or the App Home: no response_url)."""
        return self.interact(
            sp.block_actions(
                action_id=action_id,
                value=value,
                user_id=user,
                channel_id=channel,
                message_ts=message_ts,
                view=view,
                enterprise_id=ENTERPRISE,
                enterprise_name=sp.HOSTILE["enterprise_name"],
                trigger_id=self._trigger(user),
                response_url=None if view else self.slack.response_url(response, channel, user, message_ts),
            ),
            **kw,
        )

    def submit(
        self,
        callback_id: str,
        values: dict[str, dict[str, Any]],
        *,
        user: str = "U1",
        private_metadata: str = "",
        view_id: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        known = self.slack.state.views_by_id.get(view_id or "")
        view = sp.view_object(
            view_id=view_id,
            callback_id=callback_id,
            private_metadata=private_metadata,
            state_values=values,
            hash=known[1].get("hash") if known else None,
        )
        return self.interact(
            sp.view_submission(
                view=view,
                user_id=user,
                enterprise_id=ENTERPRISE,
                enterprise_name=sp.HOSTILE["enterprise_name"],
                trigger_id=self._trigger(user),
            ),
            **kw,
        )

    def open_home(self, user: str = "U1", *, tab: str = "home", **kw: Any) -> httpx.Response:
        """The Events API delivery Slack sends when the user opens the app's Home tab."""
        body = se.app_home_opened(
            user_id=user, channel_id="D" + user[1:], tab=tab, view=self.slack.home_of(user), enterprise_id=ENTERPRISE
        )
        return self.post_signed(json.dumps(body).encode(), "application/json", **kw)


def serve(app: FblinkApp) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    config = uvicorn.Config(app.asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("app did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def start_app(make_settings, slack, clock):  # type: ignore[no-untyped-def]
    started: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def run(*, scheduler: bool = False, **overrides: Any) -> Running:
        app = create_app(make_settings(**overrides), clock=clock, scheduler=scheduler)
        server, thread, url = serve(app)
        client = browser()  # keeps fblink's login cookie like a browser: the login flows need it
        started.append((server, thread, client))
        return Running(app=app, url=url, http=client, slack=slack, clock=clock)

    yield run
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def bot(start_app) -> Running:  # type: ignore[no-untyped-def]
    return start_app()
