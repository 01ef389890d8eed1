"""Property tests: random Slack traffic against one real running app.

Each test function starts the app once (the ``bot`` fixture: real uvicorn on a real
port, fake Slack/Graph/Vonage behind it) and Hypothesis drives many signed requests
through it. The properties:

* ``/fblink <anything>`` is answered 200 with a JSON body or an empty body, never 5xx;
* interactive payloads (buttons, modal submissions) shaped like Slack's, with random
  values and optional fields left out, are never answered 5xx;
* garbage bodies and corrupted Slack payloads are refused (4xx), never answered 5xx;
* afterwards the app's own log shows no unhandled exception from fblink's listeners
  and ``/healthz`` still answers 200.

``handlers.commands.parse`` and ``handlers.common.split_args`` are also checked as
pure functions.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.crypto import Vault
from bot.fakes import slack_payloads as sp
from bot.graph import Page
from bot.store import Store
from handlers.commands import QUICK, SLOW, parse
from handlers.common import MAX_ARG_TEXT, split_args
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in
from tests.test_links import APP1, APP2, PAGES  # the same world as the link tests

DAY = 86400
ROOT = Path(__file__).resolve().parents[1]
OWN_CODE = (str(ROOT / "bot"), str(ROOT / "handlers"))


SUBCOMMANDS = sorted({*QUICK, *SLOW, "help"})
USERS = ["U1", "UADMIN", "U2"]

# Every listener fblink registers (grep `app.action(` / `app.view(` in handlers/).
MESSAGE_ACTIONS = [
    "login_open", "pages_next", "pages_next_prev", "page_link", "page_link_app", "page_unlink", "page_relink",
    "status_relink", "link_replace", "reminder_relink", "link_keep", "status_next", "status_next_prev",
]
MODAL_ACTIONS = ["link_modal_key"]  # dispatch_action inside the link modal
HOME_ACTIONS = ["status_relink"]  # the App Home tab's "Re-link" accessory
VIEWS = ["link_modal", "keys_add_modal"]

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                derandomize=False)


# -- helpers ---------------------------------------------------------------------------

def unhandled_errors(records: list[logging.LogRecord]) -> list[str]:
    """Log records that mean a listener blew up: Bolt's "Failed to run ..." lines, and
    any record carrying a traceback through fblink's own code (bot/, handlers/)."""
    bad = []
    for rec in records:
        msg = rec.getMessage()
        if rec.name.startswith("slack_bolt") and rec.levelno >= logging.ERROR:
            bad.append(f"{rec.name}: {msg}")
            continue
        if rec.exc_info and rec.exc_info[2] is not None:
            files = [f.filename for f in traceback.extract_tb(rec.exc_info[2])]
            if any(f.startswith(OWN_CODE) for f in files):
                bad.append(f"{rec.name}: {msg} ({rec.exc_info[0].__name__} via {files[-1]})")
    return bad


def settle(bot, quiet: float = 0.6, limit: float = 15.0) -> None:
    """Wait until the lazy listeners stop producing Slack traffic."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = len(bot.slack.requests)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def check_healthy(bot, caplog) -> None:
    settle(bot)
    assert bot.http.get(bot.url + "/healthz").status_code == 200
    errors = unhandled_errors(caplog.records)
    assert not errors, "unhandled errors in the app log:\n" + "\n".join(errors[:20])


def assert_ack(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code < 500, (r.status_code, r.text[:300])


@pytest.fixture
def world(bot, graph, vonage, caplog):
    """U1 and UADMIN logged in with Pages, U2 logged in without any; Page 101 linked (with an application)
    at Vonage and in the DB; a link made by someone else (999). ``bot.restore()`` puts the logins back
    after a random `/fblink logout`, so later examples still reach Graph and Vonage."""
    caplog.set_level(logging.INFO)
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    vonage.add_application(VONAGE_KEY, APP2, "Sales Bot")
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 200 * DAY)
    log_in(bot, graph, user="UADMIN", fb_user="FBADMIN", name="Admin", pages=PAGES[:2])
    log_in(bot, graph, user="U2", fb_user="FB2", name="Nobody", pages=[])
    bot.command("link 101 app Support Bot")
    bot.slack.wait_response("Linked *Acme Coffee*")
    bot.store.upsert_link(TEAM, "999", now=START, page_name="Someone Else's <Page>", api_key=VONAGE_KEY,
                          linked_by="U7", expires_at=START + 30 * DAY, status="active")
    # The app's Store connection belongs to the app's thread; the test thread gets its own on the same file.
    settings_ = bot.services.settings
    db = Store(settings_.fblink_database, Vault(settings_.fblink_secret_key))
    saved = {u: (db.get_login(TEAM, u), db.get_pages(TEAM, u)) for u in USERS}

    def restore() -> None:
        for user, (login, pages) in saved.items():
            if db.get_login(TEAM, user) is None:
                db.save_login(login, now=START)
                db.save_pages(TEAM, user, [Page(p.page_id, p.name, p.category, p.tasks, p.token) for p in pages],
                              now=START)

    bot.restore = restore
    yield bot
    db.close()


# -- strategies ------------------------------------------------------------------------

TRICKY_WORDS = [
    "<", ">", "&", "&amp;", "&lt;", "&gt;", "&#x0;", "&#99999999;", '"', "'", '"unbalanced', "'also", "\\",
    "“curly”", "app", "APP", "add", "remove", "list", "off", "on", "mute", "<#C0123456|general>", "<#C0123456>",
    "<@U1>", "<!channel>", "101", "102", "103", "999", "Acme", "Coffee", "Support", "Bot", VONAGE_KEY, "nosuchkey",
    "\x00", "\n", "\r\n", "\t", "\x1b[31m", "\u202e", "\u200b", "😀", "İ", "ß", "Ⅻ", "%", "%00", "+", "=",
    "x" * 600, "y" * 3000, "<" * 200, "&amp;" * 200, "payload", "payload=", "payload-pros", "payload={}",
    "%26payload%3D", sp.HOSTILE["text"], sp.LONG_NAME,
]

# Names Slack sends along with every request (team domain, channel, user, enterprise): fblink must not care.
NAMES = st.one_of(
    st.sampled_from([*sp.HOSTILE.values(), "payload", "payload=1&payload=2", "a+b%20c=d&e", "'\"", "🙂" * 40]),
    st.text(max_size=80),
    st.lists(st.sampled_from(["payload", "&", "=", "+", "%", "%2", "'", '"', "🙂", "名前", " "]), max_size=10).map("".join),
)


@st.composite
def slack_names(draw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The name fields of a slash command, drawn (the ids stay fixed so the user is a known one)."""
    names = {k: draw(NAMES) for k in ("team_domain", "channel_name", "user_name")}
    if draw(st.booleans()):
        names.update(enterprise_id="E0001", enterprise_name=draw(NAMES))
    return names


def with_names(draw, payload: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Fill the interaction's team, user and enterprise the way Slack does, with drawn names."""
    user_name, domain = draw(NAMES), draw(NAMES)
    payload["team"] = {"id": TEAM, "domain": domain}
    payload["user"] = {"id": payload["user"]["id"], "username": user_name, "name": user_name, "team_id": TEAM}
    if draw(st.booleans()):
        ent = draw(NAMES)
        payload["enterprise"] = {"id": "E0001", "name": ent}
        payload["team"].update(enterprise_id="E0001", enterprise_name=ent)
    else:
        payload["enterprise"] = None
    payload["is_enterprise_install"] = False
    return payload

words = st.one_of(
    st.sampled_from(TRICKY_WORDS),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=50, max_size=1500),
)


@st.composite
def command_texts(draw) -> str:  # type: ignore[no-untyped-def]
    how = draw(st.integers(0, 9))
    if how == 0:
        return draw(st.text(max_size=300))  # anything at all
    sub = draw(st.sampled_from(SUBCOMMANDS + [""]))
    sub = draw(st.sampled_from([sub, sub.upper(), sub.title()]))
    rest = draw(st.lists(words, max_size=6))
    sep = draw(st.sampled_from([" ", "  ", "\t", "\n", " \u00a0"]))
    return sep.join([sub, *rest]) if rest else sub + draw(st.sampled_from(["", " ", "\n"]))


values = st.one_of(
    st.sampled_from(["", "0", "-1", "10", "99999", "1e9", "NaN", "101", "102", "999", VONAGE_KEY, APP1, APP2,
                     "null", "[]", "{}", '{"p"', "\x00", "x" * 3000]),
    st.text(max_size=40),
    st.builds(lambda p, k, a: json.dumps({"p": p, "k": k, "a": a}),
              st.sampled_from(["101", "102", "103", "999", "", "x"]),
              st.sampled_from([VONAGE_KEY, "nosuchkey", ""]),
              st.sampled_from([APP1, APP2, "Support Bot", "nope", ""])),
    st.builds(lambda d: json.dumps(d), st.dictionaries(st.sampled_from(["p", "k", "a", "x"]),
                                                        st.one_of(st.none(), st.integers(), st.text(max_size=5)))),
)


def maybe_drop(draw, payload: dict[str, Any], optional: list[str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    for key in optional:
        if draw(st.booleans()) and draw(st.booleans()):  # each optional field missing 1 time in 4
            payload.pop(key, None)
    return payload


@st.composite
def block_actions(draw, surface: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A block_actions payload as Slack sends it from `surface`, with random values."""
    user = draw(st.sampled_from(USERS))
    ids = {"message": MESSAGE_ACTIONS, "modal": MODAL_ACTIONS, "home": HOME_ACTIONS}[surface]
    action: dict[str, Any] = {"action_id": draw(st.sampled_from(ids)), "block_id": draw(st.text(max_size=10)),
                              "type": draw(st.sampled_from(["button", "static_select"])),
                              "action_ts": f"{time.time():.6f}"}
    if draw(st.integers(0, 5)):
        action["value"] = draw(values)
    if action["type"] == "static_select" and draw(st.booleans()):
        action["selected_option"] = {"text": {"type": "plain_text", "text": "x"}, "value": draw(values)}
    payload: dict[str, Any] = with_names(draw, {
        "type": "block_actions", "user": {"id": user},
        "api_app_id": "A0001", "token": "legacy-unused",
        "trigger_id": f"{draw(st.integers(1, 10**9))}.{time.time_ns()}.trigger",
        "actions": [action],
    })
    if surface == "message":
        channel = draw(st.sampled_from(["C1", "CLINK", "D1", "G0123456"]))
        ts = "1700000000.000100"
        payload.update({
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": draw(st.booleans())},
            "channel": {"id": channel, "name": draw(NAMES)},
            "message": {**sp.message_object(ts=ts, team_id=TEAM), "text": draw(NAMES)},
            "response_url": "RESPONSE_URL",
            "state": {"values": {}},
        })
        return maybe_drop(draw, payload, ["channel", "message", "state", "container"])
    # views: no response_url, the view itself comes along
    if surface == "modal":
        key = draw(st.one_of(st.none(), st.sampled_from([VONAGE_KEY, "nosuchkey", ""]), st.text(max_size=10)))
        page = draw(st.one_of(st.none(), st.sampled_from(["101", "102", "103", "999"]), st.text(max_size=10)))
        state = {"values": {
            "page": {"page": {"type": "static_select", "selected_option": None if page is None else {"value": page}}},
            "key": {"link_modal_key": {"type": "static_select",
                                       "selected_option": None if key is None else {"value": key}}},
        }}
        meta = draw(st.sampled_from(["", json.dumps({"channel": "C9"}), json.dumps({"channel": None}), "{}"]))
        # a fresh view each time: a stale hash on a view fblink already updated is a separate finding
        # (test_slack_ingress.py::test_stale_modal_hash_is_not_an_unhandled_error)
        view = {**sp.view_object(view_id=f"V{time.time_ns()}{draw(st.integers(1, 999))}", team_id=TEAM,
                                 callback_id="link_modal",
                                 private_metadata=meta, title=draw(NAMES)[:24] or "x"), "state": state}
    else:
        view = sp.view_object(view_id="VHOME", team_id=TEAM, type="home")
    payload.update({"container": {"type": "view", "view_id": view["id"]}, "view": view})
    return maybe_drop(draw, payload, ["container"])


@st.composite
def view_submissions(draw) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    user = draw(st.sampled_from(USERS))
    callback = draw(st.sampled_from(VIEWS))
    opt = lambda v: st.one_of(st.none(), st.just({}), st.builds(lambda x: {"value": x}, v))  # noqa: E731
    text_in = lambda v: st.one_of(st.just({}), st.builds(lambda x: {"type": "plain_text_input", "value": x}, v))  # noqa: E731
    some = st.one_of(values, st.sampled_from(["101", "102", "103", VONAGE_KEY, "second99", APP1, APP2]))
    if callback == "link_modal":
        blocks_ = {
            "page": {"page": {"type": "static_select", "selected_option": draw(opt(some))}},
            "key": {"link_modal_key": {"type": "static_select", "selected_option": draw(opt(some))}},
            "app": {"app": {"type": "static_select", "selected_option": draw(opt(some))}},
        }
        meta = draw(st.one_of(st.sampled_from(["", "{}", json.dumps({"channel": "C9"}), json.dumps({"channel": None})]),
                              st.builds(lambda c: json.dumps({"channel": c}), st.text(max_size=12))))
    else:
        blocks_ = {
            "api_key": {"api_key": draw(text_in(st.one_of(st.none(), some, st.text(max_size=50))))},
            "api_secret": {"api_secret": draw(text_in(st.one_of(st.none(), st.text(max_size=50))))},
        }
        meta = ""
    blocks_ = {k: v for k, v in blocks_.items() if draw(st.integers(0, 4))}  # a block sometimes missing
    view = sp.view_object(view_id=f"V{draw(st.integers(1, 10**6))}", team_id=TEAM, callback_id=callback,
                          private_metadata=meta, state_values=blocks_, hash=draw(st.text(max_size=8)) or None)
    return with_names(draw, {
        "type": "view_submission", "user": {"id": user},
        "api_app_id": "A0001", "token": "legacy-unused", "trigger_id": f"{time.time_ns()}.trigger",
        "view": view, "response_urls": [],
    })


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_any = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def fill_response_url(payload: Any, bot) -> Any:  # type: ignore[no-untyped-def]
    if isinstance(payload, dict) and payload.get("response_url") == "RESPONSE_URL":
        payload["response_url"] = bot.slack.response_url("prop")
    return payload


def test_the_strategies_cover_every_registered_listener():
    """If a listener is added in handlers/, the random traffic below must learn about it."""
    import re

    source = "\n".join(p.read_text() for p in (ROOT / "handlers").glob("*.py"))
    actions = set(re.findall(r'app\.action\("([^"]+)"\)', source))
    views = set(re.findall(r'app\.view\("([^"]+)"\)', source))
    assert actions == set(MESSAGE_ACTIONS) | set(MODAL_ACTIONS) | set(HOME_ACTIONS)
    assert views == set(VIEWS)


# -- pure properties -------------------------------------------------------------------

@settings(max_examples=800, deadline=None)
@given(st.text(max_size=700))
@example("")
@example('link "unbalanced')
@example("LINK Acme &amp; Co")
@example("\x00\x00 ''")
@example('""')
def test_parse_never_raises_and_lowercases(text):
    name, args = parse(text)
    assert isinstance(name, str) and isinstance(args, tuple)
    assert all(isinstance(a, str) for a in args)
    assert name == name.lower()
    words = split_args(text)
    assert isinstance(words, list) and all(isinstance(w, str) for w in words)
    assert sum(len(w) for w in words) <= MAX_ARG_TEXT
    if not words:
        assert (name, args) == ("help", ())
    else:
        assert (name, args) == (words[0].lower(), tuple(words[1:]))


plain_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SUBCOMMANDS), st.lists(plain_word, max_size=5), st.sampled_from([" ", "   ", "\t", "\n"]))
def test_parse_round_trips_plain_words(sub, rest, sep):
    text = sep.join([sub.upper(), *rest])
    assume(len(text) <= MAX_ARG_TEXT)
    assert parse(text) == (sub, tuple(rest))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\'\\'),
                        min_size=1, max_size=10).filter(lambda w: w.strip() == w and w.split() == [w]),
                min_size=1, max_size=4))
def test_split_args_honours_quotes_and_slack_escaping(parts):
    phrase = " ".join(parts)
    assume(len(phrase) <= 200 and "&" not in phrase)
    escaped = phrase.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert split_args(f'link "{escaped}" key') == ["link", phrase, "key"]


# -- the running app ---------------------------------------------------------------------

def test_random_commands_are_always_acknowledged(world, caplog):
    bot = world

    @settings(max_examples=150, **SETTINGS)
    @given(text=command_texts(), user=st.sampled_from(USERS), names=slack_names())
    @example(text="", user="U1", names={})
    @example(text="link " + "x" * 5000, user="U1", names={})
    @example(text="keys add", user="UADMIN", names={})
    @example(text='link "Acme Coffee', user="U1", names={})
    @example(text="history \x00", user="U1", names={})
    @example(text="remind Acme Coffee <#C0123456|x>", user="U1", names={})
    @example(text="link payload-pros", user="U1", names={"team_domain": "payload-inc", "channel_name": "payload"})
    @example(text="status", user="U1", names={"user_name": "payload=1&text=help", "enterprise_id": "E1",
                                               "enterprise_name": "payload"})
    def run(text, user, names):
        r = bot.command(text, user=user, fields=names)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        name, args = parse(text)
        if r.content:
            body = r.json()
            assert isinstance(body, dict) and (body.get("text") or body.get("blocks"))
        else:  # only the two subcommands whose answer is a modal ack with an empty body
            assert (name == "link" and not args) or (
                name == "keys" and user == "UADMIN" and args[:1] and args[0].lower() == "add"), (name, args)
        bot.restore()

    run()
    check_healthy(bot, caplog)


@pytest.mark.parametrize("surface", [
    "message",
    "modal",
    "home",  # regression: these clicks carry no response_url (answered by DM since 4c4037a)
])
def test_random_button_clicks_never_5xx(world, caplog, surface):
    bot = world

    @settings(max_examples=120, **SETTINGS)
    @given(payload=block_actions(surface))
    def run(payload):
        r = bot.interact(fill_response_url(payload, bot))
        assert_ack(r)
        if payload.get("actions"):
            assert r.status_code == 200, (r.status_code, r.text[:300])
        bot.restore()

    run()
    check_healthy(bot, caplog)


def test_random_modal_submissions_never_5xx(world, caplog):
    bot = world

    @settings(max_examples=150, **SETTINGS)
    @given(payload=view_submissions())
    def run(payload):
        r = bot.interact(payload)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        if r.content:
            body = r.json()
            assert body.get("response_action") == "errors" and isinstance(body.get("errors"), dict)
            assert set(body["errors"]) <= {"page", "key", "api_key", "api_secret"}

    run()
    check_healthy(bot, caplog)


def test_garbage_bodies_are_refused_not_crashed(world, caplog):
    """Whole-body garbage: non-JSON payloads, JSON that is not an object, unknown types, raw JSON bodies."""
    bot = world

    @settings(max_examples=150, **SETTINGS)
    @given(kind=st.integers(0, 4), junk=json_any, text=st.text(max_size=200))
    def run(kind, junk, text):
        from urllib.parse import urlencode

        if kind == 0:
            r = bot.post_signed(urlencode({"payload": text}).encode(), "application/x-www-form-urlencoded")
        elif kind == 1:
            assume(not isinstance(junk, dict))
            r = bot.interact(junk)
        elif kind == 2:
            r = bot.post_signed(json.dumps(junk).encode(), "application/json")
        elif kind == 3:
            r = bot.post_signed(text.encode(), "application/x-www-form-urlencoded")
        else:
            payload = junk if isinstance(junk, dict) else {"x": junk}
            payload["type"] = text
            r = bot.interact(payload)
        assert_ack(r)

    run()
    check_healthy(bot, caplog)


def test_corrupted_slack_payloads_never_5xx(world, caplog):
    """Slack-typed payloads whose inner structure is replaced by random JSON."""
    bot = world

    @settings(max_examples=150, **SETTINGS)
    @given(base=st.one_of(block_actions("message"), view_submissions()), data=st.data())
    def run(base, data):
        payload = fill_response_url(base, bot)
        paths = [("team",), ("user",), ("view",), ("actions",), ("view", "state"), ("view", "state", "values"),
                 ("view", "type"), ("actions", 0)]
        for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True)):
            node = payload
            try:
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = data.draw(json_any)
            except (KeyError, IndexError, TypeError):
                pass
        r = bot.interact(payload)
        assert_ack(r)

    run()


def test_app_home_opened_with_random_users(world, caplog):
    bot = world

    @settings(max_examples=60, **SETTINGS)
    @given(user=st.one_of(st.sampled_from(USERS), st.text(min_size=1, max_size=12)),
           tab=st.sampled_from(["home", "messages", "about"]))
    def run(user, tab):
        body = sp.app_home_opened(user_id=user, channel_id="D1", tab=tab, team_id=TEAM)
        r = bot.post_signed(json.dumps(body).encode(), "application/json")
        assert r.status_code == 200, (r.status_code, r.text[:300])

    run()
    check_healthy(bot, caplog)
    assert any(v["method"] == "views.publish" for v in bot.slack.views)


# -- App Home clicks come without a response_url ------------------------------------------

def home_click(bot, value: str):  # type: ignore[no-untyped-def]
    return bot.click("status_relink", value, view=sp.view_object(view_id="VHOME", team_id=TEAM, type="home"))


def test_app_home_relink_button_answers_by_dm(world, caplog):
    bot = world
    assert home_click(bot, "101").status_code == 200
    bot.slack.wait_message("Re-linked *Acme Coffee*")
    settle(bot)
    assert not unhandled_errors(caplog.records), unhandled_errors(caplog.records)


def test_app_home_relink_of_a_page_no_longer_linked_tells_the_user(world, caplog):
    bot = world
    """Regression: this answer used to go through the raw `respond`, which a Home click does not have."""
    bot.slack.messages.clear()
    assert home_click(bot, "555").status_code == 200  # the Home tab was published before 555 was unlinked
    wait = bot.slack.wait_for(lambda: [m for m in bot.slack.messages if m.get("channel") == "D1"
                                       and "not linked any more" in json.dumps(m)], timeout=5)
    assert wait
    settle(bot)
    assert not unhandled_errors(caplog.records), unhandled_errors(caplog.records)
