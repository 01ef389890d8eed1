"""Slack's pace per channel: about one message per second to one channel.

A sweep posts to many channels at once, and several of its posts can land in the same
channel by different routes: a busy channel's digests, fallbacks from refused channels
to the team's reminder channel, escalations, DMs to one admin. Every post first books a
slot for its channel; slots of one channel are ``gap`` seconds apart, in booking order.
The same line, with one key, starts a sweep's requests apart (:meth:`bot.turns.Turns.send`).
"""

from __future__ import annotations

import asyncio


class Pacer:
    """At least ``gap`` seconds between two posts to one channel (or two uses of any one key)."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self._free_at: dict[str, float] = {}  # channel -> when its next slot starts (loop time)

    async def slot(self, channel: str) -> None:
        """Wait for this channel's next free slot, and book it."""
        if self.gap <= 0:
            return
        now = asyncio.get_running_loop().time()
        at = max(now, self._free_at.get(channel, now))
        self._free_at[channel] = at + self.gap
        if at > now:
            await asyncio.sleep(at - now)
