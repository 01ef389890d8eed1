"""`/fblink status` and `/fblink history`: read-only views of the workspace's links."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks, render
from bot.services import Services
from handlers.common import Body, Req, on_action
from handlers.lookups import by_text


async def status_message(services: Services, team_id: str, offset: int = 0) -> dict[str, Any]:
    total = await services.store.count_links(team_id)
    if not total:
        return blocks.notice("No Pages are linked in this workspace yet. Start with `/fblink pages`.")
    now = services.now()
    offset = min(max(0, offset), total - 1)
    chunk = await services.store.list_links(team_id, limit=blocks.PAGE_SIZE, offset=offset)
    nxt = offset + blocks.PAGE_SIZE if offset + blocks.PAGE_SIZE < total else None
    out = [blocks.section(f"*Links in this workspace* ({total}), soonest expiry first")]
    for link in chunk:
        out.append(
            blocks.section(
                render.link_row(link, now), accessory=blocks.button("Re-link", "status_relink", link.page_id)
            )
        )
    nav = blocks.nav_buttons("status_next", offset, nxt)
    if nav:
        out.append(blocks.actions(*nav))
    return blocks.message(f"{total} links", out)


async def cmd_status(req: Req) -> dict[str, Any]:
    return await status_message(req.services, req.team_id)


async def cmd_history(req: Req) -> dict[str, Any]:
    wanted = " ".join(req.args)
    if not wanted:
        return blocks.notice("Usage: `/fblink history <page>`.")
    link = by_text(await req.store.list_links(req.team_id), wanted)
    page_id = link.page_id if link else wanted
    rows = await req.store.history(req.team_id, page_id)
    if not rows:
        return blocks.notice(f"No history for “{blocks.escape(wanted)}”.")
    lines = [
        f"{blocks.slack_date(r['at'])} · {blocks.escape(r['action'])} · "
        + (f"<@{r['user_id']}>" if r["user_id"] else "fblink")
        + f" · {blocks.escape(r['detail'] or '')} · {blocks.escape(r['result'])}"
        for r in rows
    ]
    return blocks.notice(f"*History of {blocks.escape(link.page_name if link else wanted)}*\n" + "\n".join(lines))


async def status_nav(req: Req, body: Body) -> None:
    try:
        offset = max(0, int(body["actions"][0].get("value") or 0))
    except (ValueError, KeyError, IndexError, TypeError):
        offset = 0
    await req.respond(**await status_message(req.services, req.team_id, offset), replace_original=True)


def register(app: AsyncApp) -> None:
    on_action(app, "status_next", status_nav)
    on_action(app, "status_next_prev", status_nav)
