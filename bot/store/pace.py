"""Slack's pace, shared by every process on one database (issue 19 item 3).

One row per key: ``channel:<id>`` holds when that channel's next post may start (a post books
its start, ``gap`` after the one before, whichever process made it), and ``method:<name>`` when
any call of that Web API method may start again after Slack answered 429 with a Retry-After.
``sent_at`` is when the channel's last post was answered (while it is in flight: when its
hold ends): a booking only orders the posts; a post goes out once ``gap`` has passed since the
last real send was answered (a booking made long before its send, a waker that woke late or a
slow trip to Slack never shortens the gap Slack sees).
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
        floor = self.dialect.greatest("?", "COALESCE((SELECT m.not_before FROM slack_pace m WHERE m.key = ?), 0)")
        booked = await self.one(  # one statement: the floor (now, or a Retry-After) is read inside it
            f"INSERT INTO slack_pace (key, not_before) VALUES (?, {floor} + ?) ON CONFLICT (key) DO UPDATE SET"
            f" not_before = {self.dialect.greatest('slack_pace.not_before', 'excluded.not_before - ?')} + ?"
            " RETURNING not_before",
            [f"channel:{channel}", now, f"method:{method}", gap, gap, gap],
        )
        assert booked is not None
        return float(booked["not_before"]) - gap

    async def take_slack_send(self, channel: str, *, gap: float, now: float, hold: float = 0.0) -> float:
        """At the real send, after the booked start: take the channel unless its last send (by any
        process) went out, or was answered, less than ``gap`` ago, or is still in flight. Taking it
        stamps ``now + hold``: the send is in flight until :meth:`slack_answered` (or ``hold`` has
        passed, should its process stop). 0.0 when taken, else when to try again."""
        key = f"channel:{channel}"
        took = await self.one(
            "UPDATE slack_pace SET sent_at = ? WHERE key = ? AND (sent_at IS NULL OR sent_at <= ?) RETURNING key",
            [now + hold, key, now - gap],
        )
        if took is not None:
            return 0.0
        row = await self.one("SELECT sent_at FROM slack_pace WHERE key = ?", [key])
        if row is None:  # never booked (a caller that skipped the booking): nothing to wait for
            return 0.0
        return float(row["sent_at"]) + gap

    async def slack_answered(self, channel: str, *, at: float, held: float) -> None:
        """Slack answered the send that stamped ``held``: the channel's next send counts its gap from
        ``at``. A stamp another send replaced since (its hold ran out) is left alone."""
        await self.execute(
            "UPDATE slack_pace SET sent_at = ? WHERE key = ? AND sent_at = ?", [at, f"channel:{channel}", held]
        )

    async def slack_backoff(self, method: str, until: float) -> None:
        """Slack answered 429: no process calls ``method`` before ``until`` (a later one wins)."""
        await self.execute(
            "INSERT INTO slack_pace (key, not_before) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            f" not_before = {self.dialect.greatest('slack_pace.not_before', 'excluded.not_before')}",
            [f"method:{method}", until],
        )
