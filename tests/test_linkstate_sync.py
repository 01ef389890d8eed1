"""Issue 9 item 11 (sync part) and the sync behaviours no test pinned: `/fblink sync` makes the
records match Vonage, touches nothing that already matches, and audits what it changed."""

from __future__ import annotations

import asyncio

import pytest

from bot.clock import FixedClock
from bot.reminders import run_sweep_once
from tests.conftest import TEAM, VONAGE_KEY
from tests.linkstate_world import APP1, APP2, DAY, KEY2, audit_rows, raw_link, run, setup


@pytest.fixture
def world(bot, graph, vonage):  # type: ignore[no-untyped-def]
    setup(bot, graph, vonage)
    run(bot, "link 101 app Support Bot", "Linked *Acme Coffee*")
    return bot


def sync(bot) -> str:  # type: ignore[no-untyped-def]
    return run(bot, "sync", "Synced with Vonage")


def test_sync_leaves_tracked_pages_untouched(world, vonage):
    bot = world
    bot.services.settings.fblink_admins = "UADMIN,U1"  # the key policy: added keys are for admins
    run(bot, f"link 102 {KEY2}", "Linked")
    bot.command("remind 101 channel C77")
    # a reminder was posted for 101 in this period: sync must not start the period over
    due = bot.store.get_link(TEAM, "101").next_due_at
    asyncio.run(run_sweep_once(bot.services.settings, FixedClock(due + 60), probe=False))
    reminders = bot.store.select("SELECT * FROM reminders ORDER BY id")
    assert reminders and reminders[0]["status"] == "posted"
    before = {p: raw_link(bot, p) for p in ("101", "102")}
    text = sync(bot)
    assert "Everything already matches" in text
    assert {p: raw_link(bot, p) for p in ("101", "102")} == before  # linker, channel, expiry, token, period...
    assert bot.store.select("SELECT * FROM reminders ORDER BY id") == reminders
    assert [a for a, _, _ in audit_rows(bot, "101") if a.startswith("sync")] == []


def test_gone_page_that_comes_back_is_imported_afresh(world, vonage):
    bot = world
    bot.store.upsert_link(
        TEAM, "101", now=bot.clock.now(), broken_at=bot.clock.now(), breakages=2, muted=1, reminder_channel="C55"
    )
    del vonage.accounts[VONAGE_KEY]["101"]
    assert "marked gone: *Acme Coffee*" in sync(bot)
    gone = bot.store.get_link(TEAM, "101")
    assert gone.status == "gone" and gone.next_due_at is None
    vonage.add_account(VONAGE_KEY, "101", "dashboard-token", name="Acme Coffee (new)", applications=(APP2,))
    bot.clock.advance(DAY)
    text = sync(bot)
    assert "Imported" in text and "Acme Coffee (new)" in text
    back = bot.store.get_link(TEAM, "101")
    assert (back.status, back.broken_at, back.breakages, back.muted) == ("active", None, 0, False)
    assert (back.channel_id, back.reminder_channel, back.linked_by, back.expires_at) == (None, None, None, None)
    assert back.needs_relink and back.next_due_at is None and back.period == gone.period + 1
    assert (back.application_id, back.application_name) == (APP2, "Sales Bot")
    assert raw_link(bot, "101")["token_enc"] is None  # the old token is not the one Vonage holds now
    assert back.page_name == "Acme Coffee (new)" and back.linked_at == bot.clock.now()


def test_application_changed_in_the_dashboard_is_recorded(world, vonage):
    bot = world
    expiry = bot.store.get_link(TEAM, "101").expires_at
    vonage.accounts[VONAGE_KEY]["101"]["applications"] = [APP2]
    text = sync(bot)
    assert "Application changed" in text and "Acme Coffee" in text
    link = bot.store.get_link(TEAM, "101")
    assert (link.application_id, link.application_name, link.expires_at) == (APP2, "Sales Bot", expiry)
    vonage.accounts[VONAGE_KEY]["101"]["applications"] = []
    sync(bot)
    assert bot.store.get_link(TEAM, "101").application_id is None
    assert [a for a, _, _ in audit_rows(bot, "101") if a.startswith("sync")] == ["sync_app", "sync_app"]


def test_second_sync_does_not_report_gone_pages_again(world, vonage):
    bot = world
    del vonage.accounts[VONAGE_KEY]["101"]
    assert "marked gone" in sync(bot)
    again = sync(bot)
    assert "marked gone" not in again and "Everything already matches" in again
    assert [a for a, _, _ in audit_rows(bot, "101") if a.startswith("sync")] == ["sync_gone"]


def test_sync_audit_rows(world, vonage):
    bot = world
    vonage.add_account(VONAGE_KEY, "555", "dash-token", name="Dashboard Page", applications=(APP1,))
    del vonage.accounts[VONAGE_KEY]["101"]
    sync(bot)
    rows = bot.store.select(
        "SELECT action, user_id, page_id, detail, result FROM audit WHERE action LIKE 'sync%' ORDER BY id"
    )
    assert {(r["action"], r["page_id"]) for r in rows} == {("sync_import", "555"), ("sync_gone", "101")}
    assert all(r["user_id"] is None and r["result"] == "ok" and VONAGE_KEY in r["detail"] for r in rows)
    assert bot.store.history(TEAM, "101")[0]["action"] == "sync_gone"  # `/fblink history` shows it


def test_sync_skips_a_page_another_change_holds(world, vonage):
    bot = world
    del vonage.accounts[VONAGE_KEY]["101"]
    assert bot.store.acquire_lease(TEAM, "101", "another-process:1", now=bot.clock.now(), ttl=120)
    text = sync(bot)
    assert "Skipped while another change" in text and "*Acme Coffee*" in text and "marked gone" not in text
    assert bot.store.get_link(TEAM, "101").status == "active"
    bot.store.release_lease(TEAM, "101", "another-process:1")
    assert "marked gone" in sync(bot)
