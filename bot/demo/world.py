"""Everything the demo runs: the fakes, their demo data, and fblink itself on a loopback port.

fblink is built by the normal factory ``create_app``; only the wiring differs (upstream
URLs point at the fakes, the clock is one the demo can move). No real credential is
read: Settings gets every field explicitly and no .env file.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from cryptography.fernet import Fernet

from bot.app import FblinkApp, create_app
from bot.clock import Clock
from bot.db_marks import DEMO_MARK, check_for_demo, tables
from bot.fakes.graph import FakeGraph
from bot.fakes.slack import FakeSlack
from bot.fakes.slack_oauth import Installer
from bot.fakes.slack_payloads import BOT_USER
from bot.fakes.vonage import FakeVonage
from bot.reminders import sweep
from bot.settings import Settings

TEAM, TEAM_DOMAIN = "T0DEMO0001", "fblink-demo"
SIGNING_SECRET = "demo-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-demo-not-a-real-token"
FB_APP_ID, FB_APP_SECRET, FB_VERSION = "1234567890123456", "demo-facebook-app-secret", "v25.0"
VONAGE_KEY, VONAGE_SECRET = "a1b2c3d4", "DemoSecret1"
EXTRA_KEY, EXTRA_SECRET = "e5f6a7b8", "OtherSecret2"
CREDENTIAL_PREFIXES = ("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_")

PEOPLE = [  # Slack people: id, display name, real name, role, their Facebook person
    {"id": "UADMIN", "name": "avery", "real_name": "Avery Quinn", "title": "Avery (fblink admin)", "facebook": "10001"},
    {"id": "UPAGEADM", "name": "priya", "real_name": "Priya Raman", "title": "Priya (Page admin)", "facebook": "10002"},
    {"id": "UNOPAGE", "name": "sam", "real_name": "Sam Okafor", "title": "Sam (manages no Page)", "facebook": "10003"},
]
CHANNELS = [{"id": "C0OPS00001", "name": "ops"}, {"id": "C0MKT00002", "name": "marketing"}]
# A second workspace, installed from the demo's "Add to Slack" page: its own people, channels and Pages
TEAM2, TEAM2_NAME = "T0DEMO0002", "Globex Bikes"
PEOPLE2 = [
    {
        "id": "UGINA",
        "name": "gina",
        "real_name": "Gina Berger",
        "title": "Gina (Globex, installs fblink)",
        "facebook": "10004",
    }
]
CHANNELS2 = [{"id": "C0GLX00001", "name": "bike-shop"}]
WORKSPACES = [
    {"id": TEAM, "name": "Acme Coffee", "domain": TEAM_DOMAIN},
    {"id": TEAM2, "name": TEAM2_NAME, "domain": "globex-bikes"},
]
CLIENT_ID, CLIENT_SECRET = "1111111111.2222222222", "demo-client-secret"

ACME = {
    "id": "104857600000001",
    "name": "Acme Coffee & Tea ☕",
    "category": "Coffee Shop",
    "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
}
ROASTERY = {
    "id": "104857600000006",
    "name": "Acme Roastery Berlin",
    "category": "Coffee Roaster",
    "tasks": ["ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
}
HOSTILE = {  # one hostile name, to show names are shown as text (Priya manages it)
    "id": "104857600000002",
    "name": 'Café "payload=1&x=%2B" <b>Ünïcödé</b> 🍰',
    "category": "Bakery",
    "tasks": ["MESSAGING", "MODERATE"],
}
CYRILLIC = {
    "id": "104857600000003",
    "name": "Торговый дом «Ромашка» — официальная страница магазина в Москве 2026 · 24/7 чат!",
    "category": "Retail",
    "tasks": ["ANALYZE"],
}
# Pages reached only through a Business Portfolio (Business Manager), not /me/accounts
AGENCY = {
    "id": "104857600000004",
    "name": "Northwind Outlet (agency client)",
    "category": "Retail",
    "tasks": ["MESSAGING", "MANAGE"],
}
LOCKED = {"id": "104857600000005", "name": "Northwind HQ", "category": "Company", "tasks": []}  # no task: no token
GLOBEX = {
    "id": "104857600000007",
    "name": "Globex Bikes Vienna",
    "category": "Bicycle Shop",
    "tasks": ["MESSAGING", "MANAGE"],
}
BUSINESSES = [{"id": "880000000000001", "name": "Northwind Agency", "owned_pages": [LOCKED], "client_pages": [AGENCY]}]
FACEBOOK_PEOPLE: list[dict[str, Any]] = [
    {"id": "10001", "name": "Avery Quinn", "pages": [ACME, ROASTERY]},
    {"id": "10002", "name": "Priya Raman", "pages": [ACME, HOSTILE, CYRILLIC], "businesses": BUSINESSES},
    {"id": "10003", "name": "Sam Okafor", "pages": []},
    {"id": "10004", "name": "Gina Berger", "pages": [GLOBEX]},
]


class DemoClock(Clock):
    """Real time plus an offset the clock control moves; shared with the Graph fake."""

    def __init__(self) -> None:
        self.offset = 0
        self.moves: list[tuple[float, int]] = []  # (real time of the move, offset from then on)

    def now(self) -> int:
        return int(time.time()) + self.offset

    def shift(self) -> int:
        return self.offset

    def advance(self, seconds: int) -> None:
        self.offset += int(seconds)
        self.moves.append((time.time(), self.offset))

    def demo_time(self, real: float) -> int:
        """The demo time at a past real time (Slack's message ts is real time)."""
        offset = 0
        for at, value in self.moves:
            if at <= real:
                offset = value
        return int(real) + offset


def open_demo_database(path: str | None) -> tuple[str, str]:
    """(path, Fernet key). A new file gets the demo marker before fblink creates its tables; a
    file a real command used, or one the demo did not make, is refused (bot.db_marks)."""
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="fblink-demo-"), "demo.db")
    check_for_demo(path)
    conn = sqlite3.connect(path)
    try:
        if DEMO_MARK not in tables(conn):
            conn.execute(f"CREATE TABLE {DEMO_MARK} (secret_key TEXT NOT NULL, created_at INTEGER NOT NULL)")
            conn.execute(f"INSERT INTO {DEMO_MARK} VALUES (?, ?)", (Fernet.generate_key().decode(), int(time.time())))
            conn.commit()
        (key,) = conn.execute(f"SELECT secret_key FROM {DEMO_MARK} LIMIT 1").fetchone()
        return path, key
    finally:
        conn.close()


def real_credentials(cwd: str = ".") -> list[str]:
    """Names of real credential variables in the environment or ./.env (values never read out)."""
    names = {k for k in os.environ if k.upper().startswith(CREDENTIAL_PREFIXES)}
    env_file = Path(cwd) / ".env"
    if env_file.is_file():
        for line in env_file.read_text(errors="replace").splitlines():
            key = line.split("=", 1)[0].strip().removeprefix("export ").strip()
            if "=" in line and key.upper().startswith(CREDENTIAL_PREFIXES):
                names.add(key)
    return sorted(names)


def seed(graph: FakeGraph, vonage: FakeVonage) -> None:
    for person in FACEBOOK_PEOPLE:
        graph.add_user(person["id"], person["name"], pages=person["pages"], businesses=person.get("businesses", ()))
    vonage.add_key(VONAGE_KEY, VONAGE_SECRET)
    vonage.add_application(VONAGE_KEY, "aa11bb22-1111-4c2d-8e3f-0123456789ab", "Acme Support Bot")
    vonage.add_application(VONAGE_KEY, "cc33dd44-2222-4c2d-8e3f-0123456789ab", "Campaigns & Offers <EU> 🇪🇺")
    vonage.add_application(VONAGE_KEY, "ee55ff66-3333-4c2d-8e3f-0123456789ab", "Voice IVR (no Messages)", ("voice",))
    vonage.add_key(EXTRA_KEY, EXTRA_SECRET)
    vonage.add_application(EXTRA_KEY, "0f0f0f0f-4444-4c2d-8e3f-0123456789ab", "Agency: Ромашка Messenger")


def build_settings(
    *, slack_url: str, graph_url: str, vonage_url: str, login_url: str, public_url: str, database: str, secret_key: str
) -> Settings:
    """Every field explicit, no .env: nothing real leaks in from the environment."""
    return Settings(
        _env_file=None,
        slack_bot_token=None,  # distributed mode: each workspace is installed through "Add to Slack"
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        slack_api_url=slack_url,
        facebook_app_id=FB_APP_ID,
        facebook_app_secret=FB_APP_SECRET,
        facebook_api_version=FB_VERSION,
        facebook_graph_url=graph_url,
        facebook_login_url=login_url,
        facebook_login_config_id=None,
        vonage_api_key=None,  # distributed mode: each workspace adds its own keys (Acme's is seeded in start)
        vonage_api_secret=None,
        vonage_api_url=vonage_url,
        fblink_public_url=public_url,
        fblink_database=database,
        fblink_secret_key=secret_key,
        fblink_admins="",  # each workspace's installer is its first fblink admin
        fblink_link_ttl_days=90,
        fblink_sweep_minutes=15,
        fblink_reminder_days="14,7,3,1",
        fblink_reminder_channel=None,
        fblink_log_format="plain",
        fblink_log_level="WARNING",
        fblink_http_timeout=5.0,
        fblink_retry_attempts=2,
        fblink_retry_wait=0.05,
        fblink_retry_total=8.0,
    )


@dataclass
class World:
    """The running demo back end: fakes, clock and fblink (call ``start`` then ``stop``)."""

    login_url: str  # where fblink sends browsers for the Facebook dialog (the demo web server)
    database: str | None = None
    slack: FakeSlack = field(init=False)
    graph: FakeGraph = field(init=False)
    vonage: FakeVonage = field(init=False)
    clock: DemoClock = field(default_factory=DemoClock)
    fblink: FblinkApp = field(init=False)
    fblink_url: str = ""
    db_path: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> World:
        for var in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
            os.environ.pop(var, None)  # Bolt reads these itself and would switch to its OAuth install flow
        self.db_path, key = open_demo_database(self.database)
        self.slack = FakeSlack(bot_token=BOT_TOKEN, team_id=TEAM, bot_user_id=BOT_USER)
        self.slack.start()
        self.graph = FakeGraph(FB_APP_ID, FB_APP_SECRET, FB_VERSION, application="fblink demo")
        self.graph.clock = self.clock.now
        self.graph.start()
        self.vonage = FakeVonage()
        self.vonage.start()
        seed(self.graph, self.vonage)
        for person in PEOPLE:  # users.info names them as they are (fblink's login page shows the name)
            self.slack.add_person(person["id"], person["real_name"], person["name"])
        for person in PEOPLE2:
            self.slack.add_person(person["id"], person["real_name"], person["name"])
        for team, channels in ((TEAM, CHANNELS), (TEAM2, CHANNELS2)):  # conversations.list (a plain #name)
            for channel in channels:
                self.slack.add_channel(channel["id"], channel["name"], team_id=team)
        self.slack.oauth.client_id, self.slack.oauth.client_secret = CLIENT_ID, CLIENT_SECRET
        self.slack.oauth.clock = self.clock.now  # codes and tokens expire on the demo's clock
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.fblink_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.graph.redirect_uri = self.fblink_url + "/facebook/callback"
        settings = build_settings(
            slack_url=self.slack.url + "/api/",
            graph_url=self.graph.url,
            vonage_url=self.vonage.url,
            login_url=self.login_url,
            public_url=self.fblink_url,
            database=self.db_path,
            secret_key=key,
        )
        self.fblink = create_app(settings, clock=self.clock, scheduler=False)
        config = uvicorn.Config(self.fblink.asgi, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()
        loop, server = self._loop, self._server
        self._thread = threading.Thread(
            target=lambda: loop.run_until_complete(server.serve(sockets=[sock])), name="fblink", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fblink did not start")
            time.sleep(0.01)
        # Acme is installed at start, and so is any workspace a reused database had: this run's fake Slack
        # knows none of the tokens an earlier run was given, so each install is walked again.
        # Acme's Vonage key, as its installer adds it from the welcome DM (seeded first, so no DM asks for it);
        # Globex's installer is asked for theirs right after "Add to Slack".
        store = self.fblink.services.store
        self.on_fblink_loop(store.add_key(TEAM, VONAGE_KEY, VONAGE_SECRET, by="UADMIN", now=self.clock.now())).result(
            10
        )
        for workspace, installer in zip(WORKSPACES, ("UADMIN", PEOPLE2[0]["id"]), strict=True):
            if workspace["id"] == TEAM or self.installed(workspace["id"]):
                self.install(workspace["id"], workspace["name"], installer)
        return self

    def installed(self, team_id: str) -> bool:
        installs = self.fblink.services.installs
        assert installs is not None  # distributed mode
        return bool(self.on_fblink_loop(installs.install_for(None, team_id)).result(10))

    def install(self, team_id: str, team_name: str, user_id: str) -> None:
        """What a browser does on "Add to Slack": fblink's install page, Slack's Allow, fblink's redirect.
        Real HTTP through fblink's OAuth routes (state cookie and all) and the fake's oauth.v2.access."""
        self.slack.oauth.install_as(Installer(team_id=team_id, team_name=team_name, user_id=user_id))
        with httpx.Client(timeout=10) as browser:
            page = browser.get(self.fblink_url + "/slack/install")
            found = re.search(r'href="([^"]+/oauth/v2/authorize[^"]*)"', page.text)
            if page.status_code != 200 or found is None:
                raise RuntimeError("fblink's install page did not offer Add to Slack")
            allow = browser.get(found.group(1).replace("&amp;", "&"), follow_redirects=False)
            back = urlsplit(allow.headers.get("location", ""))
            cookie = page.headers.get("set-cookie", "").split(";")[0]
            done = browser.get(f"{self.fblink_url}{back.path}?{back.query}", headers={"Cookie": cookie})
        if done.status_code != 200:
            raise RuntimeError(f"the install did not finish: HTTP {done.status_code}")

    def on_fblink_loop(self, coro: Any) -> Future[Any]:
        """Run a coroutine on fblink's own event loop (its HTTP clients live there)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def sweep(self) -> Future[list[str]]:
        """The scheduler's job, run now: the one place the demo names fblink's sweep."""
        return self.on_fblink_loop(sweep(self.fblink.services))

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        for fake in (getattr(self, "slack", None), getattr(self, "graph", None), getattr(self, "vonage", None)):
            if fake is not None:
                fake.stop()
        if self.database is None and self.db_path:  # the demo's own temporary database goes with it
            shutil.rmtree(os.path.dirname(self.db_path), ignore_errors=True)
