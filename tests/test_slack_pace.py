"""Issue 19 item 3: Slack's pace across processes. A channel's posts are booked in the database,
so posts to one channel from any process are FBLINK_CHANNEL_GAP apart; a 429's Retry-After met
by one process is honoured by all; a long one hands the claim back instead of holding a worker.

"Another process" is a second Store on the same database (its own connection), or a sweep with
services of its own, as `fblink sweep` and every worker build them: nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.crypto import Vault
from bot.fakes.slack import FakeSlack
from bot.slack_retry import LONG_WAIT
from tests import pg
from tests.conftest import START
from tests.store_sync import SyncStore, sync_store
from tests.sweep_helpers import run_sweep, seed

GAP = 0.5
ON_THE_WIRE = GAP - 0.02  # the trip through client and fake (as tests/test_sweep_delivery.py allows)


KEY = Fernet.generate_key().decode()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_processes(request, tmp_path) -> Iterator[tuple[SyncStore, SyncStore]]:  # type: ignore[no-untyped-def]
    """Two Stores, each on its own connection and loop, on one database of each engine (as the
    store's contract suite does: both engines in every run)."""
    if request.param == "sqlite":
        where = str(tmp_path / "pace.db")
        a, b = sync_store(where, Vault(KEY)), sync_store(where, Vault(KEY))
        yield a, b
        a.close()
        b.close()
        return
    with pg.fresh_schema("p") as url:
        pg.migrate(url)
        a, b = sync_store(url, Vault(KEY)), sync_store(url, Vault(KEY))
        yield a, b
        a.close()
        b.close()


def other_process(bot):  # type: ignore[no-untyped-def]
    settings = bot.services.settings
    return sync_store(settings.database, Vault(settings.fblink_secret_key))


def reminder(bot) -> dict:  # type: ignore[no-untyped-def,type-arg]
    (row,) = bot.store.select("SELECT status, attempts, last_error, claimed_at FROM reminders")
    return row


def test_two_processes_booking_one_channel_get_starts_a_gap_apart(two_processes):
    a, b = two_processes
    now = time.time()
    starts = [
        a.book_slack_slot("CBUSY", "chat.postMessage", gap=GAP, now=now),
        b.book_slack_slot("CBUSY", "chat.postMessage", gap=GAP, now=now),
        a.book_slack_slot("CBUSY", "chat.postMessage", gap=GAP, now=now + 0.1),
        b.book_slack_slot("CQUIET", "chat.postMessage", gap=GAP, now=now),
    ]
    assert starts == pytest.approx([now, now + GAP, now + 2 * GAP, now], abs=1e-3)  # another channel waits for nobody
    later = now + 10  # long after: a booking never starts in the past
    assert a.book_slack_slot("CBUSY", "chat.postMessage", gap=GAP, now=later) == pytest.approx(later, abs=1e-3)


def test_the_gap_counts_from_the_real_send_and_answer_not_from_the_booking(two_processes):
    a, b = two_processes
    now, hold = time.time(), 5.0
    assert a.book_slack_slot("CLATE", "chat.postMessage", gap=GAP, now=now) == pytest.approx(now, abs=1e-3)
    assert b.book_slack_slot("CLATE", "chat.postMessage", gap=GAP, now=now) == pytest.approx(now + GAP, abs=1e-3)
    sent = now + 0.3  # a woke late: its send goes out now, in flight until Slack answers
    assert a.take_slack_send("CLATE", gap=GAP, now=sent, hold=hold) == 0.0
    # b's booked start has come, but a's send is in flight: not before its answer (or its hold)
    assert b.take_slack_send("CLATE", gap=GAP, now=now + GAP, hold=hold) == pytest.approx(sent + hold + GAP)
    a.slack_answered("CLATE", at=sent + 0.05, held=sent + hold)  # answered a trip later
    assert b.take_slack_send("CLATE", gap=GAP, now=now + GAP, hold=hold) == pytest.approx(sent + 0.05 + GAP)
    assert b.take_slack_send("CLATE", gap=GAP, now=sent + 0.05 + GAP, hold=hold) == 0.0
    a.slack_answered("CLATE", at=sent + 0.1, held=sent + hold)  # a stale answer never frees b's send
    assert a.take_slack_send("CLATE", gap=GAP, now=sent + 0.1 + GAP, hold=hold) == pytest.approx(
        sent + 0.05 + GAP + hold + GAP
    )


def test_a_retry_after_recorded_by_one_process_holds_every_channel_for_all(two_processes):
    a, b = two_processes
    now = time.time()
    b.slack_backoff("chat.postMessage", now + 30)
    b.slack_backoff("chat.postMessage", now + 5)  # an earlier end never shortens a wait
    assert a.book_slack_slot("CANY", "chat.postMessage", gap=GAP, now=now) == pytest.approx(now + 30, abs=1e-3)
    assert a.book_slack_slot("CANY", "chat.postMessage", gap=GAP, now=now) == pytest.approx(now + 30 + GAP, abs=1e-3)


def test_a_sweep_waits_for_the_channels_slot_another_process_booked(bot, slack: FakeSlack):
    seed(bot, 1, channel="CSHARED")
    other = other_process(bot)
    try:
        booked_at = time.monotonic()
        other.book_slack_slot("CSHARED", "chat.postMessage", gap=GAP, now=time.time())  # its post goes out now
    finally:
        other.close()
    report, _ = run_sweep(bot, START, fblink_channel_gap=GAP)
    (call,) = slack.calls("POST", "/api/chat.postMessage")
    assert call.params["channel"] == "CSHARED" and report == ["posted expiry 7 for Shop 700000 (700000) to CSHARED"]
    assert call.at - booked_at >= ON_THE_WIRE


SLOW_SENDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from bot.crypto import Vault
    from bot.store import Store, open_engine

    async def main(url, key, gap, go):
        store = Store(open_engine(url), Vault(key))
        await store.open()
        start = await store.book_slack_slot("CSHARED", "chat.postMessage", gap=gap, now=time.time())
        assert start <= time.time() + 0.01
        print(time.time(), flush=True)  # booked: its post would start now
        while not __import__("os").path.exists(go):
            time.sleep(0.01)
        took = time.time()
        assert await store.take_slack_send("CSHARED", gap=gap, now=took, hold=5.0) == 0.0  # sent late,
        print(took, flush=True)
        time.sleep(0.4)  # and Slack took long to answer
        await store.slack_answered("CSHARED", at=time.time(), held=took + 5.0)
        print(time.time(), flush=True)
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
    """
)


def test_a_sweep_waits_a_gap_after_another_processes_late_send_was_answered(bot, slack: FakeSlack, tmp_path):
    seed(bot, 1, channel="CSHARED")
    settings = bot.services.settings
    where = settings.fblink_database_url or settings.database
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    other = subprocess.Popen(
        [sys.executable, "-c", SLOW_SENDER, where, settings.fblink_secret_key, str(GAP), str(go)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdout is not None
    booked = float(other.stdout.readline())
    go.touch()  # the other worker sends now, later than it booked, while this sweep books the next slot
    report, _ = run_sweep(bot, START, fblink_channel_gap=GAP)
    took, answered = float(other.stdout.readline()), float(other.stdout.readline())
    assert other.wait(30) == 0
    (call,) = slack.calls("POST", "/api/chat.postMessage")
    assert report == ["posted expiry 7 for Shop 700000 (700000) to CSHARED"]
    sent = time.time() - (time.monotonic() - call.at)  # the fake's arrival, on the wall clock
    assert booked < took < answered  # booked, then sent late, then answered after a slow trip
    assert sent - answered >= GAP - 0.02  # a full gap after the other's answer, not after its booking
    assert sent - booked >= GAP + 0.4 - 0.02


def test_a_long_retry_after_met_by_one_process_hands_the_claim_back_in_every_process(bot, slack: FakeSlack):
    seed(bot, 1, channel="CLIMIT")
    slack.fail(
        "POST /api/chat.postMessage",
        status=429,
        headers={"Retry-After": str(int(LONG_WAIT * 3))},
        body={"ok": False, "error": "ratelimited"},
    )
    began = time.time()
    report, metrics = run_sweep(bot, START)  # process A meets the 429
    assert report == [] and len(slack.calls("POST", "/api/chat.postMessage")) == 1  # not slept through, not retried
    (pace,) = bot.store.select("SELECT key, not_before FROM slack_pace WHERE key = 'method:chat.postMessage'")
    assert began + LONG_WAIT * 3 - 1 <= pace["not_before"] <= time.time() + LONG_WAIT * 3
    row = reminder(bot)
    assert row["status"] == "claimed" and row["claimed_at"] == 0 and row["last_error"] == "ratelimited"
    assert metrics["fblink_reminders_total{failed}"] == 1

    report, _ = run_sweep(bot, START)  # process B, at once: honours A's Retry-After, holds nothing
    assert report == [] and len(slack.calls("POST", "/api/chat.postMessage")) == 1
    row = reminder(bot)
    assert row["status"] == "claimed" and row["claimed_at"] == 0 and "wait" in row["last_error"]

    bot.store.execute("UPDATE slack_pace SET not_before = 0")  # Slack's wait is over
    report, _ = run_sweep(bot, START)
    assert report == ["posted expiry 7 for Shop 700000 (700000) to CLIMIT"]
    assert reminder(bot)["status"] == "posted"
    assert [m["channel"] for m in slack.messages if m["method"] == "chat.postMessage"] == ["CLIMIT"]


def test_a_short_retry_after_is_waited_for_in_the_call(bot, slack: FakeSlack):
    seed(bot, 1, channel="CSHORT")
    slack.fail(
        "POST /api/chat.postMessage",
        status=429,
        headers={"Retry-After": "1"},
        body={"ok": False, "error": "ratelimited"},
    )
    report, _ = run_sweep(bot, START)
    first, second = slack.calls("POST", "/api/chat.postMessage")
    assert second.at - first.at >= 1 - 0.02  # slack_sdk's own retry, after Slack's Retry-After
    assert report == ["posted expiry 7 for Shop 700000 (700000) to CSHORT"]
    assert reminder(bot)["status"] == "posted"
