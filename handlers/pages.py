"""`/fblink pages`: the Facebook Pages the user manages, with their link status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.graph import GraphError
from bot.store import Link, StoredPage
from handlers.common import Req, ack_only, services_of, user_error_text

if TYPE_CHECKING:
    from bot.app import Services


def link_status(link: Link | None, now: int) -> str:
    if link is None or link.status in ("unlinked",):
        return "not linked"
    if link.status == "gone":
        return ":x: deleted at Vonage"
    parts = [f"linked to `{blocks.escape(link.api_key)}`"]
    if link.application_id:
        parts.append(f"app *{blocks.escape(link.application_name or link.application_id)}*")
    if link.expires_at:
        left = blocks.days_left(link.expires_at, now)
        when = blocks.slack_date(link.expires_at)
        parts.append(f"expires {when} ({left} days)" if link.expires_at > now else f":rotating_light: expired {when}")
    elif link.needs_relink:
        parts.append(":warning: expiry unknown, re-link it")
    return " · ".join(parts)


def page_rows(services: "Services", team_id: str, pages: list[StoredPage], offset: int) -> dict[str, Any]:
    now = services.now()
    chunk, nxt = blocks.paginate(pages, offset)
    out: list[dict[str, Any]] = [
        blocks.section(f"*Your Facebook Pages* ({len(pages)}), showing {offset + 1}–{offset + len(chunk)}")
    ]
    for p in chunk:
        link = services.store.get_link(team_id, p.page_id)
        linked = link is not None and link.status == "active"
        text = (
            f"*{blocks.escape(p.name)}*  `{blocks.escape(p.page_id)}`\n"
            f"{blocks.escape(p.category or 'no category')} · {link_status(link, now)}"
        )
        if p.business_name:
            text += f"\nvia business portfolio *{blocks.escape(p.business_name)}*"
        if p.no_token_reason:
            text += f"\n:no_entry: cannot be linked: {blocks.escape(p.no_token_reason)}"
        out.append(blocks.section(text))
        buttons: list[dict[str, Any]] = []
        if p.token:  # no Page token: nothing to hand to Vonage, so no Link buttons
            buttons.append(blocks.button("Link to Vonage" if not linked else "Re-link", "page_link" if not linked else "page_relink", p.page_id, style="primary"))
            buttons.append(blocks.button("Link application", "page_link_app", p.page_id))
        if linked:
            buttons.append(blocks.button("Unlink", "page_unlink", p.page_id, style="danger", confirm=blocks.confirm_dialog(
                "Unlink this Page?",
                f"{blocks.escape(p.name)} will be removed from Vonage API key {blocks.escape(link.api_key)}; "
                "Messenger traffic through Vonage stops.", ok="Unlink")))
        if buttons:
            out.append(blocks.actions(*buttons, block_id=f"page_{p.page_id}"[:255]))
    nav = blocks.nav_buttons("pages_next", offset, nxt)
    if nav:
        out.append(blocks.actions(*nav))
    return blocks.message(f"Your Facebook Pages ({len(pages)})", out)


def no_login_message(services: "Services", req: Req) -> dict[str, Any]:
    from handlers.login import login_prompt

    return login_prompt(services, req.team_id, req.user_id, req.channel_id,
                        text="You are not logged in to Facebook yet. Run `/fblink login`, or use this button.")


async def fetch_pages(req: Req) -> list[StoredPage] | None:
    """Refresh the user's Pages from Graph; None (after telling the user) when that is impossible."""
    services = req.services
    login = req.store.get_login(req.team_id, req.user_id)
    if login is None:
        await req.respond(**no_login_message(services, req), replace_original=False)
        return None
    try:
        pages = await services.graph.pages(login.token, login.scopes)
    except GraphError as exc:
        if exc.token_dead:
            from handlers.login import login_prompt

            await req.respond(**login_prompt(
                services, req.team_id, req.user_id, req.channel_id,
                text=":warning: Your Facebook login has expired or was revoked. Log in again to continue.",
            ), replace_original=False)
            return None
        raise
    req.store.save_pages(req.team_id, req.user_id, pages, now=req.now)
    return req.store.get_pages(req.team_id, req.user_id)


async def cmd_pages(req: Req) -> None:
    pages = await fetch_pages(req)
    if pages is None:
        return
    if not pages:
        await req.respond(**blocks.notice(
            "Facebook lists no Pages for your login. Check that you have a role on the Page, "
            "and that you selected it when you logged in (`/fblink login`)."
        ), replace_original=False)
        return
    await req.respond(**page_rows(req.services, req.team_id, pages, 0), replace_original=False)


async def pages_nav(body, context, respond):  # type: ignore[no-untyped-def]
    services = services_of(context)
    team_id = body["team"]["id"]
    user_id = body["user"]["id"]
    try:
        offset = int(body["actions"][0].get("value") or 0)
    except (ValueError, KeyError, IndexError):
        offset = 0
    pages = services.store.get_pages(team_id, user_id)  # the clicker's own Pages, never the value's
    if not pages:
        await respond(**blocks.notice("Run `/fblink pages` again to refresh your list."), replace_original=True)
        return
    offset = min(max(0, offset), max(0, len(pages) - 1))
    try:
        await respond(**page_rows(services, team_id, pages, offset), replace_original=True)
    except Exception as exc:
        await respond(**blocks.notice(user_error_text(exc)), replace_original=False)


def register(app: AsyncApp) -> None:
    app.action("pages_next")(ack=ack_only, lazy=[pages_nav])
    app.action("pages_next_prev")(ack=ack_only, lazy=[pages_nav])
