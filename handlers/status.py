"""`/fblink status` and `/fblink history`: read-only views of the workspace's links."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks, render
from bot.services import Services
from bot.store import Link, StoredPage
from handlers.common import Body, Req, on_action
from handlers.lookups import did_you_mean, find
from handlers.permissions import gaps_of


def relink_button(services: Services, link: Link, now: int, lost: tuple[str, ...], may: bool) -> dict[str, Any] | None:
    """Re-link, only to someone whose login lists the Page; stronger on rows that need it."""
    if not may:
        return None
    urgent = render.needs_relink(link, now, lost)
    return blocks.button("Re-link", "status_relink", link.page_id, style="danger" if urgent else None)


async def managed_ids(services: Services, team_id: str, user_id: str) -> set[str]:
    """Page ids this user's last Facebook login listed as linkable (the server checks again on click)."""
    return await services.store.linkable_page_ids(team_id, user_id)


async def status_message(services: Services, team_id: str, offset: int = 0, user_id: str = "") -> dict[str, Any]:
    offset = max(0, offset)
    page = await services.store.status_page(team_id, user_id, limit=blocks.PAGE_SIZE, offset=offset)
    if not page.total:
        return blocks.notice("No Pages are linked in this workspace yet. Start with `/fblink pages`.")
    now = services.now()
    if not page.links:  # a stale "next" button past the end: show the last link, as before
        offset = page.total - 1
        page = await services.store.status_page(team_id, user_id, limit=blocks.PAGE_SIZE, offset=offset)
    total = page.total
    nxt = offset + blocks.PAGE_SIZE if offset + blocks.PAGE_SIZE < total else None
    out = [blocks.section(f"*Links in this workspace* ({total}), soonest expiry first")]
    gaps = gaps_of(page.linker_scopes)
    for link in page.links:
        lost = gaps.get(link.linked_by or "", ())
        out.append(
            blocks.section(
                render.link_row(link, now, lost),
                accessory=relink_button(services, link, now, lost, link.page_id in page.viewer_linkable),
            )
        )
    nav = blocks.nav_buttons("status_next", offset, nxt)
    if nav:
        out.append(blocks.actions(*nav))
    return blocks.message(f"{total} links", out)


async def cmd_status(req: Req) -> dict[str, Any]:
    return await status_message(req.services, req.team_id, user_id=req.user_id)


VERBS = {
    "link": "linked it to Vonage API key {key}",
    "link_app": "linked it to application {app}",
    "replace": "replaced its application with {app}",
    "reattach_app": "re-attached application {app}",
    "unlink": "removed it from Vonage API key {key}",
    "unlink_app": "unlinked application {app}",
    "relink": "re-linked it (a fresh Page token for Vonage; a new period started)",
    "remind_off": "muted its reminders",
    "remind_on": "turned its reminders back on",
    "remind_channel": "sent its reminders to {channel}",
    "sync_import": "imported it from the Vonage dashboard (key {key})",
    "sync_gone": "found it deleted at Vonage",
    "sync_app": "recorded an application change made in the Vonage dashboard: now {app}",
}
DETAIL_RE = re.compile(r"(key|app|channel) (\S+)")


def history_line(row: dict[str, Any], app_names: dict[str, str]) -> str:
    """One audit row as a sentence: when, who, what, and how it ended (nothing empty)."""
    found: dict[str, str] = {}
    for word, value in DETAIL_RE.findall(str(row.get("detail") or "")):
        found[word] = value  # "app A -> B": the last one is the new one
    app = found.get("app", "")
    parts = {
        "key": f"`{blocks.escape(found.get('key', '?'))}`",
        "app": f"*{blocks.escape(app_names.get(app, app[:8] or '?'))}*",
        "channel": f"<#{found['channel']}>" if "channel" in found else "its linking channel",
    }
    action = str(row.get("action") or "")
    verb = VERBS.get(action, blocks.escape(action.replace("_", " "))).format(**parts)
    who = f"<@{row['user_id']}>" if row.get("user_id") else "fblink"
    result = str(row.get("result") or "ok")
    if result == "conflict":
        verb = (
            "tried to link application " + parts["app"] + ": another one was linked, so they were asked to replace it"
        )
    elif result != "ok":
        verb = "tried: " + verb + f" — it failed ({blocks.escape(result.removeprefix('error: '))}), nothing changed"
    return f"{blocks.slack_date(int(row['at']))} · {who} {verb}"


async def cmd_history(req: Req) -> dict[str, Any]:
    wanted = " ".join(req.args)
    if not wanted:
        return blocks.notice("Usage: `/fblink history <page>` (a Page name or id). `/fblink status` lists the Pages.")
    links = await req.store.list_links(req.team_id)
    found = find(links, wanted)
    target: Link | StoredPage | None = found.item
    if target is None and not found.candidates:  # removed since: the Pages the person manages still know it
        target = find(await req.store.get_pages(req.team_id, req.user_id), wanted).item
    if target is None and found.candidates:
        choices = [(lk.page_name, f"history {lk.page_id}") for lk in found.candidates]
        return did_you_mean(f"More than one linked Page matches “{blocks.escape(wanted)}”.", choices)
    page_id = target.page_id if target else wanted
    name = (target.page_name if isinstance(target, Link) else target.name) if target else wanted
    rows = await req.store.history(req.team_id, page_id)
    if not rows:
        return blocks.notice(
            f"No changes recorded for “{blocks.escape(name)}”. `/fblink status` lists the linked Pages."
        )
    app_names = {lk.application_id: lk.application_name for lk in links if lk.application_id and lk.application_name}
    lines = [history_line(r, app_names) for r in rows]
    return blocks.notice(f"*History of {blocks.escape(name)}* (newest first)\n" + "\n".join(lines))


async def status_nav(req: Req, body: Body) -> None:
    try:
        offset = max(0, int(body["actions"][0].get("value") or 0))
    except (ValueError, KeyError, IndexError, TypeError):
        offset = 0
    await req.respond(**await status_message(req.services, req.team_id, offset, req.user_id), replace_original=True)


def register(app: AsyncApp) -> None:
    on_action(app, "status_next", status_nav)
    on_action(app, "status_next_prev", status_nav)
