"""`/fblink remind`: where expiry reminders go, and muting a Page."""

from __future__ import annotations

import logging
from typing import Any

from bot import blocks
from handlers.common import Req, admin_only_text, parse_channel
from handlers.lookups import did_you_mean, find

log = logging.getLogger(__name__)
USAGE = (
    "Usage: `/fblink remind #channel` (workspace default, admins), `/fblink remind <page> #channel`, "
    "`/fblink remind <page> off|on`."
)
MAX_CHANNEL_PAGES = 20  # conversations.list pages of 200 read to find a #name


def wrong(what: str) -> dict[str, Any]:
    """What was wrong, then the usage."""
    return blocks.notice(f":thinking_face: {what}\n{USAGE}")


def looks_like_channel(word: str) -> bool:
    return parse_channel(word) is not None or (word.startswith("#") and len(word) > 1)


async def resolve_channel(req: Req, word: str) -> tuple[str | None, str | None]:
    """(channel id, None), or (None, what is wrong). Takes Slack's escaped `<#C…|name>`, an id, or a
    plain `#name` (looked up with conversations.list, as Slack sends it when escaping did not apply)."""
    channel = parse_channel(word)
    if channel is not None:
        return channel, None
    name = word.lstrip("#").strip().lower()
    found: list[dict[str, Any]] = []
    cursor = ""
    installs = req.services.installs
    install = await installs.install_for(None, req.team_id) if installs is not None else None
    org = {"team_id": req.team_id} if install is not None and install.is_enterprise_install else {}  # an org token
    try:
        for _ in range(MAX_CHANNEL_PAGES):
            page = await (await req.services.slack_for(req.team_id)).conversations_list(
                types="public_channel,private_channel", exclude_archived=False, limit=200, cursor=cursor or None, **org
            )
            found += [c for c in page.get("channels") or [] if str(c.get("name", "")).lower() == name]
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
    except Exception as exc:
        log.warning("conversations.list failed: %s", type(exc).__name__)
        return None, (
            f"Slack did not tell me which channel `#{blocks.escape(name)}` is. Pick the channel from Slack's "
            "suggestions as you type, so it arrives as a link."
        )
    live = [c for c in found if not c.get("is_archived")]
    if not found:
        return None, (
            f"I can't find a channel called `#{blocks.escape(name)}`. If it is private, invite fblink there first "
            "(`/invite @fblink`), then try again."
        )
    if not live:
        return None, f"`#{blocks.escape(name)}` is archived, so nobody would see reminders there."
    if len(live) > 1:
        ids = ", ".join(f"<#{c['id']}>" for c in live[:5])
        return (
            None,
            f"More than one channel is called `#{blocks.escape(name)}` ({ids}). Pick one from Slack's suggestions.",
        )
    chosen = live[0]
    if chosen.get("is_private") and not chosen.get("is_member"):
        return None, f"`#{blocks.escape(name)}` is private and fblink is not in it: invite it with `/invite @fblink`."
    return str(chosen["id"]), None


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
    if len(args) == 1 and looks_like_channel(args[0]):
        if not await req.is_admin():
            return blocks.notice(await admin_only_text(services, req.team_id))
        channel, problem = await resolve_channel(req, args[0])
        if channel is None:
            return wrong(problem or "")
        await store.set_team_reminder_channel(req.team_id, channel, by=req.user_id, now=req.now)
        await store.audit(req.team_id, "remind_default", now=req.now, user_id=req.user_id, detail=f"channel {channel}")
        return blocks.notice(f":bell: Reminders without a channel of their own now go to <#{channel}>.")
    if len(args) < 2:
        return wrong(
            f"`{blocks.escape(args[0])}` is not a channel, and a Page needs `#channel`, `off` or `on` after it."
        )
    target, page_words = args[-1], " ".join(args[:-1])
    if not (looks_like_channel(target) or target.lower() in ("off", "mute", "on", "unmute")):
        return wrong(f"After the Page name comes `#channel`, `off` or `on`, not `{blocks.escape(target)}`.")
    found = find(await store.list_links(req.team_id), page_words)
    if found.item is None and found.candidates:
        choices = [(lk.page_name, f"remind {lk.page_id} {target}") for lk in found.candidates]
        return did_you_mean(f"No linked Page is called exactly “{blocks.escape(page_words)}”.", choices)
    if found.item is None:
        return blocks.notice(
            f"No Page called “{blocks.escape(page_words)}” is linked in this workspace. `/fblink status` lists them."
        )
    link = found.item
    if link.linked_by != req.user_id and not await req.is_admin():
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
    channel, problem = await resolve_channel(req, target)
    if channel is None:
        return wrong(problem or "")
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
