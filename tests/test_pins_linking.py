"""Issue 22 items 10-16 and issue 23 items 4 and 6-8: what linking tells the user, the calls it makes
to Vonage, when a period starts, and the edges of the re-link window and of the Page lease."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from bot.clock import FixedClock
from bot.services import open_services
from handlers.changes import perform_unlink
from handlers.common import Req, dm_responder
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, confirm_login, query, text_of
from tests.linkstate_world import ACCOUNT, APP1, APP2, DAY, answer, audit_rows, run, setup, vonage_apps
from tests.posted import click, find
from tests.sweep_helpers import posts, run_sweep

NAMELESS = "aaaaaaaa-0000-4000-8000-0000000000a3"  # an application Vonage lists without a name


@pytest.fixture
def world(bot, graph, vonage):
    setup(bot, graph, vonage)
    vonage.add_application(VONAGE_KEY, NAMELESS, "")
    return bot


def writes(vonage) -> list[tuple[str, str]]:
    """The calls that change something at Vonage, in order."""
    return [(c.method, c.path) for c in vonage.requests if c.method != "GET"]


def updates(bot) -> list[dict]:
    return [m for m in bot.slack.messages if m["method"] == "chat.update"]


# -- issue 22 item 10, issue 23 item 8: the application's name, or its id ---------------------------


def test_an_unnamed_application_is_named_by_its_id_in_every_answer(world, vonage):
    bot = world
    linked = run(bot, f"link 101 app {NAMELESS}", "Linked *Acme Coffee*")
    assert NAMELESS in linked and "**" not in linked
    prompt = run(bot, "link 101 app Support Bot", "already linked to application")
    assert NAMELESS in prompt and "**" not in prompt  # the current one, unnamed: its id
    replace = find(bot, "Replace")
    bot.slack.responses.clear()
    click(bot, replace, response="rep")
    replaced = answer(bot, "Replaced the application", name="rep")
    assert "Support Bot" in replaced
    prompt = run(bot, f"link 101 app {NAMELESS}", "already linked to application")
    assert f"Replace it with *{NAMELESS}*?" in prompt  # the wanted one, unnamed: its id
    replace = find(bot, "Replace")
    bot.slack.responses.clear()
    click(bot, replace, response="rep2")
    assert NAMELESS in answer(bot, "Replaced the application", name="rep2")
    assert bot.store.get_link(TEAM, "101").application_id == NAMELESS
    unlinked = run(bot, f"unlink 101 app {NAMELESS}", "Unlinked application")
    assert f"Unlinked application *{NAMELESS}* from *Acme Coffee*" in unlinked
    history = bot.command("history 101").json()["text"]
    assert f"*{NAMELESS[:8]}*" in history and "**" not in history  # no name recorded: (the start of) its id


def test_a_named_application_is_named_in_the_unlink_answer(world, vonage):
    bot = world
    run(bot, "link 101 app Sales Bot", "Linked")
    unlinked = run(bot, "unlink 101 app Sales Bot", "Unlinked application")
    assert "Unlinked application *Sales Bot* from *Acme Coffee*" in unlinked
    assert vonage_apps(vonage, "101") == []


# -- issue 23 item 4: two applications with one name -----------------------------------------------


def test_two_applications_with_the_same_name_are_refused_as_ambiguous(world, vonage):
    bot = world
    twin = "aaaaaaaa-0000-4000-8000-0000000000a9"
    vonage.add_application(VONAGE_KEY, twin, "support bot")  # the same name, as matched (case-insensitive)
    vonage.reset_log()
    refused = run(bot, "link 101 app Support Bot", "More than one application")
    assert APP1 in refused and twin in refused  # both offered, each by its id
    assert writes(vonage) == [] and bot.store.get_link(TEAM, "101") is None
    pick = find(bot, "support bot")  # the user picks one of the two
    bot.slack.responses.clear()
    click(bot, pick, response="pick")
    answer(bot, "Linked *Acme Coffee*", name="pick")
    assert vonage_apps(vonage, "101") == [twin]
    run(bot, f"link 101 app {APP1}", "already linked to application")  # its namesake, by id
    replace = find(bot, "Replace")
    bot.slack.responses.clear()
    click(bot, replace, response="rep")
    answer(bot, "Replaced the application", name="rep")  # the button names the application by id
    assert vonage_apps(vonage, "101") == [APP1]


# -- issue 22 item 11: re-linking when Vonage has the account, or lost it ----------------------------


@pytest.mark.parametrize("command", ["link 101", "relink 101"])
def test_relink_of_an_account_vonage_still_has_refreshes_it(world, vonage, graph, command):
    bot = world
    run(bot, "link 101 app Support Bot", "Linked")
    vonage.reset_log()
    run(bot, command, "inked *Acme Coffee*")
    assert writes(vonage) == [("PATCH", f"{ACCOUNT}/101")]
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB1", "101")
    assert bot.store.get_link(TEAM, "101").period == 2


@pytest.mark.parametrize("command", ["link 101", "relink 101"])
def test_relink_of_an_account_vonage_lost_recreates_it_and_reattaches(world, vonage, graph, command):
    bot = world
    run(bot, "link 101 app Support Bot", "Linked")
    del vonage.accounts[VONAGE_KEY]["101"]
    vonage.reset_log()
    run(bot, command, "inked *Acme Coffee*")
    made = writes(vonage)
    assert made[-2:] == [("POST", ACCOUNT), ("POST", f"{ACCOUNT}/101/applications")]
    assert made[:-2] == ([("PATCH", f"{ACCOUNT}/101")] if command.startswith("relink") else [])  # a 404
    assert vonage_apps(vonage, "101") == [APP1]
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB1", "101")


# -- issue 22 items 12-13, issue 23 items 6-7: gone links, new periods ------------------------------


def gone_with_a_reminder(bot, vonage) -> dict:
    """Acme Coffee linked with Support Bot, its 14-day reminder posted, then deleted at Vonage and
    marked gone by a sync. Returns the reminder."""
    run(bot, "link 101 app Support Bot", "Linked", channel="CLINK")
    run_sweep(bot, START + 76 * DAY + 1)
    (reminder,) = posts(bot, "CLINK")
    del vonage.accounts[VONAGE_KEY]["101"]
    run(bot, "sync", "marked gone")
    assert bot.store.get_link(TEAM, "101").status == "gone"
    bot.slack.messages.clear()
    return reminder


@pytest.mark.parametrize("vonage_has_it_again", [True, False])
def test_linking_an_application_to_a_gone_page_starts_it_afresh(world, vonage, graph, vonage_has_it_again):
    bot = world
    gone_with_a_reminder(bot, vonage)
    if vonage_has_it_again:  # made again in the dashboard, with the old token
        vonage.add_account(VONAGE_KEY, "101", "EAAstale", name="Acme Coffee")
    bot.clock.at = START + 80 * DAY
    vonage.reset_log()
    run(bot, "link 101 app Sales Bot", "Linked *Acme Coffee*", channel="CNEW")
    first = ("PATCH", f"{ACCOUNT}/101") if vonage_has_it_again else ("POST", ACCOUNT)
    assert writes(vonage) == [first, ("POST", f"{ACCOUNT}/101/applications")]
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB1", "101")
    assert vonage_apps(vonage, "101") == [APP2]
    link = bot.store.get_link(TEAM, "101")
    assert (link.status, link.period, link.application_id) == ("active", 2, APP2)
    assert link.expires_at == START + 170 * DAY
    assert updates(bot) == []  # the gone period's reminder is not edited into "re-linked"
    run_sweep(bot, START + 156 * DAY + 1)  # reminders resume in the new period, where it was linked now
    (reminder,) = posts(bot, "CNEW")
    assert "*Acme Coffee*: the link to Vonage expires in *14 days*" in text_of(reminder)


def test_relinking_a_gone_page_by_account_edits_no_old_reminder(world, vonage):
    bot = world
    gone_with_a_reminder(bot, vonage)
    run(bot, "link 101", "Linked *Acme Coffee*")
    assert bot.store.get_link(TEAM, "101").period == 2
    assert updates(bot) == []


def test_linking_an_application_to_an_active_link_edits_no_reminder_a_relink_does(world, vonage):
    bot = world
    run(bot, "link 101", "Linked", channel="CLINK")
    run_sweep(bot, START + 76 * DAY + 1)
    (reminder,) = posts(bot, "CLINK")
    bot.slack.messages.clear()
    run(bot, "link 101 app Support Bot", "Linked *Acme Coffee*")
    assert bot.store.get_link(TEAM, "101").period == 1 and updates(bot) == []
    run(bot, "link 101", "Linked *Acme Coffee*")  # a fresh token: a new period
    (upd,) = bot.slack.wait_for(lambda: updates(bot))
    assert upd["ts"] == reminder["ts"] and "re-linked by <@U1>" in text_of(upd)


# -- issue 22 item 14: unlinking what another change just unlinked -----------------------------------


def test_unlinking_a_page_another_change_just_unlinked_changes_nothing(world, vonage):
    bot = world
    run(bot, "link 101 app Support Bot", "Linked")
    stale = bot.store.get_link(TEAM, "101")  # read by a click, before the other change ran
    run(bot, "unlink 101", "Removed *Acme Coffee*", user="UADMIN")
    vonage.add_account(VONAGE_KEY, "101", "EAAsomeone-elses", name="Acme Coffee")  # re-made meanwhile
    vonage.reset_log()
    audits = audit_rows(bot, "101")
    bot.slack.messages.clear()

    async def go() -> None:  # the click's change, its lease taken only now (answered by DM: no response_url)
        async with open_services(bot.services.settings, FixedClock(bot.clock.now())) as services:
            await perform_unlink(Req(services, TEAM, "U1", "C1", dm_responder(services, TEAM, "U1")), stale, None)

    asyncio.run(go())
    (msg,) = [m for m in bot.slack.messages if m["method"] == "chat.postMessage"]
    assert msg["channel"] == "D1" and "*Acme Coffee* is no longer linked; nothing to do" in text_of(msg)
    assert vonage.requests == [] and "101" in vonage.accounts[VONAGE_KEY]
    assert audit_rows(bot, "101") == audits and bot.store.get_link(TEAM, "101") is None


# -- issue 23 item 8: a re-link login finished after the Page was unlinked ---------------------------


def test_a_relink_login_finished_after_an_unlink_says_the_page_is_no_longer_linked(bot, graph, vonage):
    setup(bot, graph, vonage, data_access_expires_at=START + 100 * DAY)
    run(bot, "link 101", "Linked")
    bot.clock.advance(90 * DAY)  # data access ends in 10 days: a re-link needs a fresh login
    prompt = json.loads(run(bot, "relink 101", "needs a fresh Facebook login"))
    url = next(b["url"] for b in buttons(prompt) if b.get("url"))
    run(bot, "unlink 101", "Removed *Acme Coffee*", user="UADMIN")
    confirm_login(bot, url)
    bot.slack.messages.clear()
    graph.users["FB1"].data_access_expires_at = bot.clock.now() + 90 * DAY
    r = bot.http.get(
        bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": query(url)["state"]}
    )
    assert r.status_code == 200
    dm = bot.slack.wait_message("no longer linked")
    assert dm["channel"] == "D1" and "That Page is no longer linked" in text_of(dm)
    assert bot.store.get_link(TEAM, "101") is None and "101" not in vonage.accounts[VONAGE_KEY]


# -- issue 22 item 15: the re-link window's edge -------------------------------------------------


@pytest.mark.parametrize(
    ("ends_in", "expect"), [(14 * DAY, "needs a fresh Facebook login"), (14 * DAY + 1, "Re-linked")]
)
def test_the_relink_windows_edge(world, vonage, ends_in, expect):
    bot = world
    run(bot, "link 101", "Linked")
    bot.store.execute("UPDATE fb_users SET data_access_expires_at = ?", [bot.clock.now() + ends_in])
    run(bot, "relink 101", expect)
    assert bot.store.get_link(TEAM, "101").period == (1 if "login" in expect else 2)


# -- issue 22 item 16: the Page lease's floor ---------------------------------------------------------


@pytest.mark.parametrize(("retry_total", "lease"), [(1.0, 120), (14.125, 121)])
def test_the_page_lease_never_lasts_less_than_its_floor(start_app, graph, vonage, retry_total, lease):
    """8 calls x (retry total + 1 s timeout): 16 s is raised to the 120 s floor; 121 s is kept."""
    bot = start_app(fblink_retry_total=retry_total, fblink_http_timeout=1)
    setup(bot, graph, vonage)
    held = threading.Event()
    vonage.fail(f"POST {ACCOUNT}", hold=held, status=201, times=1, body={"external_id": "101", "applications": []})
    bot.command("link 101", response="slow")
    vonage.wait_for(lambda: vonage.calls("POST", ACCOUNT))
    try:
        (held_lease,) = bot.store.select("SELECT expires_at FROM page_leases")
    finally:
        held.set()
    assert held_lease["expires_at"] - bot.clock.now() == lease
    answer(bot, "Linked *Acme Coffee*", name="slow")
