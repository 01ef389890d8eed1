"""Fault injection at every upstream step of login, link, app link and reminder posting.

Each upstream call fblink makes is hit with 429 (Retry-After: 0), 500, a timeout
(the fake answers later than the app's read timeout), a connection reset and a
malformed JSON body -- once or twice (transient: the operation must complete after
retries) or on every attempt (persistent: the operation must end with a clear
message to the user, and the database and Vonage must hold all of the change or
none of it). For the Vonage writes there is one more kind, "lost": the write lands
but the answer is lost (``FakeVonage.fail_after``), as after a proxy timeout.

Login, link and app link run against one app (started once for the module, with
``fblink_http_timeout=0.5``); every case uses its own Slack user, Facebook user and
Page, so cases cannot see each other. Reminder posting uses a fresh app per case,
as tests/test_reminders.py does, because a sweep claims every due link.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.app import create_app
from bot.clock import FixedClock
from bot.crypto import Vault
from bot.fakes.base import FakeServer, Fault, Request
from bot.fakes.graph import FakeGraph
from bot.fakes.slack import FakeSlack
from bot.fakes.vonage import FakeVonage
from bot.reminders import run_sweep_once
from bot.settings import Settings
from bot.store import Store
from tests.conftest import (
    APP_ID,
    APP_SECRET,
    BOT_TOKEN,
    START,
    TEAM,
    VONAGE_KEY,
    VONAGE_SECRET,
    Running,
    serve,
    settings_for,
)
from tests.flows import browser, login_state, text_of
from tests.store_sync import sync_store

DAY = 86400
HTTP_TIMEOUT = 0.5  # the app's read timeout in this module
SLACK_TIMEOUT = 1  # the Slack client's: int(max(1, fblink_http_timeout))
ATTEMPTS = 3  # fblink_retry_attempts
APP1 = "aaaaaaaa-0000-4000-8000-0000000000f1"

KINDS: dict[str, dict[str, Any]] = {
    "429": dict(status=429, headers={"Retry-After": "0"}),
    "500": dict(status=500),
    "timeout": dict(delay=HTTP_TIMEOUT + 0.6),
    "reset": dict(reset=True),
    "malformed": dict(malformed=True),
}
PERSISTENT = 20


def transient_times(kind: str) -> int:
    return 1 if kind == "timeout" else 2  # two slow timeouts cost a second each; one shows the retry


# -- targeted faults -----------------------------------------------------------------------


class Targeted:
    """Faults for requests a predicate picks (the fakes' own faults match a path prefix only,
    which cannot tell the code exchange from fb_exchange_token, or /me from /me/accounts)."""

    def __init__(self, fake: FakeServer) -> None:
        self.rules: list[tuple[Callable[[Request], bool], Fault]] = []
        original = fake._take_fault

        def take(req: Request) -> Fault | None:
            for pick, fault in self.rules:
                if fault.times > 0 and pick(req):
                    fault.times -= 1
                    return fault
            return original(req)

        fake._take_fault = take  # type: ignore[method-assign]

    def add(self, pick: Callable[[Request], bool], kind: str, times: int) -> Fault:
        fault = Fault(match="", times=times, **KINDS[kind])
        self.rules.append((pick, fault))
        return fault


def route(method: str, path: str, **query: str) -> Callable[[Request], bool]:
    def pick(req: Request) -> bool:
        return (
            req.method == method
            and req.path == path
            and all((k in req.query) if v == "*" else req.query.get(k) == v for k, v in query.items())
        )

    return pick


# -- one app for login/link/app-link cases ---------------------------------------------------


@dataclass
class World:
    bot: Running
    slack: FakeSlack
    graph: FakeGraph
    vonage: FakeVonage
    db: Store  # the test thread's own connection to the app's database file
    graph_faults: Targeted
    vonage_faults: Targeted


def build_settings(db_path: str, slack: FakeSlack, graph: FakeGraph, vonage: FakeVonage, **overrides: Any) -> Settings:
    return settings_for(
        db_path,
        slack,
        graph,
        vonage,
        secret_key=Fernet.generate_key().decode(),
        **{"fblink_retry_attempts": ATTEMPTS, "fblink_http_timeout": HTTP_TIMEOUT, **overrides},
    )


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[World]:  # type: ignore[no-untyped-def]
    slack = FakeSlack(bot_token=BOT_TOKEN, team_id=TEAM).start()
    graph = FakeGraph(app_id=APP_ID, app_secret=APP_SECRET, api_version="v25.0")
    graph.start()
    vonage = FakeVonage()
    vonage.start()
    vonage.add_key(VONAGE_KEY, VONAGE_SECRET)
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    settings = build_settings(str(tmp_path_factory.mktemp("faults") / "fblink.db"), slack, graph, vonage)
    clock = FixedClock(START)
    app = create_app(settings, clock=clock, scheduler=False)
    server, thread, url = serve(app)
    client = browser(timeout=15)  # keeps fblink's login cookie, as a browser does
    db = sync_store(settings.database, Vault(settings.fblink_secret_key))
    world = World(
        Running(app=app, url=url, http=client, slack=slack, clock=clock),
        slack,
        graph,
        vonage,
        db,
        Targeted(graph),
        Targeted(vonage),
    )
    yield world
    db.close()
    client.close()
    server.should_exit = True
    thread.join(10)
    for fake in (slack, graph, vonage):
        fake.stop()


_ids = itertools.count(1)


@dataclass
class Case:
    n: int
    user: str
    fb_user: str
    page_id: str
    page_name: str
    response: str

    @property
    def dm_channel(self) -> str:
        return "D" + self.user[1:]


@pytest.fixture
def case(shared: World) -> Iterator[Case]:
    n = next(_ids)
    for fake in (shared.graph, shared.vonage):
        fake.reset_log()  # request counts below are per case
    yield Case(n, f"UF{n:03d}", f"FBF{n:03d}", f"77{n:03d}", f"Fault Page {n} & <Co>", f"case{n}")
    for fake in (shared.slack, shared.graph, shared.vonage):
        with fake.lock:
            fake.faults.clear()
    with shared.vonage.lock:
        shared.vonage.after_faults.clear()
    shared.graph_faults.rules.clear()
    shared.vonage_faults.rules.clear()


def dms(world: World, case: Case) -> list[dict[str, Any]]:
    return [m for m in world.slack.messages if m.get("channel") == case.dm_channel]


def wait_dm(world: World, case: Case, contains: str, timeout: float = 15) -> dict[str, Any]:
    return world.slack.wait_for(lambda: next((m for m in dms(world, case) if contains in text_of(m)), None), timeout)


def wait_answer(world: World, case: Case, *needles: str, timeout: float = 20) -> dict[str, Any]:
    """The case's final response_url post: a success or a failure notice (not the "Linking…" line)."""

    def found() -> dict[str, Any] | None:
        for r in world.slack.responses:
            if r.get("url_name") == case.response and any(n in text_of(r) for n in needles):
                return r
        return None

    return world.slack.wait_for(found, timeout)


def logged_in(world: World, case: Case, *, tasks: tuple[str, ...] = ("MANAGE", "MESSAGING")) -> None:
    """The whole login round trip, without faults, for a case's user and Page."""
    page = {"id": case.page_id, "name": case.page_name, "category": "Cafe", "tasks": list(tasks)}
    world.graph.add_user(case.fb_user, f"Tester {case.n}", pages=[page], data_access_expires_at=START + 200 * DAY)
    state = login_state(world.bot, case.user)
    r = world.bot.http.get(
        world.bot.url + "/facebook/callback", params={"code": world.graph.issue_code(case.fb_user), "state": state}
    )
    assert r.status_code == 200, r.text
    wait_dm(world, case, "Connected to Facebook")


def calls(fake: FakeServer, pick: Callable[[Request], bool]) -> int:
    with fake.lock:
        return len([r for r in fake.requests if pick(r)])


BUSY = "busy or unreachable"


# -- login -------------------------------------------------------------------------------------

LOGIN_STEPS: dict[str, Callable[[Case], Callable[[Request], bool]]] = {
    "code_exchange": lambda c: route("GET", "/v25.0/oauth/access_token", code="*"),
    "fb_exchange_token": lambda c: route("GET", "/v25.0/oauth/access_token", grant_type="fb_exchange_token"),
    "debug_token": lambda c: route("GET", "/v25.0/debug_token"),
    "me": lambda c: route("GET", "/v25.0/me"),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("step", list(LOGIN_STEPS))
@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "persistent"])
def test_login_step_faults(shared: World, case: Case, step: str, kind: str, persistent: bool) -> None:
    world = shared
    world.graph.add_user(case.fb_user, f"Tester {case.n}", pages=[], data_access_expires_at=START + 200 * DAY)
    state = login_state(world.bot, case.user)
    pick = LOGIN_STEPS[step](case)
    times = PERSISTENT if persistent else transient_times(kind)
    world.graph_faults.add(pick, kind, times)

    r = world.bot.http.get(
        world.bot.url + "/facebook/callback", params={"code": world.graph.issue_code(case.fb_user), "state": state}
    )

    login = world.db.get_login(TEAM, case.user)
    if not persistent:
        assert r.status_code == 200, r.text
        assert "connected to Facebook as Tester" in r.text
        wait_dm(world, case, f"Connected to Facebook as *Tester {case.n}*")
        assert login is not None and login.fb_user_id == case.fb_user and login.fb_name == f"Tester {case.n}"
        assert login.data_access_expires_at == START + 200 * DAY
        assert calls(world.graph, pick) == times + 1  # retried until it worked
    else:
        assert r.status_code == 503, (r.status_code, r.text)
        assert "Facebook is busy" in r.text and "/fblink login" in r.text
        dm = wait_dm(world, case, "Facebook is busy")
        assert "/fblink login" in text_of(dm)
        assert not [m for m in dms(world, case) if "Connected to Facebook" in text_of(m)]
        assert login is None  # nothing half-saved
        assert world.db.get_pages(TEAM, case.user) == []
        assert calls(world.graph, pick) == ATTEMPTS  # the retry policy, then gave up


# -- link (part 1: the Page joins the Vonage account) -------------------------------------------


def page_path(case: Case) -> str:
    return f"/beta/chatapp-accounts/messenger/{case.page_id}"


LINK_STEPS: dict[str, tuple[str, Callable[[Case], Callable[[Request], bool]]]] = {
    "graph_me_accounts": ("graph", lambda c: route("GET", "/v25.0/me/accounts")),
    "vonage_post_account": ("vonage", lambda c: route("POST", "/beta/chatapp-accounts/messenger")),
}


def link_cases() -> list[Any]:
    out = []
    for step, (upstream, _) in LINK_STEPS.items():
        kinds = list(KINDS) + (["lost"] if upstream == "vonage" else [])
        for kind in kinds:
            for persistent in (False, True):
                out.append(
                    pytest.param(
                        step, kind, persistent, id=f"{step}-{kind}-{'persistent' if persistent else 'transient'}"
                    )
                )
    return out


def inject(
    world: World, upstream: str, pick: Callable[[Request], bool], match: str, kind: str, persistent: bool
) -> int:
    times = PERSISTENT if persistent else (1 if kind == "lost" else transient_times(kind))
    if kind == "lost":
        world.vonage.fail_after(match, status=502, times=times)
    else:
        (world.graph_faults if upstream == "graph" else world.vonage_faults).add(pick, kind, times)
    return times


def assert_no_link_anywhere(world: World, case: Case) -> None:
    assert world.db.get_link(TEAM, case.page_id) is None
    with world.vonage.lock:
        assert case.page_id not in world.vonage.accounts[VONAGE_KEY], world.vonage.accounts[VONAGE_KEY][case.page_id]


def assert_linked_everywhere(world: World, case: Case, *, app: str | None = None) -> None:
    link = world.db.get_link(TEAM, case.page_id)
    assert link is not None and link.status == "active" and link.api_key == VONAGE_KEY
    assert link.linked_by == case.user and link.expires_at == START + 90 * DAY
    assert link.application_id == app
    with world.vonage.lock:
        acct = world.vonage.accounts[VONAGE_KEY][case.page_id]
        assert acct["access_token"] == world.graph.page_token(case.fb_user, case.page_id)
        assert acct["applications"] == ([app] if app else [])


@pytest.mark.parametrize("step,kind,persistent", link_cases())
def test_link_step_faults(shared: World, case: Case, step: str, kind: str, persistent: bool) -> None:
    world = shared
    logged_in(world, case)
    upstream, make_pick = LINK_STEPS[step]
    pick = make_pick(case)
    times = inject(world, upstream, pick, "POST /beta/chatapp-accounts/messenger", kind, persistent)

    r = world.bot.command(f"link {case.page_id}", user=case.user, response=case.response)
    assert r.status_code == 200 and "Linking" in r.text
    answer = wait_answer(world, case, "Linked *", BUSY, "Vonage", "Facebook")

    if not persistent:
        assert "Linked *Fault Page" in text_of(answer), text_of(answer)
        assert_linked_everywhere(world, case)
        if kind != "lost":
            assert calls(world.graph if upstream == "graph" else world.vonage, pick) == times + 1
        assert world.db.history(TEAM, case.page_id)[0]["result"] == "ok"
    else:
        who = "Facebook" if upstream == "graph" else "Vonage"
        assert f"{who} is {BUSY}" in text_of(answer), text_of(answer)
        assert_no_link_anywhere(world, case)
        if upstream == "vonage":
            hist = world.db.history(TEAM, case.page_id)
            assert hist and hist[0]["result"].startswith("error")


# -- app link (part 2, running part 1 first) ---------------------------------------------------

APP_STEPS: dict[str, Callable[[Case], Callable[[Request], bool]]] = {
    "vonage_list_applications": lambda c: route("GET", "/v2/applications"),
    "vonage_get_account": lambda c: route("GET", page_path(c)),
    "vonage_post_account": lambda c: route("POST", "/beta/chatapp-accounts/messenger"),
    "vonage_post_application": lambda c: route("POST", page_path(c) + "/applications"),
}
# where a "lost" answer is injected (FakeVonage.fail_after matches a "METHOD path" prefix)
LOST_MATCH: dict[str, Callable[[Case], str]] = {
    "vonage_post_account": lambda c: "POST /beta/chatapp-accounts/messenger",
    "vonage_post_application": lambda c: f"POST {page_path(c)}/applications",
}


def app_cases() -> list[Any]:
    out = []
    for step in APP_STEPS:
        kinds = list(KINDS) + (["lost"] if step in LOST_MATCH else [])
        for kind in kinds:
            for persistent in (False, True):
                out.append(
                    pytest.param(
                        step, kind, persistent, id=f"{step}-{kind}-{'persistent' if persistent else 'transient'}"
                    )
                )
    return out


@pytest.mark.parametrize("step,kind,persistent", app_cases())
def test_app_link_step_faults(shared: World, case: Case, step: str, kind: str, persistent: bool) -> None:
    world = shared
    logged_in(world, case)
    pick = APP_STEPS[step](case)
    times = inject(world, "vonage", pick, LOST_MATCH[step](case) if kind == "lost" else "", kind, persistent)

    r = world.bot.command(f"link {case.page_id} app Support Bot", user=case.user, response=case.response)
    assert r.status_code == 200 and "Linking" in r.text
    answer = wait_answer(world, case, "Linked *", BUSY, "Vonage")

    if not persistent:
        assert "Linked *Fault Page" in text_of(answer) and "Support Bot" in text_of(answer), text_of(answer)
        assert_linked_everywhere(world, case, app=APP1)
        if kind != "lost":
            assert calls(world.vonage, pick) == times + 1
    else:
        assert f"Vonage is {BUSY}" in text_of(answer), text_of(answer)
        assert_no_link_anywhere(world, case)  # part 1 undone at Vonage when part 2 failed
        if step == "vonage_post_application":
            with world.vonage.lock:
                deletes = [q for q in world.vonage.requests if q.method == "DELETE" and q.path == page_path(case)]
            assert len(deletes) == 1  # the compensation ran
            assert world.db.history(TEAM, case.page_id)[0]["result"].startswith("error")


# -- reminder posting (Slack chat.postMessage during a sweep) ---------------------------------

REMINDER_PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]


def sweep_at(bot: Running, when: int) -> list[str]:
    """`fblink sweep` in-process: fresh services on the app's settings, the given clock."""
    return asyncio.run(run_sweep_once(bot.services.settings, FixedClock(when)))


def reminder_posts(bot: Running) -> list[dict[str, Any]]:
    return [
        m
        for m in bot.slack.messages
        if m["method"] == "chat.postMessage" and "Acme Coffee" in text_of(m) and "expires in" in text_of(m)
    ]


def reminder_rows(bot: Running) -> list[dict[str, Any]]:
    s = bot.services.settings
    db = sync_store(s.database, Vault(s.fblink_secret_key))
    try:
        return db.select("SELECT status, channel_id, message_ts, attempts, last_error FROM reminders ORDER BY id")
    finally:
        db.close()


SLACK_KINDS = dict(KINDS, timeout=dict(delay=SLACK_TIMEOUT + 0.5))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "persistent"])
def test_reminder_post_faults(start_app, graph, vonage, caplog, kind: str, persistent: bool) -> None:
    from tests.flows import log_in

    caplog.set_level(logging.INFO)
    bot = start_app(fblink_http_timeout=HTTP_TIMEOUT)
    log_in(bot, graph, pages=REMINDER_PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    bot.slack.messages.clear()
    exp = START + 90 * DAY
    # The Slack client retries 429, 5xx and resets itself (twice); a timeout or a malformed answer fails the
    # sweep's attempt, and the next sweep retries.
    times = PERSISTENT if persistent else (2 if kind in ("429", "500", "reset") else 1)
    bot.slack.fail("POST /api/chat.postMessage", times=times, **SLACK_KINDS[kind])

    first = sweep_at(bot, exp - 14 * DAY + 1)

    if persistent:
        assert first == [] and reminder_posts(bot) == []
        (row,) = reminder_rows(bot)
        assert row["status"] == "claimed" and row["message_ts"] is None and row["last_error"]  # released, not lost
        assert "not posted" in caplog.text and "retried next sweep" in caplog.text
        assert not [m for m in bot.slack.messages if m["method"] == "chat.postMessage"]  # no stray fallback post
        with bot.slack.lock:
            bot.slack.faults.clear()  # Slack is back
    # A sweep that could not post releases its claim: the next one (15 minutes later) posts it.
    second = sweep_at(bot, exp - 14 * DAY + 15 * 60) if not first else []
    posts = reminder_posts(bot)
    assert len(first) + len(second) == 1 and len(posts) == 1, (first, second, posts)
    assert posts[0]["channel"] == "CLINK" and "expires in *14 days*" in text_of(posts[0])
    (row,) = reminder_rows(bot)
    assert row["status"] == "posted" and row["message_ts"] == posts[0]["ts"]
    if kind in ("429", "500", "reset") and not persistent:
        assert first, "the Slack client retries 429, 5xx and resets within the sweep"
    assert sweep_at(bot, exp - 14 * DAY + 30 * 60) == [] and len(reminder_posts(bot)) == 1  # never twice
