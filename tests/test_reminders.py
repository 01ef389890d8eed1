"""Issue: expiry reminders in channel, exactly once, and the App Home dashboard."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import time

import pytest

from bot.clock import FixedClock, iso
from bot.reminders import run_sweep_once
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, log_in, text_of
from tests.sweep_helpers import shops_due

DAY = 86400
PAGES = [
    {"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "102", "name": "Bolt Hardware", "category": "Shop", "tasks": ["MESSAGING"]},
]


def sweep_at(bot, when: int, *, probe: bool = False) -> list[str]:
    """What `fblink sweep --now` does, in-process: fresh services, the given clock."""
    return asyncio.run(run_sweep_once(bot.services.settings, FixedClock(when), probe=probe))


def posts(bot, page_name: str = "Acme Coffee") -> list[dict]:
    return [m for m in bot.slack.messages if m["method"] == "chat.postMessage" and page_name in text_of(m)]


@pytest.fixture
def linked(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    bot.slack.messages.clear()
    link = bot.store.get_link(TEAM, "101")
    assert link.expires_at == START + 90 * DAY
    return bot


def test_thresholds_fire_once_each_then_expiry_notice(linked):
    bot = linked
    exp = START + 90 * DAY
    assert sweep_at(bot, exp - 60 * DAY) == []
    assert posts(bot) == []
    for days in (14, 7, 3, 1):
        report = sweep_at(bot, exp - days * DAY + 60)
        assert len(report) == 1, report
        assert sweep_at(bot, exp - days * DAY + 120) == []  # never twice
    assert len(posts(bot)) == 4
    assert "expires in *14 days*" in text_of(posts(bot)[0])
    assert "expires in *1 day*" in text_of(posts(bot)[3])
    sweep_at(bot, exp + 60)
    sweep_at(bot, exp + 3 * DAY)
    msgs = posts(bot)
    assert len(msgs) == 5 and "*expired*" in text_of(msgs[4])
    first = msgs[0]
    assert first["channel"] == "CLINK"
    blob = text_of(first)
    assert VONAGE_KEY in blob and "<@U1>" in blob and "<!date^" in blob
    (btn,) = [b for b in buttons(first) if b["action_id"] == "reminder_relink"]
    assert btn["value"] == "101" and btn["text"]["text"] == "Re-link now"


def test_downtime_posts_only_the_most_urgent(linked):
    bot = linked
    exp = START + 90 * DAY
    report = sweep_at(bot, exp - 2 * DAY)  # 14, 7 and 3 all passed while down
    assert len(report) == 1 and " 3 " in report[0]
    assert "expires in *2 days*" in text_of(posts(bot)[0])
    sweep_at(bot, exp - 1 * DAY + 1)
    assert len(posts(bot)) == 2


def test_relink_starts_a_new_series_and_updates_reminder(linked, graph):
    bot = linked
    exp = START + 90 * DAY
    sweep_at(bot, exp - 14 * DAY + 1)
    reminder = posts(bot)[0]
    bot.clock.at = exp - 13 * DAY
    bot.slack.responses.clear()
    bot.click("reminder_relink", "101", channel="CLINK")
    bot.slack.wait_response("Re-linked *Acme Coffee*")
    updated = bot.slack.wait_for(lambda: [m for m in bot.slack.messages if m["method"] == "chat.update"])
    assert updated[0]["ts"] == reminder["ts"] and "re-linked by <@U1>" in text_of(updated[0])
    new = bot.store.get_link(TEAM, "101")
    assert new.period == 2 and new.expires_at == exp - 13 * DAY + 90 * DAY
    bot.slack.messages.clear()
    sweep_at(bot, new.expires_at - 14 * DAY + 1)
    assert len(posts(bot)) == 1  # the 14-day reminder fires again in the new period


def test_relink_button_needs_someone_who_manages_the_page(linked, graph):
    bot = linked
    graph.add_user("FB7", "Outsider", pages=[], data_access_expires_at=START + 365 * DAY)
    log_in(bot, graph, user="U7", fb_user="FB7")
    bot.slack.responses.clear()
    bot.click("reminder_relink", "101", user="U7")
    bot.slack.wait_response("only someone who manages the Page")
    assert bot.store.get_link(TEAM, "101").period == 1


def test_channel_settings_and_mute(linked):
    bot = linked
    exp = START + 90 * DAY
    assert "Only fblink admins" in bot.command("remind <#CDEF|ops>").text
    assert "<#CDEF>" in bot.command("remind <#CDEF|ops>", user="UADMIN").text
    assert "<#CPAGE>" in bot.command("remind Acme Coffee <#CPAGE|acme>").text
    sweep_at(bot, exp - 14 * DAY + 1)
    assert posts(bot)[-1]["channel"] == "CPAGE"
    assert "Only <@U1>" in bot.command("remind 101 off", user="U2").text
    assert "are off" in bot.command("remind 101 off").text
    sweep_at(bot, exp - 7 * DAY + 1)
    assert len(posts(bot)) == 1
    listing = bot.command("remind").text
    assert "muted" in listing and "CDEF" in listing


def test_refused_channel_falls_back_to_default_then_dm(linked, caplog):
    bot = linked
    exp = START + 90 * DAY
    bot.slack.channel_errors["CLINK"] = "is_archived"
    bot.command("remind <#CDEF|ops>", user="UADMIN")
    sweep_at(bot, exp - 14 * DAY + 1)
    assert posts(bot)[-1]["channel"] == "CDEF"
    bot.slack.channel_errors["CDEF"] = "not_in_channel"
    sweep_at(bot, exp - 7 * DAY + 1)
    assert posts(bot)[-1]["channel"] == "DU1"[0] + "1" or posts(bot)[-1]["channel"].startswith("D")
    assert "refused (not_in_channel)" in caplog.text


def test_rate_limit_retry_after_is_honoured(linked):
    bot = linked
    exp = START + 90 * DAY
    bot.slack.fail("POST /api/chat.postMessage", status=429, headers={"Retry-After": "1"}, times=1)
    t0 = time.monotonic()
    report = sweep_at(bot, exp - 14 * DAY + 1)
    assert len(report) == 1 and time.monotonic() - t0 >= 1.0
    assert len(posts(bot)) == 1


def test_failed_post_is_retried_next_sweep(linked):
    bot = linked
    exp = START + 90 * DAY
    bot.slack.fail("POST /api/chat.postMessage", status=500, times=10)
    assert sweep_at(bot, exp - 14 * DAY + 1) == []
    bot.slack.reset_log()
    report = sweep_at(bot, exp - 14 * DAY + 15 * 60)
    assert len(report) == 1 and len(posts(bot)) == 1


def test_digest_when_many_due_in_one_channel(bot):
    shops_due(bot, 8)
    report = sweep_at(bot, START + 60)
    assert report == ["posted digest of 8 to CBULK"]
    (msg,) = [m for m in bot.slack.messages if m["method"] == "chat.postMessage"]
    assert len([b for b in buttons(msg)] + [b["accessory"] for b in msg["blocks"] if "accessory" in b]) == 8
    assert sweep_at(bot, START + 120) == []


def test_broken_token_alert_once_per_breakage(linked, graph):
    bot = linked
    assert sweep_at(bot, START + DAY, probe=True) == []
    graph.kill_page_token("101")
    report = sweep_at(bot, START + 2 * DAY + 10, probe=True)
    assert len(report) == 1 and "broken" in report[0]
    assert "link is broken" in text_of(posts(bot)[-1])
    assert sweep_at(bot, START + 4 * DAY, probe=True) == []  # still broken: no second alert
    home = bot.store.get_link(TEAM, "101")
    assert home.broken_at is not None


def test_app_home_shows_links_and_admin_settings(linked):
    bot = linked
    bot.store.upsert_link(
        TEAM,
        "777",
        now=START,
        page_name="Old <Page>",
        api_key=VONAGE_KEY,
        linked_by="U1",
        expires_at=START - DAY,
        status="active",
    )
    event = {
        "token": "x",
        "team_id": TEAM,
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": "UADMIN", "channel": "D1", "tab": "home"},
    }
    r = bot.post_signed(json.dumps(event).encode(), "application/json")
    assert r.status_code == 200
    (pub,) = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.publish"])
    assert pub["user_id"] == "UADMIN"
    blob = text_of(pub["view"])
    assert "*Old &lt;Page&gt;*" in blob and ":rotating_light: *expired*" in blob
    assert "*Acme Coffee*" in blob and ":large_green_circle: expires" in blob and "*90 days left*" in blob
    assert "Reminder settings" in blob
    # the admin manages neither Page (no Facebook login): no Re-link button is offered to be refused
    assert not any(b.get("accessory", {}).get("action_id") == "status_relink" for b in pub["view"]["blocks"])
    assert "You are not connected to Facebook yet" in blob


# -- the CLI and several processes ------------------------------------------------------------


def cli_env(settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_"))}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[name.upper()] = str(value)
    return env


def run_cli(settings, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


def seed_due(bot, n: int, expires: int) -> None:
    for i in range(n):
        bot.store.upsert_link(
            TEAM,
            f"60{i:02d}",
            now=START,
            page_name=f"Page {i:02d}",
            api_key=VONAGE_KEY,
            linked_by="U1",
            channel_id=f"C{i:03d}X",
            expires_at=expires,
            status="active",
            next_due_at=expires - 14 * DAY,
        )


def test_cli_sweep_with_now(bot):
    seed_due(bot, 1, START + 10 * DAY)
    out = run_cli(bot.services.settings, "sweep", "--now", iso(START - 30 * DAY))
    assert out.returncode == 0 and "nothing due" in out.stdout
    out = run_cli(bot.services.settings, "sweep", "--now", iso(START))
    assert out.returncode == 0, out.stderr
    assert "posted expiry 14 for Page 00 (6000) to C000X" in out.stdout


def test_two_processes_never_post_twice(bot):
    seed_due(bot, 30, START + 10 * DAY)
    settings = bot.services.settings
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "sweep", "--now", iso(START)],
            env=cli_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    counts = collections.Counter(m["channel"] for m in bot.slack.messages if m["method"] == "chat.postMessage")
    assert len(counts) == 30 and set(counts.values()) == {1}


def test_process_killed_between_claim_and_post_still_posts_once(bot):
    seed_due(bot, 1, START + 10 * DAY)
    settings = bot.services.settings
    bot.slack.fail("POST /api/chat.postMessage", delay=30, status=200, body={"ok": True}, times=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sweep", "--now", iso(START)],
        env=cli_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if bot.store.one("SELECT count(*) AS n FROM reminders WHERE status = 'claimed'")["n"]:
            break
        time.sleep(0.05)
    bot.slack.wait_for(lambda: bot.slack.calls("POST", "/api/chat.postMessage"), timeout=30)
    proc.kill()
    proc.wait()
    assert bot.slack.messages == []  # the delayed post never completed
    assert run_cli(settings, "sweep", "--now", iso(START + 60)).stdout.strip() == "nothing due"  # lease still held
    out = run_cli(settings, "sweep", "--now", iso(START + 15 * 60))
    assert "posted" in out.stdout, out.stderr
    assert len([m for m in bot.slack.messages if m["method"] == "chat.postMessage"]) == 1
    out = run_cli(settings, "sweep", "--now", iso(START + 30 * 60))
    assert out.stdout.strip() == "nothing due"


def test_changed_thresholds_reschedule_instead_of_failing(linked, start_app):
    bot = linked
    exp = START + 90 * DAY
    # the row was scheduled for the 14-day threshold; the operator now sets 7,3,1
    asyncio.run(
        run_sweep_once(
            bot.services.settings.model_copy(update={"fblink_reminder_days": "7,3,1"}), FixedClock(exp - 10 * DAY)
        )
    )
    assert posts(bot) == []
    assert bot.store.get_link(TEAM, "101").next_due_at == exp - 7 * DAY
    report = asyncio.run(
        run_sweep_once(
            bot.services.settings.model_copy(update={"fblink_reminder_days": "7,3,1"}), FixedClock(exp - 7 * DAY + 5)
        )
    )
    assert len(report) == 1 and len(posts(bot)) == 1


def test_failed_reminder_of_old_period_is_dropped_after_relink(linked):
    bot = linked
    exp = START + 90 * DAY
    bot.slack.fail("POST /api/chat.postMessage", status=500, times=10)
    assert sweep_at(bot, exp - DAY + 1) == []  # the 1-day reminder failed; its claim is released
    bot.slack.reset_log()
    bot.clock.at = exp - DAY + 60
    bot.click("reminder_relink", "101")
    bot.slack.wait_response("Re-linked")
    assert sweep_at(bot, exp - DAY + 15 * 60) == []  # not "expires in 90 days" under an alarm
    assert posts(bot) == []


def test_probe_checks_the_token_vonage_holds_even_after_logout(linked, graph):
    bot = linked
    assert "deleted your Facebook login" in bot.command("logout").text  # the linker's cached Page tokens are gone
    graph.kill_page_token("101")
    report = sweep_at(bot, START + 2 * DAY, probe=True)
    assert len(report) == 1 and "broken" in report[0]
    probes = graph.calls("GET", "/v25.0/debug_token")
    assert probes and all(c.query["input_token"].startswith("EAA") for c in probes)


def test_linking_again_also_updates_the_old_reminders(linked):
    bot = linked
    exp = START + 90 * DAY
    sweep_at(bot, exp - 14 * DAY + 1)
    reminder = posts(bot)[0]
    bot.clock.at = exp - 13 * DAY
    bot.slack.responses.clear()
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    (upd,) = bot.slack.wait_for(lambda: [m for m in bot.slack.messages if m["method"] == "chat.update"])
    assert upd["ts"] == reminder["ts"] and "re-linked by <@U1>" in text_of(upd)


def test_relink_rebuilds_the_digest_keeping_other_pages(bot, graph):
    log_in(
        bot,
        graph,
        pages=[{"id": "500", "name": "Shop 0", "category": "Shop", "tasks": ["MANAGE"]}],
        data_access_expires_at=START + 365 * DAY,
    )
    shops_due(bot, 7)
    assert sweep_at(bot, START + 60) == ["posted digest of 7 to CBULK"]
    (digest,) = [m for m in bot.slack.messages if m["method"] == "chat.postMessage" and m["channel"] == "CBULK"]
    bot.slack.responses.clear()
    bot.click("reminder_relink", "500", channel="CBULK", message_ts=digest["ts"])
    bot.slack.wait_response("Re-linked *Shop 0*")
    (upd,) = bot.slack.wait_for(lambda: [m for m in bot.slack.messages if m["method"] == "chat.update"])
    assert upd["ts"] == digest["ts"]
    blob = text_of(upd)
    assert "*Shop 0* was re-linked by <@U1>" in blob
    others = [b["accessory"]["value"] for b in upd["blocks"] if "accessory" in b]
    assert sorted(others) == [f"50{i}" for i in range(1, 7)]  # the rest keep their buttons


def test_claim_lease_follows_the_sweep_interval():
    from bot.reminders import lease_for

    assert lease_for(15) == 600  # a crashed claim is retried by the next 15-minute sweep
    assert lease_for(5) == 270 and lease_for(1) == 60
