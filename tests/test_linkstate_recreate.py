"""Issue 9 item 2: after Vonage lost a Page's account, re-link and part 1 re-create it and either
re-attach the application fblink had recorded, or record that it has none and say so. Each outcome
is checked in the database, at the fake Vonage and in the answer the user gets."""

from __future__ import annotations

import pytest

from tests.conftest import TEAM, VONAGE_KEY
from tests.linkstate_world import ACCOUNT, APP1, APP2, PERSISTENT, audit_rows, run, setup, vonage_apps


@pytest.fixture
def world(bot, graph, vonage):  # type: ignore[no-untyped-def]
    setup(bot, graph, vonage)
    run(bot, "link 101 app Support Bot", "Linked *Acme Coffee*")
    assert vonage_apps(vonage, "101") == [APP1]
    del vonage.accounts[VONAGE_KEY]["101"]  # deleted in the Vonage dashboard; fblink was not told
    return bot


@pytest.mark.parametrize("command", ["relink 101", "link 101"])
def test_recreated_account_gets_its_application_back(world, vonage, graph, command):
    bot = world
    text = run(bot, command, "inked *Acme Coffee*")
    assert "Support Bot" in text and "no longer linked" not in text
    assert vonage_apps(vonage, "101") == [APP1]
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB1", "101")
    link = bot.store.get_link(TEAM, "101")
    assert (link.application_id, link.application_name, link.status) == (APP1, "Support Bot", "active")
    assert ("reattach_app", "U1", "ok") in audit_rows(bot, "101")


@pytest.mark.parametrize("command", ["relink 101", "link 101"])
def test_reattach_refused_is_recorded_and_told(world, vonage, command):
    bot = world
    del vonage.applications[VONAGE_KEY][APP1]  # the application itself was deleted too: Vonage answers 403
    text = run(bot, command, "inked *Acme Coffee*")
    assert "(no application linked)" in text and "Support Bot" in text and "no longer linked" in text
    assert vonage_apps(vonage, "101") == []  # the account is back, without an application
    link = bot.store.get_link(TEAM, "101")
    assert link.application_id is None and link.application_name is None and link.status == "active"
    assert ("reattach_app", "U1", "error: VonageForbidden") in audit_rows(bot, "101")


def test_reattach_unanswered_is_recorded_and_told(world, vonage):
    bot = world
    vonage.fail(f"POST {ACCOUNT}/101/applications", status=503, times=PERSISTENT)
    text = run(bot, "relink 101", "Re-linked *Acme Coffee*")
    assert "no longer linked" in text and "/fblink link 101 app" in text
    assert vonage_apps(vonage, "101") == []
    assert bot.store.get_link(TEAM, "101").application_id is None
    assert bot.store.get_link(TEAM, "101").period == 2  # the token was renewed: a new period all the same


def test_recreate_failing_changes_nothing(world, vonage):
    bot = world
    before = bot.store.get_link(TEAM, "101")
    vonage.fail(
        f"POST {ACCOUNT}",
        status=400,
        times=PERSISTENT,
        headers={"Content-Type": "application/problem+json"},
        body={
            "title": "Bad Request",
            "detail": "Invalid params",
            "invalid_params": [{"name": "access_token", "reason": "is invalid"}],
        },
    )
    run(bot, "relink 101", "is invalid")
    assert vonage_apps(vonage, "101") is None
    assert bot.store.get_link(TEAM, "101") == before
    assert audit_rows(bot, "101")[-1] == ("relink", "U1", "error: VonageInvalid")


def test_relink_records_the_application_changed_in_the_dashboard(bot, graph, vonage):
    setup(bot, graph, vonage)
    run(bot, "link 101 app Support Bot", "Linked")
    vonage.accounts[VONAGE_KEY]["101"]["applications"] = [APP2]  # changed in the dashboard
    text = run(bot, "relink 101", "Re-linked")
    assert "Sales Bot" in text
    link = bot.store.get_link(TEAM, "101")
    assert (link.application_id, link.application_name) == (APP2, "Sales Bot")
    assert vonage_apps(vonage, "101") == [APP2]


def test_relink_records_an_application_removed_in_the_dashboard(bot, graph, vonage):
    setup(bot, graph, vonage)
    run(bot, "link 101 app Support Bot", "Linked")
    vonage.accounts[VONAGE_KEY]["101"]["applications"] = []
    text = run(bot, "relink 101", "Re-linked")
    assert "no longer linked" in text
    assert bot.store.get_link(TEAM, "101").application_id is None


def test_account_made_in_the_dashboard_meanwhile_is_recorded_with_its_application(bot, graph, vonage):
    """fblink saw no account, the dashboard made one with an application before fblink's create (409):
    fblink gives it the fresh token and records the application it has."""
    setup(bot, graph, vonage)
    vonage.add_account(VONAGE_KEY, "101", "dashboard-token", name="Acme Coffee", applications=(APP2,))
    vonage.fail(
        f"GET {ACCOUNT}/101",
        status=404,
        times=1,
        headers={"Content-Type": "application/problem+json"},
        body={"type": "https://developer.nexmo.com/api-errors#not-found", "title": "Not Found"},
    )
    text = run(bot, "link 101", "Linked *Acme Coffee*")
    assert "Sales Bot" in text
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB1", "101")
    assert vonage_apps(vonage, "101") == [APP2]
    link = bot.store.get_link(TEAM, "101")
    assert (link.application_id, link.application_name, link.linked_by) == (APP2, "Sales Bot", "U1")


def test_link_of_an_existing_account_records_its_application(bot, graph, vonage):
    setup(bot, graph, vonage)
    vonage.add_account(VONAGE_KEY, "101", "dashboard-token", name="Acme Coffee", applications=(APP1,))
    assert "Support Bot" in run(bot, "link 101", "Linked *Acme Coffee*")
    assert bot.store.get_link(TEAM, "101").application_id == APP1 and vonage_apps(vonage, "101") == [APP1]
