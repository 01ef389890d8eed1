"""Slack's pace shared by every process that posts (issue 19 item 3): each post books its
channel's slot in the database (:mod:`bot.store.pace`), and a 429 met by one process holds
every process's posts until its Retry-After has passed. A wait longer than LONG_WAIT is not
held: the post raises :class:`RateLimited`, and the sweep hands its claim back for later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar

from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.slack_retry import LONG_WAIT, retry_after

log = logging.getLogger(__name__)
POST_METHOD = "chat.postMessage"
_SENDING: ContextVar[list[tuple[str, float]] | None] = ContextVar("fblink_sending", default=None)
HOLD = 3.0  # seconds a send holds its channel at most when no answer is recorded (its process stopped)
POLL = 0.02  # seconds between looks at a channel another process is sending to


class RateLimited(Exception):
    """Slack asked every process to wait longer than LONG_WAIT: the claim goes back for a later sweep."""


async def shared_slot(services: Services, channel: str) -> None:
    """The channel's slot booked in the database, so posts from every worker to one channel are
    FBLINK_CHANNEL_GAP apart and a Retry-After that one process met holds for all
    (:mod:`bot.store.pace`). A wait longer than LONG_WAIT is not held: the claim goes back. The
    booking only orders the posts: at the send, the gap is counted again from the channel's last
    real send's answer (:func:`answered`), so a late waker or a slow trip never shortens it."""
    gap = services.settings.fblink_channel_gap
    start = await services.store.book_slack_slot(channel, POST_METHOD, gap=gap, now=time.time())
    wait = start - time.time()
    if wait > LONG_WAIT:
        raise RateLimited(f"Slack asked to wait {wait:.0f} s")
    if wait > 0:
        await asyncio.sleep(wait)
    sending = _SENDING.get()
    hold = HOLD if sending is not None else 0.0
    deadline = time.time() + hold + gap + LONG_WAIT
    while gap > 0:  # then a gap from the channel's last real send's answer, whoever's it was
        now = time.time()
        again = await services.store.take_slack_send(channel, gap=gap, now=now, hold=hold)
        if not again:
            if sending is not None:
                sending.append((channel, now + hold))
            return
        if now > deadline:
            raise RateLimited(f"channel {channel} stayed busy with other workers' posts")
        in_flight = again - gap > now  # another process's send, not answered yet: look again shortly
        await asyncio.sleep(POLL if in_flight else max(0.0, again - now))


@contextlib.asynccontextmanager
async def answered(services: Services) -> AsyncIterator[None]:
    """Around a post: the channels it takes are in flight (no other process sends there) until
    Slack answers or the client gives up; then the next send there waits a full gap from now."""
    taken: list[tuple[str, float]] = []
    token = _SENDING.set(taken)
    try:
        yield
    finally:
        _SENDING.reset(token)
        at = time.time()
        for channel, held in taken:
            await services.store.slack_answered(channel, at=at, held=held)


async def rate_limited(services: Services, exc: SlackApiError) -> None:
    """Slack answered 429 (after the client's own retries of a short Retry-After): every
    process holds its posts until the Retry-After has passed."""
    wait = retry_after(exc.response.headers) or 1.0
    await services.store.slack_backoff(POST_METHOD, time.time() + wait)
    log.warning("Slack rate-limited chat.postMessage for %.0f s; every worker waits", wait)
