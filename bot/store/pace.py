"""Slack's pace, shared by every process on one database (issue 19 item 3).

One row per key: ``channel:<id>`` holds when that channel's next post may start (a post books
its start, ``gap`` after the one before, whichever process made it), and ``method:<name>`` when
any call of that Web API method may start again after Slack answered 429 with a Retry-After.
Times are epoch seconds of the processes' wall clocks (the machines are assumed NTP-synced:
a skew between two machines shortens a channel's gap by as much).
"""

from __future__ import annotations

from bot.store.engine import Dialect, Params, Row


class SlackPace:
    """Booking a channel's next post and recording a Retry-After; the Store supplies the statements."""

    @property
    def dialect(self) -> Dialect:
        raise NotImplementedError

    async def one(self, sql: str, params: Params = ()) -> Row | None:
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        raise NotImplementedError

    async def book_slack_slot(self, channel: str, method: str, *, gap: float, now: float) -> float:
        """Book the channel's next post: when it may start (never before ``now``): ``gap`` after the
        channel's previous booking, and not before a Retry-After recorded for ``method``. One
        statement books it, so two processes booking together get starts ``gap`` apart."""
        row = await self.one("SELECT not_before FROM slack_pace WHERE key = ?", [f"method:{method}"])
        floor = max(now, float(row["not_before"])) if row else now
        booked = await self.one(
            "INSERT INTO slack_pace (key, not_before) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            f" not_before = {self.dialect.greatest('slack_pace.not_before', '?')} + ? RETURNING not_before",
            [f"channel:{channel}", floor + gap, floor, gap],
        )
        assert booked is not None
        return float(booked["not_before"]) - gap

    async def slack_backoff(self, method: str, until: float) -> None:
        """Slack answered 429: no process calls ``method`` before ``until`` (a later one wins)."""
        await self.execute(
            "INSERT INTO slack_pace (key, not_before) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            f" not_before = {self.dialect.greatest('slack_pace.not_before', 'excluded.not_before')}",
            [f"method:{method}", until],
        )
