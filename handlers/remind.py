"""`/fblink remind`: where expiry reminders go, and muting a Page."""

from __future__ import annotations

from typing import Any

from bot import blocks
from handlers.common import ADMIN_ONLY, Req, parse_channel
from handlers.lookups import by_text

USAGE = (
    "Usage: `/fblink remind #channel` (workspace default, admins), `/fblink remind <page> #channel`, "
    "`/fblink remind <page> off|on`."
)


def _where(channel: str | None) -> str:
    return f"<#{channel}>" if channel else "the channel it was linked in"


async def cmd_remind(req: Req) -> dict[str, Any]:
    services, store = req.services, req.store
    args = list(req.args)
    if not args:
        default = await store.team_reminder_channel(req.team_id) or services.settings.fblink_reminder_channel
        lines = [f"Workspace default: {_where(default) if default else 'none (each link reminds its own channel)'}"]
        for link in await store.list_links(req.team_id, include_gone=False):
            dest = "muted" if link.muted else _where(link.reminder_channel or link.channel_id)
            lines.append(f"*{blocks.escape(link.page_name)}* → {dest}")
        return blocks.notice("*Reminder settings*\n" + "\n".join(lines[:60]) + "\n" + USAGE)
    if len(args) == 1 and parse_channel(args[0]):
        channel = parse_channel(args[0])
        if not req.is_admin or channel is None:
            return blocks.notice(ADMIN_ONLY)
        await store.set_team_reminder_channel(req.team_id, channel, by=req.user_id, now=req.now)
        await store.audit(req.team_id, "remind_default", now=req.now, user_id=req.user_id, detail=f"channel {channel}")
        return blocks.notice(f":bell: Reminders without a channel of their own now go to <#{channel}>.")
    if len(args) < 2:
        return blocks.notice(USAGE)
    target, page_words = args[-1], " ".join(args[:-1])
    found = by_text(await store.list_links(req.team_id), page_words)
    if found is None:
        return blocks.notice(f"No Page called “{blocks.escape(page_words)}” is linked in this workspace.")
    link = found
    if link.linked_by != req.user_id and not req.is_admin:
        who = f"<@{link.linked_by}>" if link.linked_by else "an admin"
        return blocks.notice(
            f":lock: Only {who} or an fblink admin can change reminders for *{blocks.escape(link.page_name)}*."
        )
    name = blocks.escape(link.page_name)
    if target.lower() in ("off", "mute"):
        await store.upsert_link(req.team_id, link.page_id, now=req.now, muted=1)
        await store.audit(req.team_id, "remind_off", now=req.now, user_id=req.user_id, page_id=link.page_id)
        return blocks.notice(
            f":no_bell: Reminders for *{name}* are off. Turn them back on with `/fblink remind {name} on`."
        )
    if target.lower() in ("on", "unmute"):
        await store.upsert_link(req.team_id, link.page_id, now=req.now, muted=0)
        await store.audit(req.team_id, "remind_on", now=req.now, user_id=req.user_id, page_id=link.page_id)
        return blocks.notice(f":bell: Reminders for *{name}* are on.")
    channel = parse_channel(target)
    if channel is None:
        return blocks.notice(USAGE)
    await store.upsert_link(req.team_id, link.page_id, now=req.now, reminder_channel=channel)
    await store.audit(
        req.team_id,
        "remind_channel",
        now=req.now,
        user_id=req.user_id,
        page_id=link.page_id,
        detail=f"channel {channel}",
    )
    return blocks.notice(f":bell: Reminders for *{name}* now go to <#{channel}>.")
