"""Slack's pace shared by every process that posts (issue 19 item 3): each post books its
channel's slot in the database (:mod:`bot.store.pace`), and a 429 met by one process holds
every process's posts until its Retry-After has passed. A wait longer than LONG_WAIT is not
held: the post raises :class:`RateLimited`, and the sweep hands its claim back for later.
"""

from __future__ import annotations

import asyncio
import logging
import time

from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.slack_retry import LONG_WAIT, retry_after

log = logging.getLogger(__name__)
POST_METHOD = "chat.postMessage"
MAX_RETAKES = 20  # a send that keeps losing its channel to other processes goes out after this many gaps


class RateLimited(Exception):
    """Slack asked every process to wait longer than LONG_WAIT: the claim goes back for a later sweep."""


async def shared_slot(services: Services, channel: str) -> None:
    """The channel's slot booked in the database, so posts from every worker to one channel are
    FBLINK_CHANNEL_GAP apart and a Retry-After that one process met holds for all
    (:mod:`bot.store.pace`). A wait longer than LONG_WAIT is not held: the claim goes back. The
    booking only orders the posts: at the send, the gap is counted again from the channel's last
    real send and answer (:func:`shared_sent`), so a late waker or a slow trip never shortens it."""
    gap = services.settings.fblink_channel_gap
    start = await services.store.book_slack_slot(channel, POST_METHOD, gap=gap, now=time.time())
    wait = start - time.time()
    if wait > LONG_WAIT:
        raise RateLimited(f"Slack asked to wait {wait:.0f} s")
    if wait > 0:
        await asyncio.sleep(wait)
    for _ in range(MAX_RETAKES if gap > 0 else 0):  # then from the channel's last real send, whoever's it was
        again = await services.store.take_slack_send(channel, gap=gap, now=time.time())
        if not again:
            return
        await asyncio.sleep(max(0.0, again - time.time()))


async def shared_sent(services: Services, channel: str) -> None:
    """Slack answered a post to ``channel``: the next one, from any process, waits a full gap from now."""
    if services.settings.fblink_channel_gap > 0:
        await services.store.slack_answered(channel, at=time.time())


async def rate_limited(services: Services, exc: SlackApiError) -> None:
    """Slack answered 429 (after the client's own retries of a short Retry-After): every
    process holds its posts until the Retry-After has passed."""
    wait = retry_after(exc.response.headers) or 1.0
    await services.store.slack_backoff(POST_METHOD, time.time() + wait)
    log.warning("Slack rate-limited chat.postMessage for %.0f s; every worker waits", wait)
