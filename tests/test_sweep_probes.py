"""Issue 9 items 4 and 6 and the probe pins: reminders never wait on Facebook; probes are
concurrent, bounded, within a time budget; the once-a-day bookkeeping; Facebook down."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.clock import FixedClock
from bot.probes import probe_tokens
from bot.reminders import Run, claim_all
from bot.services import open_services
from tests.conftest import START, TEAM
from tests.flows import log_in, text_of
from tests.sweep_helpers import DAY, VALID, posts, rows, run_sweep, seed

PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]
EXP = START + 90 * DAY
DEBUG = "GET /v25.0/debug_token"


@pytest.fixture
def linked(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 365 * DAY)
    bot.command("link 101", channel="CLINK")
    bot.slack.wait_response("Linked *Acme Coffee*")
    bot.slack.messages.clear()
    graph.reset_log()
    return bot


def checked_at(bot, page_id: str = "101") -> int:
    return rows(bot, "SELECT checked_at FROM links WHERE page_id = ?", [page_id])[0]["checked_at"]


def test_a_slow_graph_delays_no_reminder_and_the_probe_carries_over(linked, graph):
    bot = linked
    graph.fail(DEBUG, delay=3, status=503, body={"error": {"message": "down", "code": 2}}, times=5)
    t0 = time.monotonic()
    report, metrics = run_sweep(bot, EXP - 14 * DAY + 1, probe=True, fblink_probe_budget=0.5)
    assert time.monotonic() - t0 < 2.5  # the old sweep waited for every probe (and its retries) first
    assert len(report) == 1 and "expires in *14 days*" in text_of(posts(bot)[0])
    assert checked_at(bot) == START and metrics["fblink_token_probes_total{deferred}"] == 1
    graph.reset_log()
    run_sweep(bot, EXP - 14 * DAY + 600, probe=True)
    assert checked_at(bot) == EXP - 14 * DAY + 600  # probed by the next sweep


def test_probes_run_concurrently_within_the_bound(bot, graph):
    seed(bot, 12, channel="CX", token="EAAtoken")
    bot.store.execute("UPDATE links SET next_due_at = NULL")
    graph.fail(DEBUG, delay=0.4, status=200, body=VALID, times=12)
    t0 = time.monotonic()
    run_sweep(bot, START + DAY, probe=True, fblink_probe_concurrency=4)
    took = time.monotonic() - t0
    assert 1.2 <= took < 3.5, took  # 3 waves of 4, not 12 probes one after another (4.8 s)
    assert rows(bot, "SELECT COUNT(*) AS n FROM links WHERE checked_at = ?", [START + DAY])[0]["n"] == 12


def test_probe_budget_carries_the_rest_to_the_next_sweep(bot, graph):
    seed(bot, 10, channel="CX", token="EAAtoken")
    bot.store.execute("UPDATE links SET next_due_at = NULL")
    graph.fail(DEBUG, delay=0.5, status=200, body=VALID, times=100)
    run_sweep(bot, START + DAY, probe=True, fblink_probe_concurrency=2, fblink_probe_budget=1.2)
    done = rows(bot, "SELECT COUNT(*) AS n FROM links WHERE checked_at = ?", [START + DAY])[0]["n"]
    assert 2 <= done <= 6
    graph.reset_log()
    graph.fail(DEBUG, status=200, body=VALID, times=100)
    run_sweep(bot, START + DAY + 900, probe=True)
    assert len(graph.calls("GET", "/v25.0/debug_token")) == 10 - done  # the rest, not the ones already done


def test_facebook_down_during_a_probe_is_no_alarm_and_is_retried(linked, graph):
    bot = linked
    graph.fail(
        DEBUG,
        status=500,
        body={
            "error": {
                "message": "An unexpected error has occurred.",
                "code": 2,
                "type": "OAuthException",
                "fbtrace_id": "Ab1",
            }
        },
        times=50,
    )
    report, metrics = run_sweep(bot, START + DAY + 5, probe=True)
    assert report == [] and posts(bot) == []
    assert checked_at(bot) == START and bot.store.get_link(TEAM, "101").broken_at is None
    assert metrics["fblink_token_probes_total{error}"] == 1
    graph.reset_log()
    graph.kill_page_token("101")
    report, _ = run_sweep(bot, START + DAY + 900, probe=True)
    assert len(report) == 1 and "broken" in report[0]


def test_link_with_no_stored_page_token_is_marked_checked_without_asking_facebook(linked, graph):
    bot = linked
    bot.command("logout")
    bot.store.execute("UPDATE links SET token_enc = NULL")
    _, metrics = run_sweep(bot, START + DAY + 5, probe=True)
    assert graph.calls("GET", "/v25.0/debug_token") == []
    assert checked_at(bot) == START + DAY + 5 and metrics["fblink_token_probes_total{no_token}"] == 1


def test_each_link_is_probed_at_most_once_a_day(linked, graph):
    bot = linked
    calls = lambda: len(graph.calls("GET", "/v25.0/debug_token"))
    run_sweep(bot, START + DAY - 1, probe=True)
    assert calls() == 0
    run_sweep(bot, START + DAY, probe=True)
    assert calls() == 1 and checked_at(bot) == START + DAY
    run_sweep(bot, START + DAY + 3600, probe=True)
    run_sweep(bot, START + 2 * DAY - 1, probe=True)
    assert calls() == 1
    run_sweep(bot, START + 2 * DAY, probe=True)
    assert calls() == 2


def test_claiming_and_probe_reading_yield_to_the_event_loop(bot):
    """Batches that yield: a ticker task keeps running while 1,100 claims and 1,100 probe rows
    (each decrypted) are read; the old code did each in one synchronous block."""
    seed(bot, 1_100, token="EAAtoken")

    async def go() -> tuple[int, int, int]:
        async with open_services(
            bot.services.settings.model_copy(update={"fblink_probe_budget": 0.01}), FixedClock(START + DAY)
        ) as services:
            ticks = 0
            stop = False

            async def ticker() -> None:
                nonlocal ticks
                while not stop:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            claims = await claim_all(Run(services, START + DAY))
            during_claims = ticks
            services.settings.fblink_probe_concurrency = 1
            await probe_tokens(services, START + DAY)
            stop = True
            await task
            return len(claims), during_claims, ticks

    n, during_claims, total = asyncio.run(go())
    assert n == 1_100 and during_claims >= 5 and total > during_claims
