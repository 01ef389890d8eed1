"""What a reminder says: the single message, the digest for a busy channel, and their parts.

Kept apart from the sweep (:mod:`bot.reminders`) that decides when they are posted.
"""

from __future__ import annotations

from typing import Any

from bot import blocks, render
from bot.store import Claim, Link


def headline(claim: Claim, now: int) -> str:
    link = claim.link
    name = blocks.escape(link.page_name)
    if claim.kind == "broken":
        return (
            f":boom: *{name}*: the Facebook link is broken (the Page token was revoked). Messenger traffic has stopped."
        )
    if claim.threshold == 0 or (link.expires_at is not None and link.expires_at <= now):
        return f":rotating_light: *{name}*: the link to Vonage has *expired*. Messenger traffic through Vonage has stopped."
    left = link.days_left(now) or 0
    late = f" (this is its {claim.threshold}-day reminder)" if 0 < left < claim.threshold else ""
    return (
        f":alarm_clock: *{name}*: the link to Vonage expires in *{left} day{'s' if left != 1 else ''}*{late}. "
        "Then Messenger messages to this Page stop reaching Vonage until someone re-links it."
    )


RELINK_HELP = (
    "Anyone who manages the Page on Facebook can re-link it. The time limit is Facebook's: its data access "
    "lasts 90 days from the last Facebook login, so a re-link asks for a fresh login when needed (which "
    "renews those 90 days) and gives Vonage a fresh Page token."
)


def details(link: Link, now: int) -> str:
    when = blocks.slack_date(link.expires_at) if link.expires_at else "unknown"
    return f"{render.link_details(link)} · expiry {when}"


def relink_button(link: Link) -> dict[str, Any]:
    return blocks.button("Re-link now", "reminder_relink", link.page_id, style="primary")


def reminder_message(claim: Claim, now: int) -> dict[str, Any]:
    head = headline(claim, now)
    return blocks.message(
        head,
        [
            blocks.section(head + "\n" + details(claim.link, now)),
            blocks.actions(relink_button(claim.link)),
            blocks.context(RELINK_HELP),
        ],
        ephemeral=False,
    )


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
