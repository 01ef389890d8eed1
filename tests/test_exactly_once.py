"""Issue 19: exactly once across a SIGKILL between Slack taking a post and the confirm.

A real `fblink worker` process posts; the fake Slack does the post at once and holds its answer,
and the worker is SIGKILLed while it waits, so its claim is left unconfirmed, as a crash leaves
it. Another process (a sweep with services of its own, as every worker builds them) takes the
claim over after its lease: it reads the channel's history with message metadata and confirms
with the message already there instead of posting again. When that history cannot be read it
posts again and says so: a duplicate beats a missed reminder.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import pytest

from bot.crypto import Vault
from bot.fakes.slack import FakeSlack
from tests.processes import start
from tests.store_sync import sync_store
from tests.sweep_helpers import run_sweep
from tests.test_roles import due_link

LEASE = 600  # bot.reminders.lease_for(15), the default sweep interval


def killed_after_slack_took_the_post(make_settings: Any, slack: FakeSlack, pages: list[str]) -> dict[str, Any]:
    """A worker posts the due reminders of ``pages`` (in CREMIND) and is SIGKILLed once the fake
    Slack has the message, before the answer reaches it. Returns the message Slack has."""
    settings = make_settings()
    for page in pages:
        due_link(settings.database, settings.fblink_secret_key, page, "CREMIND")
    answer = threading.Event()
    slack.fail("POST /api/chat.postMessage", accept=True, hold=answer)
    worker = start(settings, "worker")
    try:
        slack.wait_for(lambda: any(m["method"] == "chat.postMessage" for m in slack.messages), timeout=30)
    finally:
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)
        answer.set()
    (posted,) = [m for m in slack.messages if m["method"] == "chat.postMessage"]
    store = sync_store(settings.database, Vault(settings.fblink_secret_key))
    try:
        rows = store.select("SELECT status, attempt_channel, attempt_at, message_ts FROM reminders")
    finally:
        store.close()
    assert len(rows) == len(pages)
    assert all(r["status"] == "claimed" and r["message_ts"] is None for r in rows)  # never confirmed
    assert all(r["attempt_channel"] == "CREMIND" and abs(r["attempt_at"] - time.time()) < 60 for r in rows)
    assert posted["metadata"]["event_type"] == "fblink_reminder"
    return posted


def reminders(bot: Any) -> list[dict[str, Any]]:
    return bot.store.select("SELECT status, channel_id, message_ts FROM reminders ORDER BY id")


def test_a_takeover_finds_the_killed_workers_post_and_posts_nothing_new(make_settings, slack, bot):
    pages = [f"9{i}" for i in range(7)]  # one digest of seven
    posted = killed_after_slack_took_the_post(make_settings, slack, pages)
    assert posted["text"].startswith(":alarm_clock: 7 Facebook Page links")
    for i in range(250):  # the channel moved on: the digest is on the second page of its history
        slack.record_user_message("CREMIND", "U2", f"chatter {i}")
    report, metrics = run_sweep(bot, int(time.time()) + LEASE + 5)
    assert report == [f"found 7 already posted to CREMIND ({posted['ts']}); not posted again"]
    assert [m["ts"] for m in slack.messages if m["method"] == "chat.postMessage"] == [posted["ts"]]  # nothing new
    assert reminders(bot) == [{"status": "posted", "channel_id": "CREMIND", "message_ts": posted["ts"]}] * 7
    reads = slack.calls(path="/api/conversations.history")  # slack_sdk reads with GET
    assert len(reads) == 2 and all(r.params["include_all_metadata"] in (True, "1", "true") for r in reads)
    assert float(reads[0].params["oldest"]) < float(posted["ts"])
    assert metrics["fblink_reminders_total{found_posted}"] == 7
    assert metrics.get("fblink_reminders_total{posted}", 0) == 0
    report, _ = run_sweep(bot, int(time.time()) + 2 * LEASE + 10)  # and no later sweep posts it
    assert report == [] and len([m for m in slack.messages if m["method"] == "chat.postMessage"]) == 1


@pytest.mark.parametrize("problem", ["not_in_channel", "channel_not_found", "ratelimited"])
def test_unreadable_history_posts_again_and_says_so(make_settings, slack, bot, caplog, problem):
    first = killed_after_slack_took_the_post(make_settings, slack, ["81"])
    slack.history_errors["CREMIND"] = problem
    with caplog.at_level(logging.WARNING, logger="bot.takeover"):
        report, metrics = run_sweep(bot, int(time.time()) + LEASE + 5)
    again = [m for m in slack.messages if m["method"] == "chat.postMessage"]
    assert len(again) == 2 and again[1]["channel"] == "CREMIND" and "Acme Coffee 81" in str(again[1]["blocks"])
    assert report == ["posted expiry 7 for Acme Coffee 81 (81) to CREMIND"]
    assert reminders(bot) == [{"status": "posted", "channel_id": "CREMIND", "message_ts": again[1]["ts"]}]
    assert again[1]["ts"] != first["ts"]
    assert (
        f"could not read CREMIND's history ({problem})" in caplog.text and "a duplicate beats a missed" in caplog.text
    )
    assert metrics["fblink_reminders_total{recheck_failed}"] == 1
