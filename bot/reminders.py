"""Expiry reminders: sweep(now) finds due links, claims, posts, confirms.

The right to post is claimed in the database before posting and confirmed
after; see :meth:`bot.store.ReminderLedger.claim_due`. A crash between claim and post is
retried once the claim's lease runs out; a crash after the post costs at most
one duplicate, never a missed reminder.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import blocks, render
from bot.clock import Clock
from bot.graph import GraphError
from bot.services import Services, open_services
from bot.settings import Settings
from bot.store import Claim, Link

log = logging.getLogger(__name__)
LEASE = 10 * 60  # an unconfirmed claim older than this is retried (shorter when sweeps are more frequent)


def lease_for(sweep_minutes: int) -> int:
    """Long enough for a slow post (Slack's Retry-After), short enough that the next sweep retries."""
    return max(60, min(LEASE, sweep_minutes * 60 - 30))
DIGEST_OVER = 5  # more than this many reminders for one channel in one sweep -> one digest
CHANNEL_REFUSED = {"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived"}


def headline(claim: Claim, now: int) -> str:
    link = claim.link
    name = blocks.escape(link.page_name)
    if claim.kind == "broken":
        return f":boom: *{name}*: the Facebook link is broken (the Page token was revoked). Messenger traffic has stopped."
    if claim.threshold == 0 or (link.expires_at is not None and link.expires_at <= now):
        return f":rotating_light: *{name}*: the link to Vonage has *expired*. Messenger traffic through Vonage has stopped."
    left = link.days_left(now) or 0
    return f":alarm_clock: *{name}*: the link to Vonage expires in *{left} day{'s' if left != 1 else ''}*."


def details(link: Link, now: int) -> str:
    when = blocks.slack_date(link.expires_at) if link.expires_at else "unknown"
    return f"{render.link_details(link)} · expiry {when}"


def relink_button(link: Link) -> dict[str, Any]:
    return blocks.button("Re-link now", "reminder_relink", link.page_id, style="primary")


def reminder_message(claim: Claim, now: int) -> dict[str, Any]:
    head = headline(claim, now)
    return blocks.message(head, [
        blocks.section(head + "\n" + details(claim.link, now)),
        blocks.actions(relink_button(claim.link)),
        blocks.context("Anyone who manages the Page on Facebook can re-link it; a re-link starts a new 90-day period."),
    ], ephemeral=False)


def digest_messages(claims: list[Claim], now: int) -> list[dict[str, Any]]:
    out = []
    per = blocks.MAX_MESSAGE_BLOCKS - 2
    for i in range(0, len(claims), per):
        chunk = claims[i : i + per]
        head = f":alarm_clock: {len(chunk)} Facebook Page links need attention"
        body = [blocks.section(f"*{head}*")]
        body += [digest_section(c, now) for c in chunk]
        out.append(blocks.message(head, body, ephemeral=False))
    return out


def digest_section(claim: Claim, now: int) -> dict[str, Any]:
    return blocks.section(headline(claim, now) + "\n" + details(claim.link, now), accessory=relink_button(claim.link))


def channel_for(services: Services, link: Link) -> str | None:
    return (
        link.reminder_channel
        or link.channel_id
        or services.store.team_reminder_channel(link.team_id)
        or services.settings.fblink_reminder_channel
        or link.linked_by
    )


def fallbacks(services: Services, link: Link, tried: str) -> list[str]:
    options = [services.store.team_reminder_channel(link.team_id), services.settings.fblink_reminder_channel, link.linked_by]
    return [c for c in dict.fromkeys(options) if c and c != tried]


async def post(services: Services, link: Link, channel: str, msg: dict[str, Any]) -> tuple[str, str]:
    """Post, falling back to the default channel or a DM when the channel refuses."""
    candidates = [channel, *fallbacks(services, link, channel)]
    last: Exception | None = None
    for target in candidates:
        try:
            resp = await services.slack.chat_postMessage(channel=target, **msg)
            return str(resp["channel"]), str(resp["ts"])
        except SlackApiError as exc:
            error = exc.response.get("error", "")
            if error in CHANNEL_REFUSED:
                log.warning("reminder for page %s: channel %s refused (%s); falling back", link.page_id, target, error)
                last = exc
                continue
            raise
    assert last is not None
    raise last


async def sweep(services: Services, *, probe: bool = True) -> list[str]:
    """One sweep: the token probe (each link at most once a day), then due reminders. Returns what was posted."""
    now = services.now()
    report: list[str] = []
    claims: list[Claim] = []
    if probe:
        claims += await probe_tokens(services, now)
    claims += services.store.reminders.claim_due(now=now, thresholds=services.settings.reminder_days,
                        lease=lease_for(services.settings.fblink_sweep_minutes))
    by_channel: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        by_channel[channel_for(services, claim.link) or ""].append(claim)
    for channel, group in by_channel.items():
        if not channel:
            for claim in group:
                log.warning("reminder for page %s has nowhere to go", claim.link.page_id)
                services.store.reminders.release(claim, error="no channel")
            continue
        if len(group) > DIGEST_OVER:
            await _post_digest(services, channel, group, now, report)
        else:
            for claim in group:
                await _post_one(services, channel, claim, now, report)
    return report


async def _post_one(services: Services, channel: str, claim: Claim, now: int, report: list[str]) -> None:
    try:
        where, ts = await post(services, claim.link, channel, reminder_message(claim, now))
    except Exception as exc:
        services.store.reminders.release(claim, error=type(exc).__name__)
        services.metrics.reminders.labels("failed").inc()
        log.warning("reminder for page %s not posted (%s); retried next sweep", claim.link.page_id, type(exc).__name__)
        return
    services.store.reminders.confirm(claim, channel_id=where, message_ts=ts, now=services.now())
    services.metrics.reminders.labels("posted").inc()
    report.append(f"posted {claim.kind} {claim.threshold} for {claim.link.page_name} ({claim.link.page_id}) to {where}")


async def _post_digest(services: Services, channel: str, group: list[Claim], now: int, report: list[str]) -> None:
    per = blocks.MAX_MESSAGE_BLOCKS - 2
    for i, msg in enumerate(digest_messages(group, now)):
        chunk = group[i * per : (i + 1) * per]
        try:
            where, ts = await post(services, chunk[0].link, channel, msg)
        except Exception as exc:
            for claim in chunk:
                services.store.reminders.release(claim, error=type(exc).__name__)
            services.metrics.reminders.labels("failed").inc(len(chunk))
            continue
        for claim in chunk:
            services.store.reminders.confirm(claim, channel_id=where, message_ts=ts, now=services.now())
        services.metrics.reminders.labels("posted").inc(len(chunk))
        report.append(f"posted digest of {len(chunk)} to {where}")


async def probe_tokens(services: Services, now: int) -> list[Claim]:
    """Daily: ask Facebook whether each linked Page token still works."""
    claims = []
    for link, token in services.store.reminders.links_to_probe(now=now):
        token = token or services.store.reminders.page_token_of(link.team_id, link.linked_by, link.page_id)
        if token is None:
            services.store.reminders.mark_checked(link.id, now=now)
            continue
        try:
            info = await services.graph.debug_token(token)
        except (GraphError, Exception) as exc:  # Facebook down: try again next time, never a false alarm
            log.warning("token probe for page %s failed: %s", link.page_id, type(exc).__name__)
            continue
        if info.is_valid:
            services.store.reminders.mark_checked(link.id, now=now)
            continue
        claim = services.store.reminders.claim_breakage(link, now=now)
        if claim:
            claims.append(claim)
    return claims


async def after_relink(services: Services, old: Link, new: Link, user_id: str) -> None:
    """Update the reminders of the old period to say who re-linked and the new expiry.

    A digest is rebuilt from the current state of every Page it lists, so the other
    Pages keep their Re-link buttons.
    """
    text = render.relinked_text(new, user_id)
    for row in services.store.reminders.posted_for_period(old.id, old.period):
        channel, ts = row["channel_id"], row["message_ts"]
        msg = {"text": text, "blocks": [blocks.section(text)]}
        if row["shared"] > 1:
            msg = digest_update(services, channel, ts, new, user_id)
        try:
            await services.slack.chat_update(channel=channel, ts=ts, **msg)
        except Exception as exc:
            log.warning("could not update reminder message for page %s: %s", new.page_id, type(exc).__name__)


def digest_update(services: Services, channel: str, ts: str, relinked: Link, user_id: str) -> dict[str, Any]:
    now = services.now()
    sections = []
    for r in services.store.reminders.reminders_in_message(channel, ts):
        link = services.store.get_link_by_id(r["link_id"])
        if link is None:
            continue
        if link.period > r["period"]:  # this Page was re-linked since the digest went out
            sections.append(blocks.section(render.relinked_text(link, user_id if link.id == relinked.id else None)))
        else:
            sections.append(digest_section(Claim(0, "", r["kind"], r["threshold"], link), now))
    head = f":alarm_clock: {len(sections)} Facebook Page links needed attention"
    return {"text": head, "blocks": [blocks.section(f"*{head}*"), *sections][: blocks.MAX_MESSAGE_BLOCKS]}


async def run_sweep_once(settings: Settings, clock: Clock, *, probe: bool = True) -> list[str]:
    """`fblink sweep`: build the services, sweep once, close."""
    async with open_services(settings, clock) as services:
        return await sweep(services, probe=probe)
