"""Isolation under attack: two workspaces installed through "Add to Slack", and signed requests from
workspace A that name workspace B's Pages, links, views, keys, channels and people.

Slack sets ``team`` and ``user`` from the session; everything else in a payload (a button's value, the
view it came from, the modal's state and private_metadata, a command's words) is what A's client sent,
and a crafted client can put anything there. Every action, view and option list fblink registers is
taken from the listener modules' own ``register()`` calls, so a new button is attacked here the day it is
added (and the catalogue below must name it). What a user would see is asserted: B's rows, B's Vonage
account and B's Slack are untouched; nothing A is answered names B's Pages, key, application or people.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.app import LISTENERS
from bot.fakes import slack_events as se
from bot.fakes import slack_payloads as sp
from bot.fakes.graph import FakeGraph
from bot.fakes.slack import FakeSlack
from bot.fakes.slack_oauth import Installer
from bot.fakes.vonage import FakeVonage
from bot.graph import REQUIRED_SCOPES, Page
from bot.store import FacebookLogin
from handlers.commands import SUBCOMMANDS
from tests import pg
from tests.conftest import START, VONAGE_KEY, Running
from tests.test_installations_mode import DISTRIBUTED, walk_install

A, B = "T0AAA", "T0BBB"
A_ADMIN, A_USER = "UAADMIN", "UAUSER"
B_ADMIN, B_USER = "UBADMIN", "UBUSER"
B_PAGE, B_PAGE_NAME = "777000000000001", "Bumblebee Bakery"
B_KEY, B_SECRET = "bkey7777", "b-vonage-secret"
B_APP, B_APP_NAME = "bbbbbbbb-0000-4000-8000-00000000b0b0", "Hive Messenger App"
B_CHANNEL, B_FB_NAME = "C0BHIVE01", "Beatrix Buzz"
B_VIEW, B_HOME = "VBHIVE0001", "VBHOME0001"
A_PAGE, A_KEY = "555000000000001", "akey5555"
# B's names as A never types them: none of these may reach anything A is shown
B_SECRETS = (B_PAGE_NAME, B_KEY, B_APP_NAME, B_FB_NAME, B_SECRET)
# what A's crafted requests name instead: B's ids, and B's names in another case or cut short
NAMED = (B_PAGE, B_PAGE_NAME.lower(), "Bumblebee", "BKEY777", "bkey77", B_APP, B_CHANNEL, B_VIEW, B_USER)

# The crafted value(s) each registered action is clicked with; a new action must be added here.
REPLACE = {"p": B_PAGE, "k": B_KEY.upper(), "a": B_APP, "c": B_APP}
ACTION_VALUES: dict[str, list[str]] = {
    "page_link": [B_PAGE],
    "page_link_app": [B_PAGE],
    "page_unlink": [B_PAGE, "1", "2"],  # a Page id, and link row ids
    "page_relink": [B_PAGE, "1", "2"],
    "status_relink": [B_PAGE],
    "reminder_relink": [B_PAGE],
    "link_replace": [json.dumps(REPLACE), json.dumps({**REPLACE, "k": "bkey77"})],
    "link_keep": [B_PAGE],
    "pages_next": ["1"],
    "pages_next_prev": ["0"],
    "status_next": ["0", "1"],
    "status_next_prev": ["0"],
    "home_login": ["login"],
    "home_link": ["link"],
    "home_refresh": ["refresh"],
    "login_open": [""],
    "login_disconnect": ["FBBEE", B_USER],
    "link_modal_key": [],  # a select: chosen below with B's key in the view's state
    "keys_add_open": ["add", B_KEY],  # the installer's welcome DM: opens A's own add-key modal, or refuses
    "rerun_0": [json.dumps({"t": t}) for t in ("unlink " + B_PAGE, "remind bumblebee off", "keys remove BKEY7777")],
}


class Registered:
    """What the listener modules register with Bolt, recorded by playing the app to their register():
    ``app.action(c)``, ``app.view(c)``, ``app.options(c)``, ``app.command(c)``, ``app.event(c)``."""

    KINDS = ("action", "view", "options", "command", "event")

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {k: [] for k in self.KINDS}

    def __getattr__(self, name: str) -> Any:
        if name not in self.KINDS:
            raise AttributeError(name)

        def constraint(c: Any, *_: Any, **__: Any) -> Any:
            self.seen[name].append(example(c))
            return lambda listener: listener

        return constraint


def example(constraint: Any) -> str:
    """An action_id a pattern matches (``^rerun_\\d+$`` -> ``rerun_0``), or the id itself."""
    if isinstance(constraint, re.Pattern):
        return str(constraint.pattern).strip("^$").replace(r"\d+", "0")
    return str(constraint)


def registered() -> dict[str, list[str]]:
    app = Registered()
    for module in LISTENERS:
        module.register(app)  # duck-typed: records the constraints only
    return app.seen


def test_every_registered_action_has_crafted_values() -> None:
    """A button added without an entry here fails, so it cannot go without an isolation test."""
    seen = registered()
    assert set(seen["action"]) == set(ACTION_VALUES), set(seen["action"]) ^ set(ACTION_VALUES)
    assert set(seen["view"]) == {"link_modal", "keys_add_modal"}
    assert set(seen["options"]) == {"page", "link_modal_key", "app"}
    assert seen["command"] == ["/fblink"] and set(seen["event"]) == set(EVENTS)


# -- two workspaces -----------------------------------------------------------------------------
EVENTS = {  # each registered event as Slack delivers it from A, with B's views in it
    "app_home_opened": lambda user: se.app_home_opened(
        user_id=user, channel_id="D" + user[1:], team_id=A, view=b_view("", type="home", view_id=B_HOME)
    ),
    # lifecycle events from A naming B: B's bot user, B's workspace under an org A claims, an
    # org-wide uninstall of an org A claims (handlers/lifecycle.py)
    "tokens_revoked": lambda user: se.tokens_revoked(team_id=A, bot=[f"UB{B}"], oauth=[user]),
    "team_access_revoked": lambda user: se.team_access_revoked(enterprise_id="E0ANTS", team_ids=[B], team_id=A),
    "team_access_granted": lambda user: se.team_access_granted(enterprise_id="E0ANTS", team_ids=[B], team_id=A),
    "app_uninstalled": lambda user: se.app_uninstalled(team_id=A, enterprise_id="E0ANTS", is_enterprise_install=True),
}


@dataclass
class Two:
    bot: Running
    slack: FakeSlack
    vonage: FakeVonage
    graph: FakeGraph
    tokens: dict[str, str]
    acks: list[Any] = field(default_factory=list)
    _n: Any = field(default_factory=itertools.count)

    def post(self, payload: dict[str, Any]) -> Any:
        user = payload["user"]["id"]
        if isinstance(payload.get("trigger_id"), str):
            self.slack.issue_trigger(payload["trigger_id"], user)
        r = self.bot.post_signed(sp.interactive_body(payload), "application/x-www-form-urlencoded")
        assert r.status_code == 200, r.text
        self.acks.append(r.text)
        return r

    def click(self, action: dict[str, Any], *, user: str, team: str = A, channel: str = "C0AOPS", **kw: Any) -> Any:
        n = next(self._n)
        ts = f"1700000000.{n:06d}"
        url = self.slack.response_url(f"{team}-{n}", channel, user, ts)
        return self.post(
            sp.block_actions(
                action=action, team_id=team, user_id=user, channel_id=channel, message_ts=ts, response_url=url, **kw
            )
        )

    def command(self, text: str, *, user: str, team: str = A, channel: str = "C0AOPS") -> Any:
        n = next(self._n)
        url = self.slack.response_url(f"{team}-cmd-{n}", channel, user)
        body = sp.slash_command(
            text=text, team_id=team, user_id=user, channel_id=channel, response_url=url, trigger_id=f"{n}.1.cmd{n}"
        )
        self.slack.issue_trigger(body["trigger_id"], user)
        r = self.bot.post_signed(sp.form_body(body), "application/x-www-form-urlencoded")
        assert r.status_code == 200, r.text
        self.acks.append(r.text)
        return r

    def settle(self) -> None:
        """Wait until every piece of after-ack work (and what it spawned) has finished."""
        deadline, quiet = time.monotonic() + 20, 0
        while quiet < 3 and time.monotonic() < deadline:
            quiet = quiet + 1 if not self.bot.services.tasks else 0
            time.sleep(0.03)
        assert not self.bot.services.tasks, "after-ack work still running"

    def seen_by_a(self) -> str:
        """Everything fblink said since the attack began: acks, response_url posts, chat.*, views.*."""
        return json.dumps([self.acks, self.slack.responses, self.slack.messages, self.slack.views], ensure_ascii=False)

    def b_state(self) -> Any:
        return {"rows": team_rows(self.bot, B), "vonage": copy.deepcopy(self.vonage.accounts.get(B_KEY))}


def team_rows(bot: Running, team: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table with a team_id column, for one workspace."""
    if pg.engine_under_test() == "postgresql":
        names = [
            r["table_name"]
            for r in bot.store.select(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'team_id'"
                " AND table_schema = current_schema()"
            )
        ]
    else:
        names = [
            t["name"]
            for t in bot.store.select("SELECT name FROM sqlite_master WHERE type = 'table'")
            if any(c["name"] == "team_id" for c in bot.store.select(f"PRAGMA table_info({t['name']})"))
        ]
    assert {"links", "fb_users", "fb_pages", "vonage_keys", "audit"} <= set(names)
    return {n: bot.store.select(f"SELECT * FROM {n} WHERE team_id = ? ORDER BY 1", [team]) for n in sorted(names)}


def page(page_id: str, name: str, token: str) -> Page:
    return Page(page_id, name, "Bakery", ("MANAGE", "MESSAGING"), token)


@pytest.fixture
def two(start_app, slack: FakeSlack, vonage: FakeVonage, graph: FakeGraph) -> Two:  # type: ignore[no-untyped-def]
    slack.oauth.client_id, slack.oauth.client_secret = "1111.2222", "fake-client-secret"  # DISTRIBUTED's
    bot = start_app(**DISTRIBUTED)
    for team in (A, B):
        slack.oauth.install_as(Installer(team_id=team, team_name=f"{team} Co", user_id=f"U{team[2:]}INS"))
        assert walk_install(bot)[0].status_code == 200
    # each installer's welcome DM (asking for the workspace's key) is sent before the attacks start
    slack.wait_for(lambda: len([m for m in slack.messages if "Add a Vonage key" in json.dumps(m)]) == 2)
    tokens = {str(t.installer.team_id): t.value for t in slack.oauth.live_tokens()}
    slack.add_channel("C0AOPS", "ant-ops", team_id=A)  # each workspace's own channel: Slack keeps them apart
    slack.add_channel(B_CHANNEL, "hive", team_id=B)
    store = bot.store
    for team, admin in ((A, A_ADMIN), (B, B_ADMIN)):  # each workspace's fblink admin (`/fblink admins add`)
        store.add_team_admin(team, admin, by=f"U{team[2:]}INS", now=START)
    for team, key, secret, app, app_name in (
        (A, A_KEY, "a-secret", "aaaa-app", "Shop App"),
        (B, B_KEY, B_SECRET, B_APP, B_APP_NAME),
    ):
        vonage.add_key(key, secret)
        vonage.add_application(key, app, app_name)
        store.add_key(team, key, secret, by=f"U{team[2:]}INS", now=START)
    # B: a person logged in to Facebook with a Page, linked with B's own key and application
    graph.add_user("FBBEE", B_FB_NAME, pages=[{"id": B_PAGE, "name": B_PAGE_NAME, "tasks": ["MANAGE", "MESSAGING"]}])
    graph.add_user("FBANT", "Anton Ant", pages=[{"id": A_PAGE, "name": "Ant Shop", "tasks": ["MANAGE", "MESSAGING"]}])
    for team, user, fb, name, pid, pname in (
        (B, B_USER, "FBBEE", B_FB_NAME, B_PAGE, B_PAGE_NAME),
        (B, B_ADMIN, "FBBEE", B_FB_NAME, B_PAGE, B_PAGE_NAME),
        (A, A_ADMIN, "FBANT", "Anton Ant", A_PAGE, "Ant Shop"),
    ):
        token = graph.user_token(fb)
        login = FacebookLogin(team, user, fb, name, token, None, None, REQUIRED_SCOPES)
        store.save_login(login, now=START)
        store.save_pages(team, user, [page(pid, pname, graph.page_token(fb, pid))], now=START)
    vonage.add_account(B_KEY, B_PAGE, graph.page_token("FBBEE", B_PAGE), name=B_PAGE_NAME, applications=(B_APP,))
    store.upsert_link(
        B,
        B_PAGE,
        now=START,
        page_name=B_PAGE_NAME,
        api_key=B_KEY,
        application_id=B_APP,
        application_name=B_APP_NAME,
        linked_by=B_USER,
        channel_id=B_CHANNEL,
        expires_at=START + 30 * 86400,
        status="active",
    )
    store.set_team_reminder_channel(B, B_CHANNEL, by=B_ADMIN, now=START)
    # B's person has the link modal open, and B's App Home: their view ids are B's
    slack.plant_view(B_USER, sp.view_object(view_id=B_VIEW, team_id=B, callback_id="link_modal"))
    slack.plant_view(B_USER, sp.view_object(view_id=B_HOME, team_id=B, type="home"))
    for fake in (slack, vonage):
        fake.reset_log()
    for seen in (slack.messages, slack.responses, slack.views):
        seen.clear()
    return Two(bot, slack, vonage, graph, tokens)


def assert_b_untouched(two: Two, before: Any, *, shown: bool = True, home: bool = True) -> None:
    """B's rows, Vonage account, Slack and open modal as they were; with ``shown``, nothing of B in A's answers."""
    two.settle()
    assert two.b_state() == before, "workspace B's rows or Vonage account changed"
    calls = two.slack.calls()
    assert not [c for c in calls if c.headers.get("authorization") == "Bearer " + two.tokens[B]], "spoke as B"
    in_b = [m for m in two.slack.messages if m.get("channel") == B_CHANNEL]
    assert not in_b, f"posted in B's channel: {in_b}"
    assert not two.slack.state.views_by_id[B_VIEW][1].get("blocks"), "B's open modal was changed"
    if home:  # (B's person acting inside A gets A's Home there: the fake keeps one Home per person)
        assert not (two.slack.home_of(B_USER) or {}).get("blocks"), "B's Home was changed"
    b_auth = "Basic " + base64.b64encode(f"{B_KEY}:{B_SECRET}".encode()).decode()
    assert not [r for r in two.vonage.calls() if r.headers.get("authorization") == b_auth], "B's Vonage key used"
    if not shown:
        return
    seen = two.seen_by_a()
    leaked = [s for s in B_SECRETS if s in seen]
    assert not leaked, f"A was shown B's {leaked}: " + " | ".join(
        seen[max(0, i - 200) : i + 40] for s in leaked for i in [seen.index(s)]
    )


# -- the attacks --------------------------------------------------------------------------------
def b_view(
    callback_id: str, values: dict[str, Any] | None = None, *, view_id: str = B_VIEW, **kw: Any
) -> dict[str, Any]:
    """A view as A's crafted client sends it: B's view id, B's team in the view, B's channel in its metadata."""
    return sp.view_object(
        view_id=view_id,
        team_id=B,
        callback_id=callback_id,
        state_values=values,
        private_metadata=json.dumps({"channel": B_CHANNEL}),
        **kw,
    )


LINK_STATES = [
    {"page": {"page": {"type": "static_select", "selected_option": {"value": B_PAGE}}}},
    {
        "page": {"page": {"type": "static_select", "selected_option": {"value": A_PAGE}}},
        "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": B_KEY}}},
        "app": {"app": {"type": "static_select", "selected_option": {"value": B_APP}}},
    },
    {
        "page": {"page": {"type": "static_select", "selected_option": {"value": B_PAGE}}},
        "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": A_KEY}}},
    },
    {  # all A's own (A's admin links A's Page), from a modal claiming B's view and B's channel
        "page": {"page": {"type": "static_select", "selected_option": {"value": A_PAGE}}},
        "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": A_KEY}}},
    },
]


@pytest.mark.parametrize("user", [A_ADMIN, A_USER, B_USER])
def test_every_button_clicked_from_a_naming_b_changes_nothing_in_b_and_shows_nothing_of_it(two: Two, user: str) -> None:
    """As A's admin, as A's plain member, and as B's person acting inside A (a shared channel):
    every registered action, on a message in A's and in B's channel, and in B's view."""
    before = two.b_state()
    for action_id in registered()["action"]:
        for value in ACTION_VALUES[action_id]:
            action = sp.button_action(action_id, value)
            two.click(action, user=user)
            two.click(sp.button_action(action_id, value), user=user, channel=B_CHANNEL)
            for view in (b_view("link_modal"), b_view("", type="home", view_id=B_HOME)):
                two.post(
                    sp.block_actions(action=sp.button_action(action_id, value), team_id=A, user_id=user, view=view)
                )
    for event in registered()["event"]:  # B's person named in an event from A (their Home, in A)
        envelope = EVENTS[event](user)
        assert two.bot.post_signed(json.dumps(envelope).encode(), "application/json").status_code == 200
    for state in LINK_STATES:  # the key select in a link modal, with B's key and Page chosen
        select = sp.select_action("link_modal_key", B_KEY, block_id="key")
        two.post(sp.block_actions(action=select, team_id=A, user_id=user, view=b_view("link_modal", state)))
    assert_b_untouched(two, before, home=user != B_USER)


@pytest.mark.parametrize("user", [A_ADMIN, A_USER, B_USER])
def test_every_modal_submitted_from_a_naming_b_changes_nothing_in_b(two: Two, user: str) -> None:
    before = two.b_state()
    seen = registered()
    states: dict[str, list[dict[str, Any]]] = {
        "link_modal": LINK_STATES,
        "keys_add_modal": [
            {
                "api_key": {"api_key": {"type": "plain_text_input", "value": B_KEY}},
                "api_secret": {"api_secret": {"type": "plain_text_input", "value": "guess"}},
            },
            {
                "api_key": {"api_key": {"type": "plain_text_input", "value": "bkey77"}},
                "api_secret": {"api_secret": {"type": "plain_text_input", "value": B_SECRET[:3]}},
            },
        ],
    }
    assert set(states) == set(seen["view"])
    for callback_id in seen["view"]:
        for values in states[callback_id]:
            two.post(sp.view_submission(view=b_view(callback_id, values), team_id=A, user_id=user))
    for action_id in seen["options"]:  # type-ahead in B's modal: only A's own choices come back
        for typed in ("", "bumble", "bkey", "hive", B_PAGE):
            body = suggestion(action_id, typed, b_view("link_modal", LINK_STATES[1]), user)
            reply = two.post(body)
            for option in reply.json().get("options", []) if reply.text else []:
                assert option["value"] not in (B_PAGE, B_KEY, B_APP), option
    assert_b_untouched(two, before)


@pytest.mark.parametrize("user", [A_ADMIN, A_USER, B_USER])
def test_every_subcommand_from_a_naming_b_changes_nothing_in_b(two: Two, user: str) -> None:
    before = two.b_state()
    for name in SUBCOMMANDS:
        for arg in NAMED:
            two.command(f"{name} {arg}", user=user)
        two.command(f"{name} 'bumblebee bakery' BKEY777", user=user)
        two.command(f"{name} {B_PAGE} app {B_APP}", user=user)
        two.command(f"{name} {B_PAGE} <#{B_CHANNEL}|hive>", user=user)
    for text in ("unlink " + B_PAGE, "remind bumblebee off", f"remind <#{B_CHANNEL}|hive>", "history " + B_PAGE):
        two.command(text, user=user, channel=B_CHANNEL)
    assert_b_untouched(two, before)
    for text in (
        "keys remove " + B_KEY,
        f"link {A_PAGE} {B_KEY}",
        f"unlink '{B_PAGE_NAME}'",
        f"relink '{B_PAGE_NAME}'",
    ):
        two.command(text, user=user)  # B's exact names (echoed back as typed): B must still be untouched
    assert_b_untouched(two, before, shown=False)


def test_b_sees_its_own_link_so_the_attacks_had_something_to_find(two: Two) -> None:
    """B's own person, in B, sees B's link: what A must not see is really there."""
    r = two.command("status", user=B_USER, team=B, channel=B_CHANNEL)
    assert B_PAGE_NAME in r.text


def suggestion(action_id: str, typed: str, view: dict[str, Any], user: str) -> dict[str, Any]:
    """A block_suggestion payload, as Slack sends it for an external select in a modal."""
    return {
        "type": "block_suggestion",
        "user": sp.user_object(user, sp.HOSTILE["user_name"], A),
        "container": {"type": "view", "view_id": view["id"]},
        "api_app_id": sp.APP_ID,
        "token": sp.TOKEN,
        "action_id": action_id,
        "block_id": {"link_modal_key": "key"}.get(action_id, action_id),
        "value": typed,
        "team": sp.team_object(A, sp.HOSTILE["team_domain"], None, None),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
    }


def test_a_submission_naming_bs_open_view_does_not_swallow_bs_own(two: Two, vonage: FakeVonage) -> None:
    """A modal delivered twice is handled once; A replaying B's view id and hash must not count as B's."""
    vonage.add_key("bnew0001", "b-new-secret")
    view = sp.view_object(view_id="VBKEYS0001", team_id=B, callback_id="keys_add_modal", hash="1790000000.b0b0b0b0")

    def values(key: str, secret: str) -> dict[str, Any]:
        return {
            "api_key": {"api_key": {"type": "plain_text_input", "value": key}},
            "api_secret": {"api_secret": {"type": "plain_text_input", "value": secret}},
        }

    vonage.add_key("anew0001", "a-new-secret")
    two.post(
        sp.view_submission(
            view={**view, "state": {"values": values("anew0001", "a-new-secret")}}, team_id=A, user_id=A_ADMIN
        )
    )
    two.settle()
    two.post(
        sp.view_submission(
            view={**view, "state": {"values": values("bnew0001", "b-new-secret")}}, team_id=B, user_id=B_ADMIN
        )
    )
    two.settle()
    b_keys = [r["api_key"] for r in two.bot.store.select("SELECT api_key FROM vonage_keys WHERE team_id = ?", [B])]
    assert "bnew0001" in b_keys, "B's own submission was swallowed by A's replay of its view"


def test_a_refusal_names_none_of_bs_admins(two: Two) -> None:
    answer = two.command("keys list", user=A_USER).text
    assert "Only fblink admins" in answer
    assert B_ADMIN not in answer


def test_a_sync_never_imports_a_page_b_linked_with_the_default_key(two: Two, vonage: FakeVonage) -> None:
    bistro = "777000000000002"
    vonage.add_account(VONAGE_KEY, bistro, "EAAbistro", name="Bumblebee Bistro")
    two.bot.store.upsert_link(
        B, bistro, now=START, page_name="Bumblebee Bistro", api_key=VONAGE_KEY, linked_by=B_USER, status="active"
    )
    two.command("sync", user=A_ADMIN)
    two.settle()
    assert two.bot.store.select("SELECT page_id FROM links WHERE team_id = ? AND page_id = ?", [A, bistro]) == []
    assert "Bumblebee Bistro" not in two.seen_by_a()
