"""Prometheus metrics, one registry per app so tests can build many apps.

The link-state gauges need a count over every link. That count never runs on the event
loop: it runs in one worker thread with a SQLite connection of its own (a connection is
bound to the thread that uses it), at most once per ``link_state_max_age`` seconds however
often /metrics is scraped, and concurrent scrapes share one refresh.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bot.store import Store

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "bearer_ok"]

LINK_STATES = ("active", "expired", "broken", "gone", "unknown_expiry")


class CacheCounts(Protocol):
    """A cache that counts its lookups (bot.oauth.CachedAuthorize)."""

    hits: int
    misses: int
    refreshes: int


class _AuthorizeCache(Collector):
    """``fblink_authorize_cache_total{result=hit|miss|refresh}``, read from the cache's own counters at
    scrape time, so the request path pays nothing for it."""

    def __init__(self, cache: CacheCounts) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "fblink_authorize_cache",
            "Distributed mode: installs found in the authorize cache (hit), read from the database on the request's"
            " path (miss) or in the background before their entry ends (refresh)",
            labels=["result"],
        )
        family.add_metric(["hit"], self.cache.hits)
        family.add_metric(["miss"], self.cache.misses)
        family.add_metric(["refresh"], self.cache.refreshes)
        yield family


def bearer_ok(authorization: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    # Compare even on a wrong scheme, so the answer takes as long either way.
    same = hmac.compare_digest(credentials.strip().encode(), token.encode())
    return scheme.lower() == "bearer" and same


class Metrics:
    def __init__(self, *, link_state_max_age: float = 30.0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fblink_slack_requests", "Slack requests by kind and command", ["kind", "command"], registry=self.registry
        )
        self.ack_latency = Histogram(
            "fblink_ack_latency_seconds",
            "Time from Slack request to HTTP answer",
            ["kind"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.outbound_calls = Counter(
            "fblink_outbound_requests",
            "Outbound HTTP attempts by upstream and status",
            ["upstream", "status"],
            registry=self.registry,
        )
        self.reminders = Counter(
            "fblink_reminders",
            "Reminders by outcome (posted, failed, gave_up, superseded; found_posted: a takeover found the post in Slack; recheck_failed: it could not read the history, so posted again)",
            ["outcome"],
            registry=self.registry,
        )
        self.unreadable_rows = Counter(
            "fblink_unreadable_rows",
            "Rows skipped because they could not be decrypted or parsed",
            ["table"],
            registry=self.registry,
        )
        self.probes = Counter(
            "fblink_token_probes",
            "Token probes by outcome (valid, dead, error, no_token, deferred)",
            ["outcome"],
            registry=self.registry,
        )
        self.pruned = Counter("fblink_pruned_rows", "Rows removed by retention", ["table"], registry=self.registry)

        self.links = Gauge("fblink_links", "Links by state", ["state"], registry=self.registry)
        self.links_age = Gauge("fblink_links_age_seconds", "Age of the fblink_links counts", registry=self.registry)
        self.link_state_max_age = link_state_max_age
        self.link_reader: Store | None = None  # opened in, and used only by, the worker thread
        self._links_at: float | None = None
        self._links_refresh: asyncio.Future[None] | None = None
        self._worker: ThreadPoolExecutor | None = None

    bearer_ok = staticmethod(bearer_ok)

    def set_link_states(self, counts: dict[str, int]) -> None:
        for state in LINK_STATES:
            self.links.labels(state).set(counts.get(state, 0))

    async def refresh_link_states(self, store: Store, now: int) -> None:
        """Bring the link gauges up to date unless they are fresher than ``link_state_max_age``."""
        if self._links_at is not None and time.monotonic() - self._links_at < self.link_state_max_age:
            self.links_age.set(time.monotonic() - self._links_at)
            return
        if self._links_refresh is None or self._links_refresh.done():
            self._links_refresh = asyncio.ensure_future(self._refresh(store, now))
        await asyncio.shield(self._links_refresh)  # a scrape that gives up does not cancel the others'
        self.links_age.set(time.monotonic() - (self._links_at or time.monotonic()))

    async def _refresh(self, store: Store, now: int) -> None:
        if not store.engine.blocking:  # a network database: the count is awaited, the loop stays free
            counts = await store.link_state_counts(now)
        else:  # SQLite counts on the caller's thread: a million rows would stall the loop
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fblink-metrics")
            counts = await asyncio.get_running_loop().run_in_executor(self._worker, self._count, store, now)
        self.set_link_states(counts)
        self._links_at = time.monotonic()

    def _count(self, store: Store, now: int) -> dict[str, int]:
        """In the worker thread: the count, on that thread's own connection to the same file."""
        if self.link_reader is None:
            self.link_reader = Store(store.engine.twin(), store.vault)
        return asyncio.run(self.link_reader.link_state_counts(now))

    def close(self) -> None:
        """Stop the worker thread and close its connection (at shutdown)."""
        if self._worker is not None:
            reader = self.link_reader
            if reader is not None:
                self._worker.submit(asyncio.run, reader.close()).result(timeout=10)
            self._worker.shutdown(wait=True)
            self._worker, self.link_reader, self._links_at = None, None, None

    def count_authorize_cache(self, cache: CacheCounts) -> None:
        """Expose the authorize cache's hits and misses (distributed mode builds one per process)."""
        self.registry.register(_AuthorizeCache(cache))

    def outbound(self, upstream: str, status: int | None) -> None:
        self.outbound_calls.labels(upstream, str(status) if status is not None else "error").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
