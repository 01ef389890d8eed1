"""/metrics: link counts cached and computed off the event loop; optional bearer token."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.metrics import bearer_ok
from tests.conftest import START, TEAM, VONAGE_KEY

pytestmark = pytest.mark.sqlite_only  # SQLite's own connection and file

TOKEN = "scrape-token-0123456789abcdef"
COUNT_SQL = "SUM(CASE WHEN status = 'active' AND broken_at IS NULL"  # the link-state count's signature


def add_link(bot, page_id: str, **fields) -> None:  # type: ignore[no-untyped-def]
    fields = {
        "page_name": f"P{page_id}",
        "api_key": VONAGE_KEY,
        "expires_at": START + 86400,
        "status": "active",
        **fields,
    }
    bot.store.upsert_link(TEAM, page_id, now=START, **fields)


def gauge(text: str, state: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'fblink_links{{state="{state}"}} '):
            return float(line.split()[-1])
    raise AssertionError(f"no gauge for {state}")


def trace(conn) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Statements a connection runs, with the thread that ran them."""
    seen: list[tuple[str, str]] = []
    conn.set_trace_callback(lambda sql: seen.append((sql, threading.current_thread().name)))
    return seen


def test_link_counts_are_cached_and_counted_off_the_loop_on_their_own_connection(bot):
    add_link(bot, "1")
    add_link(bot, "2", expires_at=START - 1)
    loop_conn = trace(bot.store.db.conn)
    text = bot.http.get(bot.url + "/metrics").text
    assert gauge(text, "active") == 1 and gauge(text, "expired") == 1 and gauge(text, "gone") == 0
    assert "fblink_links_age_seconds" in text
    metrics = bot.services.metrics
    reader = metrics.link_reader
    assert reader is not None and reader.engine.db.conn is not bot.store.db.conn
    assert not [sql for sql, _ in loop_conn if COUNT_SQL in sql], "counted on the event loop's connection"
    counted = trace(reader.engine.db.conn)

    add_link(bot, "3", status="gone")
    for _ in range(20):  # scrapes within the cache age: no query at all
        text = bot.http.get(bot.url + "/metrics").text
    assert gauge(text, "gone") == 0 and not counted

    metrics.link_state_max_age = 0.2
    time.sleep(0.25)
    text = bot.http.get(bot.url + "/metrics").text
    assert gauge(text, "gone") == 1 and gauge(text, "active") == 1
    runs = [(sql, thread) for sql, thread in counted if COUNT_SQL in sql]
    assert len(runs) == 1 and runs[0][1].startswith("fblink-metrics")
    assert not [sql for sql, _ in loop_conn if COUNT_SQL in sql]


def test_concurrent_scrapes_share_one_count(bot):
    add_link(bot, "1")
    bot.http.get(bot.url + "/metrics")
    counted = trace(bot.services.metrics.link_reader.engine.db.conn)
    bot.services.metrics.link_state_max_age = 0.3
    time.sleep(0.35)
    add_link(bot, "2", broken_at=START)
    with ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda _: bot.http.get(bot.url + "/metrics").text, range(8)))
    assert all(gauge(t, "broken") == 1 for t in texts)
    assert len([sql for sql, _ in counted if COUNT_SQL in sql]) == 1


def test_metrics_are_open_without_a_token(bot):
    r = bot.http.get(bot.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


def test_metrics_token_requires_the_bearer(start_app):
    bot = start_app(fblink_metrics_token=TOKEN)
    url = bot.url + "/metrics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcd"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ):
        r = bot.http.get(url, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer") and "fblink_" not in r.text
    assert bot.services.metrics.link_reader is None  # a refused scrape counts nothing
    ok = bot.http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "fblink_links" in ok.text
    assert bot.http.get(url, headers={"Authorization": f"bearer  {TOKEN}"}).status_code == 200
    assert bot.http.get(bot.url + "/healthz").status_code == 200  # only /metrics is guarded


@pytest.mark.parametrize(
    "header,ok",
    [
        (f"Bearer {TOKEN}", True),
        (f"BEARER {TOKEN}", True),
        (None, False),
        ("", False),
        (f"Token {TOKEN}", False),
        (f"Bearer {TOKEN[:-1]}", False),
    ],
)
def test_bearer_ok(header, ok):
    assert bearer_ok(header, TOKEN) is ok


def test_close_stops_the_worker_and_its_connection(bot):
    bot.http.get(bot.url + "/metrics")
    metrics = bot.services.metrics
    reader = metrics.link_reader
    metrics.close()
    assert metrics.link_reader is None
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        reader.engine.db.conn.execute("SELECT 1")
    bot.http.get(bot.url + "/metrics")  # reopens on demand
    assert metrics.link_reader is not None
