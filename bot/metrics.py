"""Prometheus metrics, one registry per app so tests can build many apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fblink_slack_requests", "Slack requests by kind and command", ["kind", "command"], registry=self.registry
        )
        self.ack_latency = Histogram(
            "fblink_ack_latency_seconds", "Time from Slack request to HTTP answer", ["kind"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.outbound_calls = Counter(
            "fblink_outbound_requests", "Outbound HTTP attempts by upstream and status", ["upstream", "status"],
            registry=self.registry,
        )
        self.reminders = Counter(
            "fblink_reminders", "Reminders by outcome (posted, failed, gave_up, superseded)", ["outcome"],
            registry=self.registry
        )
        self.unreadable_rows = Counter(
            "fblink_unreadable_rows", "Rows skipped because they could not be decrypted or parsed", ["table"],
            registry=self.registry
        )
        self.probes = Counter(
            "fblink_token_probes", "Token probes by outcome (valid, dead, error, no_token, deferred)", ["outcome"],
            registry=self.registry
        )
        self.pruned = Counter("fblink_pruned_rows", "Rows removed by retention", ["table"], registry=self.registry)

        self.links = Gauge("fblink_links", "Links by state", ["state"], registry=self.registry)

    def set_link_states(self, counts: dict[str, int]) -> None:
        for state in ("active", "expired", "broken", "gone", "unknown_expiry"):
            self.links.labels(state).set(counts.get(state, 0))

    def outbound(self, upstream: str, status: int | None) -> None:
        self.outbound_calls.labels(upstream, str(status) if status is not None else "error").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
