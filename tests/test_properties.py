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

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.crypto import Vault
from bot.fakes import slack_events as se
from bot.fakes import slack_payloads as sp
from bot.graph import Page
from handlers.common import MAX_ARG_TEXT, split_args
from handlers.registry import parse
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in
from tests.slack_strategies import (
    HOME_ACTIONS,
    MESSAGE_ACTIONS,
    MODAL_ACTIONS,
    SUBCOMMANDS,
    USERS,
    VIEWS,
    block_actions,
    command_texts,
    fill_response_url,
    json_any,
    slack_names,
    view_submissions,
)
from tests.store_sync import sync_store
from tests.test_links import APP1, APP2, PAGES  # the same world as the link tests

DAY = 86400
ROOT = Path(__file__).resolve().parents[1]
OWN_CODE = (str(ROOT / "bot"), str(ROOT / "handlers"))


SETTINGS = dict(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], derandomize=False
)


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
    bot.store.upsert_link(
        TEAM,
        "999",
        now=START,
        page_name="Someone Else's <Page>",
        api_key=VONAGE_KEY,
        linked_by="U7",
        expires_at=START + 30 * DAY,
        status="active",
    )
    # The app's Store connection belongs to the app's thread; the test thread gets its own on the same file.
    settings_ = bot.services.settings
    db = sync_store(settings_.database, Vault(settings_.fblink_secret_key))
    saved = {u: (db.get_login(TEAM, u), db.get_pages(TEAM, u)) for u in USERS}

    def restore() -> None:
        for user, (login, pages) in saved.items():
            if db.get_login(TEAM, user) is None:
                db.save_login(login, now=START)
                db.save_pages(
                    TEAM, user, [Page(p.page_id, p.name, p.category, p.tasks, p.token) for p in pages], now=START
                )

    bot.restore = restore
    yield bot
    db.close()


def test_the_strategies_cover_every_registered_listener():
    """If a listener is added in handlers/, the random traffic below must learn about it."""
    import re

    source = "\n".join(p.read_text() for p in (ROOT / "handlers").glob("*.py"))
    actions = set(re.findall(r'app\.action\("([^"]+)"\)', source))
    actions |= set(re.findall(r'on_action\(app, "([^"]+)"', source))
    for group in re.findall(r"for action_id in \(([^)]*)\):\n\s+on_action", source):
        actions |= set(re.findall(r'"([^"]+)"', group))
    views = set(re.findall(r'CALLBACK_ID = "([^"]+)"', source))
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


plain_word = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SUBCOMMANDS), st.lists(plain_word, max_size=5), st.sampled_from([" ", "   ", "\t", "\n"]))
def test_parse_round_trips_plain_words(sub, rest, sep):
    text = sep.join([sub.upper(), *rest])
    assume(len(text) <= MAX_ARG_TEXT)
    assert parse(text) == (sub, tuple(rest))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\"'\\"), min_size=1, max_size=10
        ).filter(lambda w: w.strip() == w and w.split() == [w]),
        min_size=1,
        max_size=4,
    )
)
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
    @example(
        text="status",
        user="U1",
        names={"user_name": "payload=1&text=help", "enterprise_id": "E1", "enterprise_name": "payload"},
    )
    def run(text, user, names):
        r = bot.command(text, user=user, fields=names)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        name, args = parse(text)
        if r.content:
            body = r.json()
            assert isinstance(body, dict) and (body.get("text") or body.get("blocks"))
        else:  # only the two subcommands whose answer is a modal ack with an empty body
            assert (name == "link" and not args) or (
                name == "keys" and user == "UADMIN" and args[:1] and args[0].lower() == "add"
            ), (name, args)
        bot.restore()

    run()
    check_healthy(bot, caplog)


@pytest.mark.parametrize(
    "surface",
    [
        "message",
        "modal",
        "home",  # regression: these clicks carry no response_url (answered by DM since 4c4037a)
    ],
)
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
        paths = [
            ("team",),
            ("user",),
            ("view",),
            ("actions",),
            ("view", "state"),
            ("view", "state", "values"),
            ("view", "type"),
            ("actions", 0),
        ]
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
    @given(
        user=st.one_of(st.sampled_from(USERS), st.text(min_size=1, max_size=12)),
        tab=st.sampled_from(["home", "messages", "about"]),
    )
    def run(user, tab):
        body = se.app_home_opened(user_id=user, channel_id="D1", tab=tab, team_id=TEAM)
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
    wait = bot.slack.wait_for(
        lambda: [m for m in bot.slack.messages if m.get("channel") == "D1" and "not linked any more" in json.dumps(m)],
        timeout=5,
    )
    assert wait
    settle(bot)
    assert not unhandled_errors(caplog.records), unhandled_errors(caplog.records)
