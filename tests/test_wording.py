"""Issue 21 items 6, 12 and 13: messages say what happens, where, and whom to ask, in words."""

from __future__ import annotations

import asyncio

from bot.clock import FixedClock
from bot.reminders import run_sweep_once
from tests.conftest import START
from tests.flows import log_in, text_of

DAY = 86400
PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]


def test_a_link_confirmation_says_where_reminders_go(bot, graph):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="COPS")
    said = text_of(bot.slack.wait_response("Linked *Acme Coffee*"))
    assert "Reminders go to <#COPS>; change with `/fblink remind`" in said


def test_an_early_reminder_says_what_happens_at_expiry_and_what_a_relink_resets(bot, graph):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="COPS")
    bot.slack.wait_response("Linked *Acme Coffee*")
    expires = START + 90 * DAY
    asyncio.run(run_sweep_once(bot.services.settings, FixedClock(expires - 7 * DAY + 60)))
    (post,) = [m for m in bot.slack.messages if m["method"] == "chat.postMessage" and "expires in" in text_of(m)]
    blob = text_of(post)
    assert post["channel"] == "COPS"
    assert "expires in *7 days*" in blob  # the 7-day reminder says 7 days
    assert "stop reaching Vonage until someone re-links it" in blob
    assert "lasts 90 days from the last Facebook login" in blob and "fresh Page token" in blob


def test_permission_refusals_name_the_admins_in_words(bot):
    blob = text_of(bot.command("keys list", user="U2").json())
    assert "Only fblink admins can do that. Ask <@UADMIN>" in blob
    assert "FBLINK_" not in blob
    blob = text_of(bot.command("remind #ops", user="U2").json())
    assert "<@UADMIN>" in blob and "FBLINK_" not in blob


def test_keys_with_a_wrong_word_says_which(bot):
    blob = text_of(bot.command("keys frob", user="UADMIN").json())
    assert "I don't know `keys frob`" in blob and "Usage:" in blob


def test_the_link_modal_answers_in_the_channel_it_was_opened_from_too(bot, graph):
    import json

    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.slack.wait_message("Connected to Facebook")
    bot.command("pages")  # fblink reads the person's Pages from Facebook (the modal offers those)
    bot.slack.wait_response("Your Facebook Pages")
    bot.submit(
        "link_modal",
        {
            "page": {"page": {"type": "static_select", "selected_option": {"value": "101"}}},
            "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": "abcd1234"}}},
        },
        private_metadata=json.dumps({"channel": "COPS"}),
    )
    here = bot.slack.wait_for(
        lambda: [m for m in bot.slack.messages if m["method"] == "chat.postEphemeral" and "Linked" in text_of(m)]
    )
    assert here[0]["channel"] == "COPS" and here[0]["user"] == "U1"  # "Only visible to you", where they acted
    assert "Reminders go to <#COPS>" in text_of(here[0])
    bot.slack.wait_message("Linked *Acme Coffee*")  # and in the DM, as before


def test_a_reminder_posted_late_names_its_threshold(bot, graph):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="COPS")
    bot.slack.wait_response("Linked *Acme Coffee*")
    expires = START + 90 * DAY
    asyncio.run(run_sweep_once(bot.services.settings, FixedClock(expires - 6 * DAY)))  # the 7-day one, a day late
    (post,) = [m for m in bot.slack.messages if m["method"] == "chat.postMessage" and "expires in" in text_of(m)]
    assert "expires in *6 days* (this is its 7-day reminder)" in text_of(post)


def test_a_login_started_in_a_channel_is_confirmed_there_too(bot, graph):
    from tests.flows import button_urls, confirm_login, query

    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    (url,) = button_urls(bot.command("login", channel="COPS").json())
    confirm_login(bot, url)
    code = graph.issue_code("FB1")
    assert (
        bot.http.get(bot.url + "/facebook/callback", params={"code": code, "state": query(url)["state"]}).status_code
        == 200
    )
    # in the channel, visible to U1 alone: the spent login prompt's place (issue 21 item 8)
    note = bot.slack.wait_for(lambda: [m for m in bot.slack.history("COPS", "U1") if "Connected to Facebook" in m.text])
    assert note[0].ephemeral_to == "U1" and "Connected to Facebook as *Ada Lovelace*" in note[0].text
    assert not bot.slack.history("COPS", "U2")
    bot.slack.wait_message("Connected to Facebook")  # the DM, with its Not me button, as before
