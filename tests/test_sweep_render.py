"""Issue 9 rendering pins: how reminder messages are rebuilt after a re-link."""

from __future__ import annotations

import pytest

from tests.conftest import START
from tests.flows import log_in, text_of
from tests.sweep_helpers import DAY, posts, run_sweep, shops_due

PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]


def updates(bot) -> list[dict]:
    return bot.slack.wait_for(lambda: [m for m in bot.slack.messages if m["method"] == "chat.update"])


@pytest.fixture
def digest(bot, graph):
    log_in(
        bot,
        graph,
        pages=[{"id": "500", "name": "Shop 0", "category": "Shop", "tasks": ["MANAGE"]}],
        data_access_expires_at=START + 365 * DAY,
    )
    shops_due(bot, 7, days_left=lambda i: 5 + i)
    assert run_sweep(bot, START + 60)[0] == ["posted digest of 7 to CBULK"]
    (msg,) = posts(bot, "CBULK")
    bot.slack.responses.clear()
    return bot, msg


def test_single_reminder_is_updated_as_a_single_message_with_its_notification_text(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    exp = START + 90 * DAY
    run_sweep(bot, exp - 14 * DAY + 1)
    (reminder,) = posts(bot, "CLINK")
    bot.clock.at = exp - 13 * DAY
    bot.click("reminder_relink", "101", channel="CLINK", message_ts=reminder["ts"])
    (upd,) = updates(bot)
    assert upd["ts"] == reminder["ts"] and upd["channel"] == "CLINK"
    assert upd["text"].startswith(":white_check_mark: *Acme Coffee* was re-linked by <@U1>. New expiry: <!date^")
    assert len(upd["blocks"]) == 1 and upd["blocks"][0]["type"] == "section" and "accessory" not in upd["blocks"][0]
    assert upd["blocks"][0]["text"]["text"] == upd["text"]


def test_digest_is_updated_as_a_digest_with_its_notification_text(digest):
    bot, msg = digest
    bot.click("reminder_relink", "500", channel="CBULK", message_ts=msg["ts"])
    (upd,) = updates(bot)
    assert upd["text"] == ":alarm_clock: 7 Facebook Page links needed attention"
    assert upd["blocks"][0]["text"]["text"] == f"*{upd['text']}*" and len(upd["blocks"]) == 8
    assert sum("accessory" in b for b in upd["blocks"]) == 6


def test_earlier_thresholds_reminder_rebuilt_after_the_link_expired(digest):
    bot, msg = digest
    before = text_of(msg)
    assert "*Shop 1*: the link to Vonage expires in *6 days*" in before
    bot.clock.at = START + 6 * DAY + 3600  # Shop 0 and Shop 1 have expired since the digest went out
    bot.click("reminder_relink", "500", channel="CBULK", message_ts=msg["ts"])
    (upd,) = updates(bot)
    blob = text_of(upd)
    assert "*Shop 1*: the link to Vonage has *expired*" in blob
    assert "*Shop 3*: the link to Vonage expires in *2 days*" in blob  # the others count from now
    assert "*Shop 0* was re-linked by <@U1>" in blob
