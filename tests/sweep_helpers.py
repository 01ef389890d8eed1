"""Shared helpers for the sweep tests: run a sweep as `fblink sweep` does, and read its metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.clock import FixedClock
from bot.reminders import sweep
from bot.services import open_services
from tests.conftest import APP_ID, START, TEAM, VONAGE_KEY
from tests.flows import text_of

DAY = 86400
VALID = {  # Graph debug_token for a valid Page token (any token the fake is told to answer this way)
    "data": {
        "app_id": APP_ID,
        "type": "PAGE",
        "application": "fblink",
        "is_valid": True,
        "expires_at": 0,
        "data_access_expires_at": START + 90 * DAY,
        "scopes": ["pages_messaging"],
        "user_id": "FB1",
    }
}


def run_sweep(bot: Any, when: int, *, probe: bool = False, **overrides: Any) -> tuple[list[str], dict[str, float]]:
    """A sweep with fresh services (the CLI's path) at ``when``; returns its report and metric samples."""
    settings = bot.services.settings.model_copy(update=overrides) if overrides else bot.services.settings

    async def go() -> tuple[list[str], dict[str, float]]:
        async with open_services(settings, FixedClock(when)) as services:
            report = await sweep(services, probe=probe)
            samples = {}
            for family in services.metrics.registry.collect():
                for s in family.samples:
                    if s.name.endswith("_total"):
                        samples[s.name + "{" + ",".join(f"{v}" for v in s.labels.values()) + "}"] = s.value
            return report, samples

    return asyncio.run(go())


def seed(
    bot: Any,
    n: int,
    *,
    channel: str | None = "CBULK",
    expires: int = START + 5 * DAY,
    prefix: str = "7",
    linked_by: Any = "U1",
    token: str | None = None,
) -> list[int]:
    """n active links due now; ``linked_by`` may be a function of the index."""

    async def go(store: Any) -> list[int]:
        ids = []
        async with store.transaction():
            for i in range(n):
                who = linked_by(i) if callable(linked_by) else linked_by
                link = await store.upsert_link(
                    TEAM,
                    f"{prefix}{i:05d}",
                    now=START,
                    page_name=f"Shop {prefix}{i:05d}",
                    api_key=VONAGE_KEY,
                    linked_by=who,
                    channel_id=channel,
                    expires_at=expires,
                    status="active",
                    next_due_at=START - 10_000 + i,
                    page_token=token,
                )
                ids.append(link.id)
        return ids

    ids: list[int] = bot.store.run(go)
    return ids


def shops_due(bot: Any, n: int, *, days_left: Any = 5) -> None:
    """Pages "500".."50{n-1}" named "Shop 0".. in channel CBULK, all due now (a digest);
    ``days_left`` may be a function of the index."""
    for i in range(n):
        days = days_left(i) if callable(days_left) else days_left
        bot.store.upsert_link(
            TEAM,
            f"50{i}",
            now=START,
            page_name=f"Shop {i}",
            api_key=VONAGE_KEY,
            linked_by="U1",
            channel_id="CBULK",
            expires_at=START + days * DAY,
            status="active",
            next_due_at=START,
        )


def at(bot: Any, when: int) -> int:
    """Move the app's clock to ``when`` and return it. Claims and leases on PostgreSQL are timed by
    the server's clock shifted by the app clock's, so a test moves time through the clock, as the
    sweep does (it passes the clock's now)."""
    bot.clock.at = when
    return int(when)


def posts(bot: Any, channel: str | None = None) -> list[dict[str, Any]]:
    return [
        m
        for m in bot.slack.messages
        if m["method"] == "chat.postMessage" and (channel is None or m["channel"] == channel)
    ]


def rows(bot: Any, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    return bot.store.select(sql, params)


__all__ = ["DAY", "at", "posts", "rows", "run_sweep", "seed", "text_of"]
