"""Time as a service, so tests and `fblink sweep --now` can move it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall clock in UTC epoch seconds."""

    def now(self) -> int:
        return int(time.time())

    def shift(self) -> int:
        """Seconds this clock is deliberately set apart from real time: 0 for the wall clock, whatever
        the machine's time. PostgreSQL's leases and claims use the server's clock moved by this."""
        return 0


class FixedClock(Clock):
    """A clock that stays where it is told (tests, `fblink sweep --now`)."""

    def __init__(self, at: int | float | str) -> None:
        self.at = parse_time(at) if isinstance(at, str) else int(at)

    def now(self) -> int:
        return self.at

    def advance(self, seconds: int) -> None:
        self.at += int(seconds)

    def shift(self) -> int:
        return self.at - int(time.time())


def parse_time(text: str) -> int:
    """ISO-8601 (``2027-02-20T09:00:00Z``) -> UTC epoch seconds."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


MINUTE = 60
HOUR = 3600
DAY = 86400
