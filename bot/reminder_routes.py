"""Where a reminder goes: the one definition the sweep posts by and the link answer quotes, and
the channels tried, in order, when that one refuses."""

from __future__ import annotations

from bot.services import Services
from bot.store import Link


async def channel_for(services: Services, link: Link, teams: dict[str, str | None] | None = None) -> str | None:
    """Where a link's reminders go, the one definition (the sweep posts there, the link answer says
    so): the Page's own reminder channel, else the channel it was linked in, else the workspace
    default, else FBLINK_REMINDER_CHANNEL, else a DM to the linker. :func:`fallbacks` is the tail of
    this order, tried when a channel refuses. ``teams`` caches the workspace defaults (a sweep reads
    each once, not once per link)."""
    teams = {} if teams is None else teams
    if link.team_id not in teams:
        teams[link.team_id] = await services.store.team_reminder_channel(link.team_id)
    default = services.settings.fblink_reminder_channel
    return link.reminder_channel or link.channel_id or teams[link.team_id] or default or link.linked_by


async def fallbacks(services: Services, link: Link, tried: str) -> list[str]:
    options = [
        await services.store.team_reminder_channel(link.team_id),
        services.settings.fblink_reminder_channel,
        link.linked_by,
    ]
    return [c for c in dict.fromkeys(options) if c and c != tried]
