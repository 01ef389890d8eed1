"""Issue 22 items 1-6 and issue 23 items 5 and 9: where a reminder goes, what a catch-up leaves in the
ledger, when reminders become digests and how big one may get, how escalations are paced and cut, and
what a re-link does to a digest it shares with another Page."""

from __future__ import annotations

import asyncio
import itertools

from bot import reminders
from bot.blocks import MAX_MESSAGE_BLOCKS
from bot.clock import FixedClock
from bot.services import open_services
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, log_in, text_of
from tests.posted import click, find
from tests.sweep_helpers import DAY, posts, run_sweep, seed

THRESHOLDS = (14, 7, 3, 1)
ON_THE_WIRE = 0.4 - 0.02  # a 0.4 s channel gap, read at the fake Slack (see tests/test_sweep_delivery.py)


def link(bot, page_id: str, *, team: str = TEAM, **fields) -> int:
    """An active link due now (5 days left), with the routing fields given."""
    values = dict(
        page_name=f"Page {page_id}",
        api_key=VONAGE_KEY,
        linked_by="U1",
        channel_id=None,
        expires_at=START + 5 * DAY,
        status="active",
        next_due_at=START - 100,
    )
    values.update(fields)
    return bot.store.upsert_link(team, page_id, now=START, **values).id


def destination(bot, page_id: str) -> str:
    (msg,) = [m for m in posts(bot) if f"Page {page_id}" in text_of(m)]
    return msg["channel"]


# -- issue 22 item 1, issue 23 item 9: where a reminder goes ------------------------------------------


def test_each_routing_level_wins_over_the_ones_below_it(bot):
    """Every level set to a different channel: the highest set one wins (``and`` would pick the last)."""
    bot.command("remind <#CTEAM|team>", user="UADMIN")
    link(bot, "1", reminder_channel="CPAGE1", channel_id="CLINK1", linked_by="U1")
    link(bot, "2", channel_id="CLINK2", linked_by="U2")
    link(bot, "3", linked_by="U3")
    link(bot, "4", team="T0002", linked_by="U4")  # no workspace default in T0002
    run_sweep(bot, START, fblink_reminder_channel="CENV")
    assert [destination(bot, p) for p in "1234"] == ["CPAGE1", "CLINK2", "CTEAM", "CENV"]
    link(bot, "5", team="T0002", linked_by="U5")
    run_sweep(bot, START + 60, fblink_reminder_channel="")
    assert destination(bot, "5") == "D5"  # nothing else set: a DM to the linker

    async def said() -> list[str | None]:  # what the link answer says ("Reminders go to ...") for each
        async with open_services(
            bot.services.settings.model_copy(update={"fblink_reminder_channel": ""}), FixedClock(START)
        ) as services:
            return [await reminders.channel_for(services, await services.store.get_link(t, p)) for t, p in pages]

    pages = [(TEAM, "1"), (TEAM, "2"), (TEAM, "3"), ("T0002", "5")]
    assert asyncio.run(said()) == ["CPAGE1", "CLINK2", "CTEAM", "U5"]  # one definition: the sweep's


# -- issue 22 item 2: the superseded threshold is recorded as dropped ------------------------------


def test_a_threshold_superseded_after_downtime_is_dropped_in_the_ledger(bot):
    """Through the store API only (it runs on every engine)."""
    (link_id,) = seed(bot, 1, expires=START + 7 * DAY)
    ledger = bot.store.reminders
    (seven,) = ledger.claim_batch(now=START, thresholds=THRESHOLDS, lease=600, limit=10).claims
    assert seven.threshold == 7
    ledger.release(seven, error="HTTP 500")  # its post failed; then fblink was down for 5 days
    later = START + 5 * DAY  # the 3-day threshold has passed too
    batch = ledger.claim_batch(now=later, thresholds=THRESHOLDS, lease=600, limit=10)
    assert [(c.link.id, c.threshold) for c in batch.claims] == [(link_id, 3)]
    assert batch.superseded == 1
    again = ledger.claim_batch(now=later + 60, thresholds=THRESHOLDS, lease=600, limit=10)
    assert again.claims == [] and again.superseded == 0  # dropped, never handed out again
    (row,) = [
        r
        for r in bot.store.select("SELECT threshold, status, last_error, finished_at FROM reminders")
        if r["threshold"] == 7
    ]
    assert row == {"threshold": 7, "status": "dropped", "last_error": "superseded", "finished_at": later}


# -- issue 22 item 3: when reminders become a digest ---------------------------------------------


def test_more_than_five_due_in_one_channel_make_a_digest_five_do_not(bot):
    seed(bot, 6, channel="CSIX", prefix="6")
    seed(bot, 5, channel="CFIVE", prefix="5")
    seed(bot, 1, channel="CONE", prefix="1")
    report, _ = run_sweep(bot, START)
    assert [r for r in report if "CSIX" in r] == ["posted digest of 6 to CSIX"]
    (digest,) = posts(bot, "CSIX")
    assert sum("accessory" in b for b in digest["blocks"]) == 6
    five = posts(bot, "CFIVE")
    assert len(five) == 5 and all(len(buttons(m)) == 1 and "need attention" not in m["text"] for m in five)
    (one,) = posts(bot, "CONE")
    assert "need attention" not in one["text"] and buttons(one)[0]["value"] == "100000"


def test_links_with_no_channel_at_all_are_never_grouped(bot):
    """Seven due links with nowhere to go: seven escalations, each naming its own Page, not one digest."""
    seed(bot, 7, channel=None, linked_by=None)
    report, metrics = run_sweep(bot, START, fblink_reminder_max_attempts=1, fblink_reminder_channel="")
    assert report == [] and metrics["fblink_reminders_total{gave_up}"] == 7
    alerts = posts(bot, "DADMIN")
    assert len(alerts) == 7
    named = sorted(next(f"Shop 7{i:05d}" for i in range(7) if f"Shop 7{i:05d}" in text_of(a)) for a in alerts)
    assert named == [f"Shop 7{i:05d}" for i in range(7)]
    assert all("1 reminder " in text_of(a) for a in alerts)


# -- issue 22 item 4: a digest's size, at the boundary --------------------------------------------


def test_the_largest_digest_that_fits_and_one_more(bot):
    largest = MAX_MESSAGE_BLOCKS - 2  # a header and 48 Pages: one block of headroom under Slack's 50
    seed(bot, largest, channel="CFIT", prefix="3")
    seed(bot, largest + 1, channel="COVER", prefix="4")
    report, _ = run_sweep(bot, START)
    (fit,) = posts(bot, "CFIT")
    assert len(fit["blocks"]) == largest + 1 < MAX_MESSAGE_BLOCKS
    over = posts(bot, "COVER")
    assert len(over) == 2 and len(over[0]["blocks"]) == largest + 1
    assert "Page links need attention" in str(over[0]["blocks"][0])
    assert "Page links need attention" not in str(
        over[1]
    )  # the one left over: a reminder of its own, never a digest of one
    covered = sorted(r for r in report if "COVER" in r)
    assert covered[0] == f"posted digest of {largest} to COVER" and covered[1].startswith("posted expiry")


# -- issue 22 items 5 and 6: escalations -------------------------------------------------------------


def test_two_escalations_to_one_admin_are_a_channel_gap_apart(bot):
    for i, channel in enumerate(("CBADA", "CBADB")):
        seed(bot, 1, channel=channel, prefix=f"9{i}", linked_by=None)
        bot.slack.channel_errors[channel] = "msg_too_long"  # not a refused channel: escalated, no fallback
    bot.slack.reset_log()
    run_sweep(bot, START, fblink_reminder_max_attempts=1, fblink_reminder_channel="", fblink_channel_gap=0.4)
    dms = [c.at for c in bot.slack.calls("POST", "/api/chat.postMessage") if c.params.get("channel") == "UADMIN"]
    assert len(dms) == 2 and len(posts(bot, "DADMIN")) == 2
    assert all(b - a >= ON_THE_WIRE for a, b in itertools.pairwise(dms))


def test_the_escalation_text_is_cut_to_fit_a_section(bot):
    """The section limit fblink keeps to is 2,900 characters: a text of exactly 2,900 is sent whole, one of
    2,901 loses its last character. The reason (Slack's error code) sets the length."""
    bot.command("remind <#COPS|ops>", user="UADMIN")

    def escalation(channel: str, prefix: str, reason: str) -> str:
        seed(bot, 1, channel=channel, prefix=prefix, linked_by=None)
        bot.slack.channel_errors[channel] = reason
        run_sweep(bot, START, fblink_reminder_max_attempts=1)
        (alert,) = [m for m in posts(bot, "COPS") if f"Shop {prefix}00000" in text_of(m)]
        assert alert["text"] == alert["blocks"][0]["text"]["text"]
        return str(alert["text"])

    base = escalation("CA00001", "1", "x")
    assert len(base) < 2900

    def uncut(channel: str, prefix: str, reason: str) -> str:  # the base text, for another Page and reason
        return base.replace("CA00001", channel).replace("100000", f"{prefix}00000").replace("(`x`", f"(`{reason}`", 1)

    reason = "x" * (2900 - len(base) + 1)
    assert escalation("CB00001", "2", reason) == uncut("CB00001", "2", reason)  # 2,900 characters: whole
    full = uncut("CC00001", "3", reason + "x")
    assert len(full) == 2901 and escalation("CC00001", "3", reason + "x") == full[:2900]  # its last one cut


# -- issue 23 item 5: re-linking a Page that shares a two-entry digest ---------------------------------


def test_relinking_one_page_of_a_two_entry_digest_keeps_the_other_pages_line_and_button(bot, graph, vonage):
    page = "700048"  # the 49th of 50 due links: the second digest holds it and 700049
    log_in(
        bot,
        graph,
        pages=[{"id": page, "name": f"Shop {page}", "category": "Shop", "tasks": ["MANAGE"]}],
        data_access_expires_at=START + 365 * DAY,
    )
    seed(bot, 50)
    report, _ = run_sweep(bot, START)
    assert sorted(report) == ["posted digest of 2 to CBULK", "posted digest of 48 to CBULK"]
    (pair,) = [m for m in posts(bot, "CBULK") if len(m["blocks"]) == 3]
    button = find(bot, "Re-link now", near=f"Shop {page}")
    assert button.ts == pair["ts"]
    bot.slack.messages.clear()
    click(bot, button, response="relink")
    upd = bot.slack.wait_for(lambda: next((m for m in bot.slack.messages if m["method"] == "chat.update"), None))
    assert (upd["channel"], upd["ts"]) == ("CBULK", pair["ts"])
    head, mine, other = upd["blocks"]
    assert "2 Facebook Page links needed attention" in head["text"]["text"]
    assert f"*Shop {page}* was re-linked by <@U1>" in mine["text"]["text"] and "accessory" not in mine
    assert "*Shop 700049*: the link to Vonage expires in *5 days*" in other["text"]["text"]
    assert other["accessory"] == pair["blocks"][2]["accessory"]  # its Re-link button, as first posted
    assert bot.store.get_link(TEAM, page).period == 2 and bot.store.get_link(TEAM, "700049").period == 1

    # The other Page's button, as the updated message shows it, still works for its own manager;
    # each line then credits the person who re-linked that Page.
    log_in(
        bot,
        graph,
        user="U2",
        fb_user="FB2",
        name="Eve",
        pages=[{"id": "700049", "name": "Shop 700049", "category": "Shop", "tasks": ["MANAGE"]}],
        data_access_expires_at=START + 365 * DAY,
    )
    other_button = find(bot, "Re-link now", near="Shop 700049")
    assert other_button.source["method"] == "chat.update"
    bot.slack.messages.clear()
    click(bot, other_button, user="U2", response="relink2")
    upd = bot.slack.wait_for(lambda: next((m for m in bot.slack.messages if m["method"] == "chat.update"), None))
    _, mine, other = upd["blocks"]
    assert f"*Shop {page}* was re-linked. New expiry" in mine["text"]["text"]  # not credited to U2
    assert "*Shop 700049* was re-linked by <@U2>" in other["text"]["text"] and "accessory" not in other
    assert bot.store.get_link(TEAM, "700049").period == 2
