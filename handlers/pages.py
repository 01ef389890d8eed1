"""`/fblink pages`: the Facebook Pages the user manages, with their link status."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks, render
from bot.services import Services
from bot.store import LinkState, StoredPage
from handlers import permissions
from handlers.common import Body, Req, on_action, user_error_text
from handlers.session import fetch_pages


async def page_rows(
    services: Services,
    team_id: str,
    pages: list[StoredPage],
    offset: int,
    user_id: str = "",
    channel_id: str | None = None,
) -> dict[str, Any]:
    now = services.now()
    chunk, nxt = blocks.paginate(pages, offset)
    out: list[dict[str, Any]] = [
        blocks.section(f"*Your Facebook Pages* ({len(pages)}), showing {offset + 1}–{offset + len(chunk)}")
    ]
    login = await services.store.get_login(team_id, user_id) if user_id else None
    out += await permissions.login_warning(services, team_id, user_id, channel_id, login)
    stopped = bool(login and permissions.blocking(login.scopes))  # links would be refused: offer no Link button
    esc = blocks.escape
    links = {p.page_id: await services.store.get_link(team_id, p.page_id) for p in chunk}
    admin = any(lk is not None and lk.linked_by != user_id for lk in links.values()) and await services.is_admin(
        team_id, user_id
    )
    gaps = await permissions.linker_gaps(services, team_id, [lk for lk in links.values() if lk is not None])
    for p in chunk:
        link = links[p.page_id]
        linked = link is not None and link.state(now) is not LinkState.GONE
        lost = gaps.get(link.linked_by or "", ()) if link is not None else ()
        via = f"\nvia business portfolio *{esc(p.business_name)}*" if p.business_name else ""
        out.append(
            blocks.section(
                f"*{esc(p.name)}*  `{esc(p.page_id)}`\n{esc(p.category or 'no category')} · "
                f"{render.page_link_status(link, now, lost)}{via}"
            )
        )
        if not p.can_link:
            why = p.no_token_reason or "you need the MESSAGING or MANAGE task on this Page to link it."
            out.append(blocks.context(f":no_entry: cannot be linked: {esc(why)}"))
            continue
        if stopped:
            continue
        urgent = link is not None and linked and render.needs_relink(link, now, lost)
        buttons = (
            [
                blocks.button("Re-link", "page_relink", p.page_id, style="danger" if urgent else "primary"),
                blocks.button("Change application", "page_link_app", p.page_id),
            ]
            if linked
            else [blocks.button("Link", "page_link", p.page_id, style="primary")]
        )
        may_unlink = link is not None and (link.linked_by == user_id or admin)
        if linked and link is not None and may_unlink:
            buttons.append(
                blocks.button(
                    "Unlink",
                    "page_unlink",
                    p.page_id,
                    style="danger",
                    confirm=blocks.confirm_dialog(
                        "Unlink this Page?",
                        f"{esc(p.name)} will be removed from Vonage API key {esc(link.api_key)}; "
                        "Messenger traffic through Vonage stops.",
                        ok="Unlink",
                    ),
                )
            )
        out.append(blocks.actions(*buttons, block_id=f"page_{p.page_id}"[:255]))
    nav = blocks.nav_buttons("pages_next", offset, nxt)
    if nav:
        out.append(blocks.actions(*nav))
    return blocks.message(f"Your Facebook Pages ({len(pages)})", out)


async def cmd_pages(req: Req) -> None:
    pages = await fetch_pages(req)
    if pages is None:
        return
    if not pages:
        await req.say(
            blocks.notice(
                "Facebook lists no Pages for your login. Check that you have a role on the Page, "
                "and that you selected it when you logged in (`/fblink login`)."
            )
        )
        return
    await req.say(await page_rows(req.services, req.team_id, pages, 0, req.user_id, req.channel_id))


async def pages_nav(req: Req, body: Body) -> None:
    try:
        offset = int(body["actions"][0].get("value") or 0)
    except (ValueError, KeyError, IndexError, TypeError):
        offset = 0
    pages = await req.store.get_pages(req.team_id, req.user_id)  # the clicker's own Pages, never the value's
    if not pages:
        await req.respond(**blocks.notice("Run `/fblink pages` again to refresh your list."), replace_original=True)
        return
    offset = min(max(0, offset), max(0, len(pages) - 1))
    try:
        await req.respond(
            **await page_rows(req.services, req.team_id, pages, offset, req.user_id, req.channel_id),
            replace_original=True,
        )
    except Exception as exc:
        await req.say(blocks.notice(user_error_text(exc)))


def register(app: AsyncApp) -> None:
    on_action(app, "pages_next", pages_nav)
    on_action(app, "pages_next_prev", pages_nav)
