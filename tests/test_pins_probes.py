"""Issue 22 items 7-9 and issue 23 items 2-3: the daily token probes' bookkeeping, metrics, budget
and cursor, and the linker's Page token as the fallback when a link holds none."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.clock import FixedClock
from bot.probes import probe_tokens
from bot.services import open_services
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import text_of
from tests.sweep_helpers import DAY, VALID, posts, run_sweep
from tests.test_sweep_probes import DEBUG, PAGES, linked  # noqa: F401  (a fixture, used by name)


def probed_tokens(graph) -> list[str]:
    return [c.params.get("input_token", "") for c in graph.calls("GET", "/v25.0/debug_token")]


def to_probe(bot, now: int) -> set[int]:
    """Link ids the store would hand the probes at ``now`` (the store API: runs on every engine)."""
    return {r.link_id for r in bot.store.reminders.probe_batch(now=now, after=(-1, 0), limit=1000)}


def tokened(bot, n: int, *, prefix: str = "7") -> list[int]:
    """n active links, not due for a reminder, each holding its own Page token ``EAA<prefix>-<i>``."""
    ids = []
    for i in range(n):
        link = bot.store.upsert_link(
            TEAM,
            f"{prefix}{i:05d}",
            now=START,
            page_name=f"Shop {prefix}{i:05d}",
            api_key=VONAGE_KEY,
            linked_by="U1",
            channel_id="CX",
            expires_at=START + 80 * DAY,
            status="active",
            next_due_at=None,
            page_token=f"EAA{prefix}-{i}",
        )
        ids.append(link.id)
    return ids


# -- issue 22 item 7 --------------------------------------------------------------------------------


def test_an_unreadable_token_is_looked_at_once_a_day(bot, graph):
    (good, bad) = tokened(bot, 2)
    graph.fail(DEBUG, status=200, body=VALID, times=10)
    bot.store.execute("UPDATE links SET token_enc = 'not-a-fernet-token' WHERE id = ?", [bad])
    when = START + DAY
    _, metrics = run_sweep(bot, when, probe=True)
    assert metrics["fblink_unreadable_rows_total{links}"] == 1
    assert bot.store.get_link_by_id(bad).unreadable_at == when
    assert to_probe(bot, when + 3600) == set()  # checked as well as flagged: not every sweep
    assert to_probe(bot, when + DAY) == {good, bad}  # tomorrow, again


# -- issue 22 item 8 --------------------------------------------------------------------------------


def test_a_dead_token_counts_as_dead_and_raises_the_broken_alert(linked, graph):
    bot = linked
    graph.kill_page_token("101")
    report, metrics = run_sweep(bot, START + DAY, probe=True)
    assert metrics["fblink_token_probes_total{dead}"] == 1
    assert metrics.get("fblink_token_probes_total{valid}", 0) == 0
    (alert,) = posts(bot, "CLINK")
    assert "*Acme Coffee*: the Facebook link is broken" in text_of(alert)
    assert report == ["posted broken 1 for Acme Coffee (101) to CLINK"]


# -- issue 22 item 9 --------------------------------------------------------------------------------


def samples(services: Any) -> dict[str, float]:
    return {
        s.name + "{" + ",".join(s.labels.values()) + "}": s.value
        for family in services.metrics.registry.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_probes_running_when_the_budget_ends_are_cancelled_counted_and_finished(bot, graph):
    ids = tokened(bot, 3)
    graph.fail(DEBUG, delay=3, status=200, body=VALID, times=3)
    settings = bot.services.settings.model_copy(update={"fblink_probe_budget": 0.5, "fblink_probe_concurrency": 8})

    async def go() -> tuple[list[asyncio.Task[Any]], dict[str, float]]:
        async with open_services(settings, FixedClock(START + DAY)) as services:
            await probe_tokens(services, START + DAY)
            left = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_probe_one"]
            return left, samples(services)

    left, metrics = asyncio.run(go())
    assert left == []  # no probe outlives the sweep
    assert metrics["fblink_token_probes_total{deferred}"] == 3
    assert metrics.get("fblink_token_probes_total{valid}", 0) == 0  # cancelled, not waited for
    assert to_probe(bot, START + DAY) == set(ids)  # unchecked: first in the next sweep


# -- issue 23 item 2 --------------------------------------------------------------------------------


def test_a_link_without_a_token_is_probed_with_the_linkers_page_token(linked, graph):
    bot = linked
    bot.store.execute("UPDATE links SET token_enc = NULL")  # e.g. linked before links kept their token
    dead = graph.page_token("FB1", "101")  # the token fblink holds from the linker's login
    graph.kill_page_token("101")
    _report, metrics = run_sweep(bot, START + DAY, probe=True)
    assert probed_tokens(graph) == [dead]  # the token of the linker's (team, user, Page)
    assert metrics["fblink_token_probes_total{dead}"] == 1
    (alert,) = posts(bot, "CLINK")
    assert "*Acme Coffee*: the Facebook link is broken" in text_of(alert)


# -- issue 23 item 3 --------------------------------------------------------------------------------


def test_one_sweep_never_probes_a_link_twice(bot, graph):
    """Facebook down: no probe marks its link checked, so only the cursor keeps the sweep from
    reading the same rows again."""
    tokened(bot, 25)
    graph.fail(DEBUG, status=500, body={"error": {"message": "down", "code": 2}}, times=1000)
    _, metrics = run_sweep(bot, START + DAY, probe=True, fblink_probe_budget=3, fblink_retry_attempts=1)
    tokens = probed_tokens(graph)
    assert sorted(tokens) == sorted(f"EAA7-{i}" for i in range(25))  # each once
    assert metrics["fblink_token_probes_total{error}"] == 25


def test_a_spent_budget_stops_the_reading_and_the_rest_carry_over(bot, graph):
    """One probe at a time, each slower than the budget: the sweep stops at the first row it has no
    time for and looks at no row after it (an unreadable row there, later in the same batch of ten or
    first in the next, is not even flagged); they all carry over to the next sweep."""
    ids = tokened(bot, 15)
    unread = [ids[5], ids[10]]
    for link_id in unread:
        bot.store.execute("UPDATE links SET token_enc = 'not-a-fernet-token' WHERE id = ?", [link_id])
    graph.fail(DEBUG, delay=2, status=200, body=VALID, times=1)
    when = START + DAY
    _, metrics = run_sweep(bot, when, probe=True, fblink_probe_budget=0.5, fblink_probe_concurrency=1)
    assert metrics["fblink_token_probes_total{deferred}"] == 1
    assert [bot.store.get_link_by_id(i).unreadable_at for i in unread] == [None, None]  # never looked at
    assert to_probe(bot, when) == set(ids)  # all carried over
    graph.reset_log()
    graph.fail(DEBUG, status=200, body=VALID, times=100)
    _, metrics = run_sweep(bot, when + 900, probe=True)
    assert metrics["fblink_token_probes_total{valid}"] == 13 and len(probed_tokens(graph)) == 13
    assert [bot.store.get_link_by_id(i).unreadable_at for i in unread] == [when + 900] * 2
