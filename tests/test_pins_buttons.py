"""Issue 23 item 1: every button and select fblink sends works as sent. Each test finds the button as
a user does (its label, beside the Page it is about) in the blocks the fake Slack received, and sends
the ``action_id`` and ``value`` fblink put in it (tests/posted.py): a button whose action_id no
listener answers, or whose value its listener cannot use, fails here as it fails for a user."""

from __future__ import annotations

import pytest

from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in, text_of
from tests.posted import click, find, submit_modal
from tests.sweep_helpers import DAY, posts, run_sweep, seed

APP1 = "aaaaaaaa-0000-4000-8000-0000000000b1"
APP2 = "aaaaaaaa-0000-4000-8000-0000000000b2"
PAGES = [
    {"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "102", "name": "Bolt Hardware", "category": "Shop", "tasks": ["MESSAGING"]},
    *({"id": f"2{i:02d}", "name": f"Zed Shop {i:02d}", "category": "Shop", "tasks": ["MANAGE"]} for i in range(10)),
]


@pytest.fixture
def world(bot, graph, vonage):
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    vonage.add_application(VONAGE_KEY, APP2, "Sales Bot")
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.slack.wait_message("Connected to Facebook")
    return bot


def answered(bot, contains: str, name: str = "r") -> str:
    """The first response_url answer to ``name`` that contains ``contains``, as text."""
    return text_of(
        bot.slack.wait_for(
            lambda: next(
                (r for r in bot.slack.responses if r["url_name"] == name and contains in text_of(r)),
                None,
            )
        )
    )


def linked(bot, command: str = "link 101", channel: str = "CLINK") -> None:
    bot.command(command, channel=channel, response="link")
    answered(bot, "Linked *Acme Coffee*", "link")


def test_the_reminders_relink_now_button(world):
    bot = world
    linked(bot)
    run_sweep(bot, START + 76 * DAY + 1)
    (reminder,) = posts(bot, "CLINK")
    button = find(bot, "Re-link now", near="Acme Coffee")
    assert button.ts == reminder["ts"]
    bot.clock.at = START + 77 * DAY
    assert click(bot, button, response="relink").status_code == 200
    answered(bot, "Re-linked *Acme Coffee*", "relink")
    assert bot.store.get_link(TEAM, "101").period == 2


def test_the_status_messages_relink_and_paging_buttons(world):
    bot = world
    linked(bot)
    seed(bot, 12, expires=START + 200 * DAY)  # later than Acme Coffee: it is on the first page
    status = bot.command("status").json()
    click(bot, find(bot, "Next", acks=[status]), response="next")
    second = answered(bot, "Links in this workspace", "next")
    assert "Shop 700009" in second and "Acme Coffee" not in second
    click(bot, find(bot, "Previous"), response="prev")
    assert "Acme Coffee" in answered(bot, "Links in this workspace", "prev")
    click(bot, find(bot, "Re-link", near="Acme Coffee", acks=[status]), response="relink")
    answered(bot, "Re-linked *Acme Coffee*", "relink")


def test_the_app_homes_relink_button(world):
    bot = world
    linked(bot)
    bot.open_home("U1")
    button = find(bot, "Re-link", near="Acme Coffee")
    assert button.surface == "view"
    bot.slack.messages.clear()
    click(bot, button)
    bot.slack.wait_message("Re-linked *Acme Coffee*")  # no response_url on the Home tab: a DM
    assert bot.store.get_link(TEAM, "101").period == 2


def test_the_pages_buttons_link_open_the_modal_relink_unlink_and_page(world, vonage):
    bot = world
    bot.command("pages", response="pages")
    answered(bot, "Your Facebook Pages", "pages")
    click(bot, find(bot, "Link", near="Bolt Hardware"))
    opened = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.open"])
    assert opened[-1]["view"]["blocks"][0]["element"]["initial_option"]["value"] == "102"

    click(bot, find(bot, "Next"), response="next")
    assert "Zed Shop 09" in answered(bot, "Your Facebook Pages", "next")
    click(bot, find(bot, "Previous"), response="prev")
    assert "Acme Coffee" in answered(bot, "Your Facebook Pages", "prev")

    linked(bot)
    bot.slack.responses.clear()
    bot.command("pages", response="pages2")
    answered(bot, "Your Facebook Pages", "pages2")
    bot.slack.views.clear()
    click(bot, find(bot, "Change application", near="Acme Coffee"))
    opened = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.open"])
    assert opened[-1]["view"]["blocks"][0]["element"]["initial_option"]["value"] == "101"
    click(bot, find(bot, "Re-link", near="Acme Coffee"), response="relink")
    answered(bot, "Re-linked *Acme Coffee*", "relink")
    click(bot, find(bot, "Unlink", near="Acme Coffee"), response="unlink")
    answered(bot, "Removed *Acme Coffee*", "unlink")
    assert bot.store.get_link(TEAM, "101") is None and "101" not in vonage.accounts[VONAGE_KEY]


def test_the_replace_prompts_replace_and_keep_buttons(world, vonage):
    bot = world
    linked(bot, "link 101 app Support Bot")
    bot.command("link 101 app Sales Bot", response="ask")
    answered(bot, "already linked to application", "ask")
    click(bot, find(bot, "Keep current"), response="keep")
    answered(bot, "Kept the current application", "keep")
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP1]
    click(bot, find(bot, "Replace"), response="replace")
    answered(bot, "Replaced the application", "replace")
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP2]
    assert bot.store.get_link(TEAM, "101").application_id == APP2


def test_the_disconnect_button_of_whoami_and_of_the_connected_message(world, graph):
    bot = world
    click(
        bot, find(bot, "Not me: disconnect", near="Connected to Facebook"), response="dm"
    )  # the "Connected" DM's button
    answered(bot, "Disconnected", "dm")
    assert bot.store.get_login(TEAM, "U1") is None
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    whoami = bot.command("whoami").json()
    click(bot, find(bot, "Not me: disconnect", acks=[whoami]), response="whoami")
    answered(bot, "Disconnected", "whoami")
    assert bot.store.get_login(TEAM, "U1") is None


def test_the_login_buttons_click_is_acknowledged(bot):
    ack = bot.command("login").json()
    button = find(bot, "Continue with Facebook", acks=[ack])
    assert button.element["url"].startswith("https://fblink.test/")
    assert click(bot, button).status_code == 200  # an unknown action_id gets Bolt's 404


def test_the_link_modals_key_select_and_submission(world, vonage):
    bot = world
    bot.services.settings.fblink_admins = "UADMIN,U1"  # admins are offered every key
    bot.store.add_key(TEAM, "second99", "s2-secret", by="UADMIN", now=START)
    vonage.add_key("second99", "s2-secret")
    other = "bbbbbbbb-0000-4000-8000-0000000000b9"
    vonage.add_application("second99", other, "Other Key Bot")
    bot.command("pages", response="pages")
    answered(bot, "Your Facebook Pages", "pages")
    click(bot, find(bot, "Link", near="Bolt Hardware"))
    bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.update"])
    shown = len(bot.slack.views)
    click(bot, find(bot, "Vonage API key"), choose="second99")
    bot.slack.wait_for(lambda: len(bot.slack.views) > shown)
    app_select = find(bot, "Vonage application")
    assert [o["value"] for o in app_select.element["options"]] == [other]
    r = submit_modal(bot, {"Vonage application": f"Other Key Bot ({other[:8]})"})
    assert r.status_code == 200 and not r.content.strip(b" {}")
    bot.slack.wait_message("Linked *Bolt Hardware*")
    link = bot.store.get_link(TEAM, "102")
    assert (link.api_key, link.application_id) == ("second99", other)
    assert vonage.accounts["second99"]["102"]["applications"] == [other]
