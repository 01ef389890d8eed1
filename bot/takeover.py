"""Exactly once across a crash between Slack's answer and the confirm (issue 19).

A worker records in each claim row when and where it sends the post (``attempt_at``,
``attempt_channel``, :meth:`bot.store.ReminderLedger.attempt`) and sends the post with message
metadata naming the reminder rows. A worker that takes such a claim over (its holder stopped
before confirming) first reads that channel's history since the attempt, with its metadata: a
message naming the row confirms the claim with that message's ts, and nothing is posted again.

When the history cannot be read (not_in_channel, channel_not_found, ratelimited, a timeout) the
claim is posted again: a duplicate beats a missed reminder. It is logged and counted
(``fblink_reminders_total{outcome="recheck_failed"}``). A DM's attempt names the user, whose
history a bot cannot read with these scopes: DMs are posted again too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.services import Services
from bot.store import Claim

log = logging.getLogger(__name__)
EVENT_TYPE = "fblink_reminder"
MARGIN = 120  # seconds of history before the attempt: the workers' and Slack's clocks differ
PAGE = 200  # messages per history page (Slack suggests no more than 200)
PAGES = 5  # pages read at most per channel: a takeover is a minute or so after the attempt


def metadata(claims: list[Claim]) -> dict[str, Any]:
    """The message metadata a reminder is posted with. The reminder rows' ids (stable across a
    takeover, unlike claim ids), as one string: Slack's payload values are strings, numbers,
    booleans or objects, not lists of numbers."""
    return {"event_type": EVENT_TYPE, "event_payload": {"reminder_ids": ",".join(str(c.reminder_id) for c in claims)}}


async def refused(services: Services, claims: list[Claim], exc: SlackApiError) -> None:
    """Slack answered the post with an error (ok: false, or 429): nothing was posted, so a takeover
    need not look for it. A 5xx proves nothing either way: the attempt stays recorded."""
    if exc.response.status_code < 500:
        await services.store.reminders.attempt(claims, channel=None, at=None)


def _ids(message: dict[str, Any]) -> set[int]:
    meta = message.get("metadata") or {}
    if meta.get("event_type") != EVENT_TYPE:
        return set()
    raw = str((meta.get("event_payload") or {}).get("reminder_ids") or "")
    return {int(x) for x in raw.split(",") if x.strip().isdigit()}


async def _find(services: Services, team_id: str, channel: str, oldest: int, wanted: set[int]) -> dict[int, str]:
    """reminder id -> ts of the message in ``channel`` since ``oldest`` that names it."""
    found: dict[int, str] = {}
    cursor: str | None = None
    slack = await services.slack_for(team_id)
    for _ in range(PAGES):
        resp = await slack.conversations_history(
            channel=channel, oldest=str(oldest), limit=PAGE, include_all_metadata=True, cursor=cursor
        )
        for message in resp.get("messages") or []:
            for rid in _ids(message) & wanted:
                found.setdefault(rid, str(message["ts"]))
        cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
        if not resp.get("has_more") or not cursor or len(found) == len(wanted):
            break
    return found


async def unposted(services: Services, claims: list[Claim], report: list[str]) -> list[Claim]:
    """The claims still to post. Those an earlier holder sent, and that Slack shows, are confirmed
    here with the message found (one history read per channel and takeover)."""
    attempted: dict[str, list[Claim]] = defaultdict(list)
    for c in claims:
        if c.attempt_at is not None and c.attempt_channel:
            attempted[c.attempt_channel].append(c)
    if not attempted:
        return claims
    done: set[int] = set()
    for channel, group in attempted.items():
        oldest = min(c.attempt_at or 0 for c in group) - MARGIN
        try:
            found = await _find(services, group[0].link.team_id, channel, oldest, {c.reminder_id for c in group})
        except Exception as exc:  # unreadable history: post again, never miss one
            why = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning(
                "could not read %s's history (%s) to check %d reminder(s) a stopped worker sent; posting them"
                " again: a duplicate beats a missed reminder",
                channel,
                why,
                len(group),
            )
            services.metrics.reminders.labels("recheck_failed").inc(len(group))
            continue
        by_ts: dict[str, list[Claim]] = defaultdict(list)
        for c in group:
            if c.reminder_id in found:
                by_ts[found[c.reminder_id]].append(c)
        for ts, posted in by_ts.items():
            await services.store.reminders.confirm_many(posted, channel_id=channel, message_ts=ts, now=services.now())
            services.metrics.reminders.labels("found_posted").inc(len(posted))
            done.update(c.reminder_id for c in posted)
            report.append(f"found {len(posted)} already posted to {channel} ({ts}); not posted again")
    return [c for c in claims if c.reminder_id not in done]
