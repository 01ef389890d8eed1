"""The linking rules and failure paths issue 9 lists as unpinned: which links are refused, what
a re-link of a gone Page records, logins whose data access is missing or over, and what the
database, Vonage and the audit log hold after each failure and success."""

from __future__ import annotations

import json

import pytest

from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, log_in
from tests.linkstate_world import ACCOUNT, APP1, APP2, DAY, KEY2, PAGES, PERSISTENT, audit_rows, run, setup, vonage_apps


@pytest.fixture
def world(bot, graph, vonage):  # type: ignore[no-untyped-def]
    return setup(bot, graph, vonage)


# -- linking rules -----------------------------------------------------------------------------


def test_page_linked_under_another_key_is_refused(world, vonage):
    bot = world
    bot.services.settings.fblink_admins = "UADMIN,U1"  # the key policy: added keys are for admins
    run(bot, "link 101", "Linked")
    text = run(bot, f"link 101 {KEY2}", "already linked to API key")
    assert VONAGE_KEY in text and "/fblink unlink 101" in text
    assert "101" not in vonage.accounts[KEY2]
    assert bot.store.get_link(TEAM, "101").api_key == VONAGE_KEY
    assert vonage.calls("POST", ACCOUNT) and all(c.headers["authorization"] for c in vonage.calls("POST", ACCOUNT))
    assert len(vonage.calls("POST", ACCOUNT)) == 1  # the refusal made no call at all


def test_gone_link_may_be_relinked_under_a_new_key(world, vonage):
    bot = world
    bot.services.settings.fblink_admins = "UADMIN,U1"  # the key policy: added keys are for admins
    run(bot, "link 101 app Support Bot", "Linked")
    del vonage.accounts[VONAGE_KEY]["101"]
    run(bot, "sync", "marked gone")
    run(bot, f"link 101 {KEY2}", "Linked *Acme Coffee*")
    link = bot.store.get_link(TEAM, "101")
    assert (link.api_key, link.status, link.application_id) == (KEY2, "active", None)
    assert vonage_apps(vonage, "101", KEY2) == [] and "101" not in vonage.accounts[VONAGE_KEY]


@pytest.mark.parametrize("command,verb", [("relink 101", "Re-linked"), ("link 101", "Linked")])
def test_relinking_a_gone_page_starts_a_new_period_without_its_stale_application(world, vonage, command, verb):
    bot = world
    run(bot, "link 101 app Support Bot", "Linked")
    first = bot.store.get_link(TEAM, "101")
    del vonage.accounts[VONAGE_KEY]["101"]
    run(bot, "sync", "marked gone")
    bot.clock.advance(5 * DAY)
    text = run(bot, command, f"{verb} *Acme Coffee*")
    assert "(no application linked)" in text
    link = bot.store.get_link(TEAM, "101")
    assert link.status == "active" and link.period == first.period + 1
    assert link.application_id is None and link.application_name is None
    assert link.expires_at == bot.clock.now() + 90 * DAY and link.next_due_at is not None
    assert vonage_apps(vonage, "101") == []  # the stale application was not re-attached


@pytest.mark.parametrize("data_access", [None, START - DAY])
def test_link_with_missing_or_past_data_access_uses_the_ttl(bot, graph, vonage, data_access):
    setup(bot, graph, vonage, data_access_expires_at=data_access)
    bot.store.execute("UPDATE fb_users SET data_access_expires_at = ?", [data_access])
    run(bot, "link 101", "Linked")
    assert bot.store.get_link(TEAM, "101").expires_at == START + 90 * DAY


def test_relink_with_missing_data_access_goes_ahead_and_past_asks_for_login(bot, graph, vonage):
    setup(bot, graph, vonage)
    run(bot, "link 101", "Linked")
    bot.store.execute("UPDATE fb_users SET data_access_expires_at = NULL")
    run(bot, "relink 101", "Re-linked")
    bot.store.execute("UPDATE fb_users SET data_access_expires_at = ?", [bot.clock.now() - 1])
    prompt = run(bot, "relink 101", "needs a fresh Facebook login")
    assert "data access ends soon" in prompt
    assert bot.store.get_link(TEAM, "101").period == 2  # the prompt changed nothing


# -- failure paths -----------------------------------------------------------------------------


def test_replace_whose_restore_also_fails(world, vonage):
    bot = world
    run(bot, "link 101 app Support Bot", "Linked")
    prompt = json.loads(run(bot, "link 101 app Sales Bot", "already linked to application"))
    replace = next(b for b in buttons(prompt) if b["action_id"] == "link_replace")
    vonage.fail(f"POST {ACCOUNT}/101/applications", status=500, times=PERSISTENT)
    bot.slack.responses.clear()
    bot.click("link_replace", replace["value"])
    text = json.dumps(bot.slack.wait_response("could not be restored"))
    assert "has no application at Vonage now" in text
    assert vonage_apps(vonage, "101") == []
    link = bot.store.get_link(TEAM, "101")
    assert link.application_id is None and link.application_name is None and link.status == "active"
    assert audit_rows(bot, "101")[-1] == ("replace", "U1", "error: PartialChange")


def test_unlink_when_vonage_errors_keeps_the_record(world, vonage):
    bot = world
    run(bot, "link 101", "Linked")
    before = bot.store.get_link(TEAM, "101")
    vonage.fail(f"DELETE {ACCOUNT}/101", status=500, times=PERSISTENT)
    run(bot, "unlink 101", "busy or unreachable")
    assert bot.store.get_link(TEAM, "101") == before and "101" in vonage.accounts[VONAGE_KEY]
    assert audit_rows(bot, "101")[-1] == ("unlink", "U1", "error: UpstreamUnavailable")
    vonage.reset_log()
    vonage.fail(f"DELETE {ACCOUNT}/101/applications", status=500, times=PERSISTENT)
    run(bot, "link 101 app Support Bot", "Linked")
    run(bot, "unlink 101 app Support Bot", "busy or unreachable")
    assert bot.store.get_link(TEAM, "101").application_id == APP1 and vonage_apps(vonage, "101") == [APP1]


def test_unlinking_an_application_from_a_page_that_has_none(world, vonage):
    bot = world
    run(bot, "link 101", "Linked")
    vonage.reset_log()
    run(bot, "unlink 101 app Support Bot", "is not linked to application")
    assert vonage.calls("DELETE") == [] and bot.store.get_link(TEAM, "101") is not None


def test_audit_rows_of_link_unlink_and_relink(world, vonage):
    bot = world
    run(bot, "link 101", "Linked")
    run(bot, "link 101 app Sales Bot", "Sales Bot")
    run(bot, "relink 101", "Re-linked")
    run(bot, "unlink 101 app Sales Bot", "Unlinked application")
    run(bot, "unlink 101", "Removed")
    assert audit_rows(bot, "101") == [
        ("link", "U1", "ok"),
        ("link_app", "U1", "ok"),
        ("relink", "U1", "ok"),
        ("unlink_app", "U1", "ok"),
        ("unlink", "U1", "ok"),
    ]
    details = [r["detail"] for r in bot.store.select("SELECT detail FROM audit WHERE page_id = '101' ORDER BY id")]
    assert details == [
        f"key {VONAGE_KEY}",
        f"key {VONAGE_KEY} app {APP2}",
        f"key {VONAGE_KEY}",
        f"app {APP2}",
        f"key {VONAGE_KEY}",
    ]


def test_a_second_user_cannot_take_over_an_active_link_of_another_key(bot, graph, vonage):
    setup(bot, graph, vonage)
    bot.services.settings.fblink_admins = "UADMIN,U2"  # may use KEY2 (key policy); still may not take over
    run(bot, "link 101", "Linked")
    log_in(bot, graph, user="U2", fb_user="FB2", name="Grace", pages=PAGES[:1], data_access_expires_at=START + DAY * 99)
    run(bot, f"link 101 {KEY2}", "already linked to API key", user="U2")
    assert bot.store.get_link(TEAM, "101").linked_by == "U1"
    assert APP2 not in str(vonage.accounts[KEY2])


def test_ids_are_matched_as_ids_and_free_text_by_id_first():
    from bot.store import StoredPage
    from handlers.lookups import by_id, read_target

    named_like_id = StoredPage("777", "101", "Shop", ("MANAGE",), "t1")
    real = StoredPage("101", "Acme Coffee", "Cafe", ("MANAGE",), "t2")
    assert by_id([named_like_id], "101") is None  # a value that is an id never falls back to names
    assert by_id([named_like_id, real], "101") is real
    reading = read_target([named_like_id, real], ["101"], with_key=False)
    assert reading is not None and reading.target is real  # typed text: the exact id wins over a name
