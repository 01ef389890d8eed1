"""Slack ingress parsed as Slack sends it: by field, with hostile names, and bad headers refused with a 4xx.

Issue 8, "Found" 1 and 5: a form body containing the word "payload" anywhere used to be taken for an
interactive payload (HTTP 404, no answer), and a non-ASCII signature header used to crash with a 500.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.fakes import slack_payloads as sp
from bot.web import parse_slack_body, shape_ok, signature_ok
from tests.conftest import SIGNING_SECRET, TEAM, VONAGE_KEY
from tests.flows import log_in, text_of


def _parse(text: str, content_type: str) -> dict | None:
    """The parsed body when fblink accepts it, as the route sees it."""
    parsed = parse_slack_body(text, content_type)
    return parsed[1] if parsed is not None and shape_ok(parsed[1]) else None


FORM = "application/x-www-form-urlencoded"
PAGES = [
    {"id": "201", "name": "payload-pros", "category": "Shop", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "202", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
]


def post_command(bot, text: str, **fields: str):  # type: ignore[no-untyped-def]
    body = sp.form_body(sp.slash_command(text=text, response_url=bot.slack.response_url(), **fields))
    return bot.http.post(bot.url + "/slack/events", content=body, headers=sp.signed_headers(body, SIGNING_SECRET))


# -- the word "payload" in any field ------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"team_domain": "payload-inc"},
        {"channel_name": "payload"},
        {"user_name": "payload"},
        {"enterprise_id": "E0001", "enterprise_name": "payload=1&x"},
    ],
)
def test_quick_command_from_a_payload_named_place_is_answered(bot, fields):
    r = post_command(bot, "help", **fields)
    assert r.status_code == 200, r.text
    assert "/fblink" in text_of(r.json())


def test_link_payload_pros_from_payload_inc_links_the_page(bot, graph, vonage):
    """The issue's reproduction: a slow command (Bolt + lazy listener) whose text and team contain "payload"."""
    log_in(bot, graph, pages=PAGES)
    r = post_command(bot, "link payload-pros", team_domain="payload-inc", channel_name="payload")
    assert r.status_code == 200, r.text
    resp = bot.slack.wait_response("Linked")
    assert "payload-pros" in text_of(resp)
    assert bot.store.get_link(TEAM, "201").api_key == VONAGE_KEY


def test_history_payload_is_answered(bot):
    r = post_command(bot, "history payload")
    assert r.status_code == 200, r.text


def test_a_form_with_a_payload_field_is_interactive(bot):
    """The converse: the `payload` FIELD makes it interactive, even when the JSON inside names a command."""
    payload = sp.block_actions(action_id="status_page", value="0", response_url=bot.slack.response_url())
    payload["command"] = "/fblink"
    body = sp.interactive_body(payload)
    r = bot.http.post(bot.url + "/slack/events", content=body, headers=sp.signed_headers(body, SIGNING_SECRET))
    assert r.status_code == 200, r.text


# -- the parser, property-tested -------------------------------------------------------------

FRAGMENTS = ["payload", "payload=", "&", "=", "+", "%", "%26", "'", '"', " ", "🙂", "中文", "ü", ";", "\n", "{", "["]
hostile = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(st.characters(blacklist_categories=("Cs",)), max_size=4), max_size=12
).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile, team_domain=hostile, channel_name=hostile, user_name=hostile, enterprise_name=hostile)
def test_parse_reads_a_slash_command_field_by_field(text, team_domain, channel_name, user_name, enterprise_name):
    fields = sp.slash_command(
        text=text,
        team_domain=team_domain,
        channel_name=channel_name,
        user_name=user_name,
        enterprise_id="E1",
        enterprise_name=enterprise_name,
        response_url="https://h/x",
    )
    assert _parse(sp.form_body(fields).decode(), FORM + "; charset=utf-8") == fields


@settings(max_examples=100)
@given(name=hostile)
def test_parse_reads_an_interactive_payload_with_hostile_names(name):
    payload = sp.view_submission(
        callback_id="link_modal", user_name=name, team_domain=name, private_metadata=json.dumps({"n": name})
    )
    assert _parse(sp.interactive_body(payload).decode(), FORM) == payload


@pytest.mark.parametrize(
    "body,ctype",
    [
        ("payload=" + "[" * 100_000, FORM),  # deeply nested JSON: RecursionError, not ValueError
        ("payload=%7B%22type%22%3A", FORM),  # truncated JSON
        ("payload=42", FORM),  # JSON that is not an object
        ("[" * 100_000, "application/json"),  # an Events API body that recurses
        ("{" + "[" * 100_000, ""),  # no content type: a body starting with "{" is JSON
    ],
)
def test_parse_refuses_broken_payloads(body, ctype):
    assert _parse(body, ctype) is None


# -- headers: always a 4xx ----------------------------------------------------------------------


def _headers(bot, body: bytes) -> dict[str, str]:
    return sp.signed_headers(body, SIGNING_SECRET)


@pytest.mark.parametrize(
    "name,value",
    [
        ("X-Slack-Signature", "v0=é" + "a" * 63),
        ("X-Slack-Signature", "v0=\u00ff\u00fe"),
        ("X-Slack-Signature", "v1=" + "a" * 64),
        ("X-Slack-Signature", "sha256=" + "a" * 64),
        ("X-Slack-Signature", ""),
        ("X-Slack-Signature", "v0=" + "a" * 7000),
        ("X-Slack-Request-Timestamp", "١٧٩٠٠٠٠٠٠٠"),
        ("X-Slack-Request-Timestamp", "9" * 5000),
        ("X-Slack-Request-Timestamp", "-1"),
        ("X-Slack-Request-Timestamp", "+1790000000"),
        ("X-Slack-Request-Timestamp", "1_790_000_000"),
        ("X-Slack-Request-Timestamp", "é"),
        ("X-Slack-Request-Timestamp", ""),
    ],
)
def test_malformed_signature_headers_get_4xx(bot, name, value):
    body = sp.form_body(sp.slash_command(text="help"))
    headers = _headers(bot, body)
    headers[name] = value
    r = bot.http.post(
        bot.url + "/slack/events", content=body, headers={k: v.encode("utf-8") for k, v in headers.items()}
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])


@pytest.mark.parametrize("missing", ["X-Slack-Signature", "X-Slack-Request-Timestamp"])
def test_missing_signature_headers_get_4xx(bot, missing):
    body = sp.form_body(sp.slash_command(text="help"))
    headers = _headers(bot, body)
    del headers[missing]
    r = bot.http.post(bot.url + "/slack/events", content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.status_code


def test_huge_header_gets_4xx(bot):
    body = sp.form_body(sp.slash_command(text="help"))
    headers = _headers(bot, body)
    headers["X-Slack-Signature"] = "v0=" + "a" * 30_000
    r = bot.http.post(bot.url + "/slack/events", content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.status_code


@pytest.mark.parametrize("signature", ["v0=é", "v0=" + "a" * 64, "", "v0=\udcff"])
def test_signature_ok_never_raises(signature):
    assert signature_ok("secret", b"body", "1790000000", signature, now=1790000000) is False


def test_signature_ok_accepts_slacks_signature():
    body = b"token=x&text=payload"
    assert signature_ok("secret", body, "1790000000", sp.sign(body, "1790000000", "secret"), now=1790000000)


# -- what users see, through the fake's conversation state -----------------------------------------


def test_a_command_answer_is_ephemeral_to_the_user_who_ran_it(bot):
    """The demo's path: post the command, record fblink's HTTP answer, read what each user sees."""
    bot.slack.record_user_message("C1", "U1", "/fblink help")
    r = bot.command("help", user="U1", channel="C1")
    bot.slack.record_ack("C1", "U1", r.json())
    mine = [m.source for m in bot.slack.history("C1", "U1")]
    assert mine == ["user", "ack"]
    assert [m.source for m in bot.slack.history("C1", "U2")] == ["user"]


def test_a_slow_answer_lands_in_the_channel_for_that_user_only(bot):
    r = bot.command("sync", user="U1", channel="C1")  # slow: answered after the ack, on response_url
    assert r.status_code == 200
    bot.slack.wait_for(lambda: bot.slack.history("C1", "U1"))
    (msg,) = bot.slack.history("C1", "U1")
    assert msg.source == "response_url" and "Synced with Vonage" in msg.text + text_of(msg.blocks)
    assert bot.slack.history("C1", "U2") == []


def test_stale_modal_hash_is_not_an_unhandled_error(bot, graph, vonage, caplog):
    """Two quick changes of the key select: the second payload carries the hash from before fblink's update."""
    import logging

    caplog.set_level(logging.INFO)
    log_in(bot, graph, pages=PAGES)
    view = sp.view_object(
        callback_id="link_modal",
        private_metadata="{}",
        state_values={"key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": VONAGE_KEY}}}},
    )
    action = sp.select_action("link_modal_key", VONAGE_KEY, block_id="key")
    for _ in range(2):  # the same (now stale) hash twice, as Slack sends it when the user is quicker than fblink
        assert bot.interact(sp.block_actions(action=action, view=view)).status_code == 200
        bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.update"])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not [r for r in caplog.records if r.levelno >= logging.ERROR]:
        time.sleep(0.05)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("superseded" in r.getMessage() for r in caplog.records)


def test_opening_the_home_tab_publishes_it_for_that_user(bot):
    assert bot.open_home("U1").status_code == 200
    first = bot.slack.wait_for(lambda: bot.slack.home_of("U1"))
    assert first["type"] == "home" and bot.slack.home_of("U2") is None
    assert bot.open_home("U1").status_code == 200  # the second event carries the published view
    bot.slack.wait_for(lambda: bot.slack.home_of("U1")["hash"] != first["hash"])
    assert bot.slack.home_of("U1")["id"] == first["id"]
