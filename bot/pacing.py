"""Slack's pace per channel: about one message per second to one channel.

A sweep posts to many channels at once, and several of its posts can land in the same
channel by different routes: a busy channel's digests, fallbacks from refused channels
to the team's reminder channel, escalations, DMs to one admin. Every post first books a
slot for its channel; slots of one channel are ``gap`` seconds apart, in booking order,
measured from when each was in fact taken.
The same line, with one key, starts a sweep's requests apart (:meth:`bot.turns.Turns.send`).
"""

from __future__ import annotations

import asyncio
import math


class Pacer:
    """At least ``gap`` seconds between two posts to one channel (or two uses of any one key)."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self._free_at: dict[str, float] = {}  # channel -> when its next slot starts (loop time)
        self._taken: dict[str, float] = {}  # channel -> when its last slot was taken, in fact

    async def slot(self, channel: str) -> None:
        """Wait for this channel's next free slot, and take it.

        Slots are booked in order, ``gap`` apart. A busy loop can wake a waiter late; the
        slot after it then waits a full gap from when that one was taken (a waiter checks
        again when it wakes, a new booking when it books), so two starts are never closer
        than ``gap`` in fact, not only on the booking sheet."""
        if self.gap <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        after = self._taken.get(channel, -math.inf) + self.gap
        at = max(now, self._free_at.get(channel, now), after)
        self._free_at[channel] = at + self.gap
        while now < at:
            await asyncio.sleep(at - now)
            now = loop.time()
            at = max(at, self._taken.get(channel, -math.inf) + self.gap)
        self._taken[channel] = now
