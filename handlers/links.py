"""link / unlink / relink / sync: the commands that change links, and their buttons."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks, linking
from bot.linking import LinkRefused
from bot.store import Link, StoredPage
from bot.sync import sync as sync_with_vonage
from handlers.changes import guarded, perform_link, perform_unlink, start_relink, success_text
from handlers.common import Body, Req, on_action
from handlers.link_modal import open_link_modal
from handlers.lookups import DidYouMean, by_id, creds_or_refuse, not_linked, not_managed, read_target
from handlers.session import fetch_pages, managed_page

log = logging.getLogger(__name__)


# -- /fblink link -----------------------------------------------------------------------


async def cmd_link(req: Req) -> None:
    pages = await fetch_pages(req)
    if pages is None:
        return
    try:
        reading = read_target(pages, req.args, with_key=True, keys=await req.services.api_keys(req.team_id))
    except DidYouMean as exc:
        await req.say(exc.message)
        return
    except LinkRefused as exc:
        await req.say(blocks.notice(f":thinking_face: {exc}"))
        return
    if reading is None:
        await req.say(blocks.notice(not_managed(" ".join(req.args))))
        return
    assert isinstance(reading.target, StoredPage)
    await perform_link(req, reading.target, reading.api_key, reading.application)


# -- /fblink unlink ---------------------------------------------------------------------


async def cmd_unlink(req: Req) -> None:
    if not req.args:
        await req.say(blocks.notice("Usage: `/fblink unlink <page> [app <application>]`."))
        return
    try:
        reading = read_target(await req.store.list_links(req.team_id), req.args, with_key=False, verb="unlink")
    except DidYouMean as exc:
        await req.say(exc.message)
        return
    except LinkRefused as exc:
        await req.say(blocks.notice(f":thinking_face: {exc}"))
        return
    if reading is None:
        await req.say(blocks.notice(not_linked(" ".join(req.args))))
        return
    assert isinstance(reading.target, Link)
    await perform_unlink(req, reading.target, reading.application)


# -- /fblink relink ---------------------------------------------------------------------


async def cmd_relink(req: Req) -> None:
    wanted = " ".join(req.args)
    if not wanted:
        await req.say(blocks.notice("Usage: `/fblink relink <page>`."))
        return
    try:
        reading = read_target(await req.store.list_links(req.team_id), [wanted], with_key=False, verb="relink")
    except DidYouMean as exc:
        await req.say(exc.message)
        return
    if reading is None:
        await req.say(blocks.notice(not_linked(wanted)))
        return
    assert isinstance(reading.target, Link)
    await start_relink(req, reading.target)


# -- /fblink sync -----------------------------------------------------------------------


async def cmd_sync(req: Req) -> None:
    report = await sync_with_vonage(req.services, req.team_id)

    def names(items: list[str]) -> str:
        return ", ".join(f"*{blocks.escape(n)}*" for n in items)

    parts = [":arrows_clockwise: Synced with Vonage."]
    if report.imported:
        parts.append("Imported (linked in the dashboard; expiry unknown, please re-link): " + names(report.imported))
    if report.gone:
        parts.append("Deleted at Vonage, marked gone: " + names(report.gone))
    if report.apps_changed:
        parts.append("Application changed in the Vonage dashboard, now recorded: " + names(report.apps_changed))
    if report.busy:
        parts.append("Skipped while another change to them runs (sync again shortly): " + names(report.busy))
    if len(parts) == 1:
        parts.append("Everything already matches.")
    await req.say(blocks.notice("\n".join(parts)))


# -- buttons ---------------------------------------------------------------------------------

CLICK_WINDOW = 30  # seconds in which a second click on the same button is the same request


async def first_click(req: Req, body: Body) -> bool:
    """A double click (or a re-delivered payload) performs the action once and answers once."""
    try:
        action = body["actions"][0]
        where = (body.get("container") or {}).get("message_ts") or (body.get("view") or {}).get("id") or ""
        key = f"act:{req.team_id}:{req.user_id}:{action.get('action_id')}:{action.get('value', '')}:{where}"
    except (KeyError, IndexError, AttributeError):
        return True
    return await req.store.first_time(key[:500], now=req.now, ttl=CLICK_WINDOW)


def action_value(body: Body) -> str:
    try:
        return str(body["actions"][0].get("value") or "")[:2000]
    except (KeyError, IndexError, AttributeError):
        return ""


async def page_link_button(req: Req, body: Body) -> None:
    page_id = action_value(body)
    if by_id(await req.store.get_pages(req.team_id, req.user_id), page_id) is None:
        await req.say(blocks.notice(not_managed(page_id)))
        return
    await open_link_modal(req, page_id=page_id)


async def _clicked_link(req: Req, body: Body) -> Link | None:
    """The link the button names (by id), looked up afresh; None when done already."""
    if not await first_click(req, body):
        return None
    link = await req.store.get_link(req.team_id, action_value(body))
    if link is None:
        await req.say(blocks.notice("That Page is not linked any more."))
    return link


async def page_unlink_button(req: Req, body: Body) -> None:
    link = await _clicked_link(req, body)
    if link:
        await perform_unlink(req, link, None)


async def relink_button(req: Req, body: Body) -> None:
    link = await _clicked_link(req, body)
    if link:
        await start_relink(req, link)


async def replace_button(req: Req, body: Body) -> None:
    """The user chose Replace: check everything again, never trusting the button's ids."""
    if not await first_click(req, body):
        return
    try:
        data = json.loads(action_value(body))
        page_id, api_key, app_id, shown = str(data["p"]), str(data["k"]), str(data["a"]), str(data["c"])
    except (ValueError, KeyError, TypeError):
        await req.say(blocks.notice("That button is out of date. Run the command again."))
        return
    page = await managed_page(req, page_id)
    if page is None:
        return
    services = req.services

    async def work() -> dict[str, Any]:
        creds = await creds_or_refuse(services, req.team_id, api_key, req.user_id)
        app = await linking.resolve_application(services, creds, app_id)
        link = await linking.link_application(
            services, req.team_id, req.user_id, page, creds, app, req.channel_id, replace=shown
        )
        return blocks.notice(await success_text(services, link, verb="Replaced the application: linked"))

    await guarded(req, page.page_id, work)


async def keep_button(req: Req, body: Body) -> None:
    await req.respond(**blocks.notice("Kept the current application; nothing changed."), replace_original=True)


def register(app: AsyncApp) -> None:
    on_action(app, "page_link", page_link_button)
    on_action(app, "page_link_app", page_link_button)
    on_action(app, "page_unlink", page_unlink_button)
    for action_id in ("page_relink", "status_relink", "reminder_relink"):
        on_action(app, action_id, relink_button)
    on_action(app, "link_replace", replace_button)
    on_action(app, "link_keep", keep_button)
