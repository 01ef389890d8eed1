"""Link changes shared by commands, buttons, the modal and the login callback: each runs under
the Page's lease and ends with one answer that matches what Vonage and the database hold."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bot import blocks, linking, page_fence
from bot.clock import DAY
from bot.linking import AppConflict, LinkRefused
from bot.reminders import after_relink
from bot.services import Services
from bot.store import Link, OAuthState, StoredPage
from handlers.common import Req, dm_responder, user_error_text
from handlers.lookups import by_id, creds_or_refuse
from handlers.session import fetch_pages, login_prompt

LEASE_SECONDS = 120  # the least a Page lease lasts
VONAGE_CALLS = 8  # the most Vonage calls one Page operation makes (a replace whose restore and undo fail)


def lease_seconds(services: Services) -> int:
    """Long enough for the slowest Page operation: each call may take FBLINK_RETRY_TOTAL plus one
    last FBLINK_HTTP_TIMEOUT. Should it still run out, linking will not undo another process's work."""
    s = services.settings
    return max(LEASE_SECONDS, int(VONAGE_CALLS * (s.fblink_retry_total + s.fblink_http_timeout)))


def success_text(services: Services, link: Link, verb: str = "Linked") -> str:
    app = (
        f" and application *{blocks.escape(link.application_name or link.application_id or '')}*"
        if link.application_id
        else " (no application linked)"
    )
    when = ""
    if link.expires_at:
        left = link.days_left(services.now())
        when = (
            f" The link expires {blocks.slack_date(link.expires_at)} ({left} days); fblink will remind you before then."
        )
    return (
        f":white_check_mark: {verb} *{blocks.escape(link.page_name)}* to Vonage API key "
        f"`{blocks.escape(link.api_key)}`{app}.{when}"
    )


def lost_app_text(before: Link | None, after: Link) -> str:
    """Said when a link that had an application ends without one (e.g. Vonage had deleted the Page's
    account, fblink re-created it and could not re-attach the application): the user must know."""
    if before is None or before.status != "active" or not before.application_id or after.application_id:
        return ""
    return (
        f"\n:warning: Application *{blocks.escape(before.application_name or before.application_id)}* is no "
        "longer linked to this Page at Vonage (its account there had been deleted or changed), so Messenger "
        f"traffic will not reach it. Link it again with "
        f"`/fblink link {blocks.escape(after.page_id)} app {blocks.escape(before.application_id)}`."
    )


def replace_prompt(conflict: AppConflict) -> dict[str, Any]:
    value = json.dumps(
        {"p": conflict.page.page_id, "k": conflict.creds.api_key, "a": conflict.wanted.id, "c": conflict.current_id}
    )  # the application the user is shown and agrees to replace
    esc = blocks.escape
    text = (
        f":warning: *{esc(conflict.page.name)}* is already linked to application *{esc(conflict.current_name)}* "
        f"(`{esc(conflict.current_id)}`). Vonage allows one application per Page. Replace it with "
        f"*{esc(conflict.wanted.name)}*?"
    )
    return blocks.message(
        text,
        [
            blocks.section(text),
            blocks.actions(
                blocks.button(
                    "Replace",
                    "link_replace",
                    value,
                    style="danger",
                    confirm=blocks.confirm_dialog(
                        "Replace application?",
                        f"Messenger traffic for {esc(conflict.page.name)} will go to {esc(conflict.wanted.name)} instead "
                        f"of {esc(conflict.current_name)}.",
                        ok="Replace",
                    ),
                ),
                blocks.button("Keep current", "link_keep", conflict.page.page_id),
            ),
        ],
    )


async def guarded(req: Req, page_id: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Run one Page operation under its database lease (honoured by every process) and tell the outcome."""
    services = req.services
    owner = f"{services.owner}:{uuid.uuid4().hex[:8]}"  # this change, in this process
    if not await req.store.acquire_lease(req.team_id, page_id, owner, now=req.now, ttl=lease_seconds(services)):
        await req.say(
            blocks.notice(
                ":hourglass: Another change to this Page is already in progress. Wait for its result, then try again."
            )
        )
        return
    try:
        with page_fence.holding(owner):
            msg = await work()
    except AppConflict as conflict:
        msg = replace_prompt(conflict)
    except LinkRefused as exc:
        msg = blocks.notice(f":no_entry: {exc}")
    except Exception as exc:
        msg = blocks.notice(user_error_text(exc, what="The change"))
    finally:
        await req.store.release_lease(req.team_id, page_id, owner)
    await req.say(msg)


async def perform_link(req: Req, page: StoredPage, api_key: str | None, app_name: str | None) -> None:
    services = req.services

    async def work() -> dict[str, Any]:
        creds = await creds_or_refuse(services, req.team_id, api_key, req.user_id)
        before = await req.store.get_link(req.team_id, page.page_id)
        if app_name:
            app = await linking.resolve_application(services, creds, app_name)
            link = await linking.link_application(services, req.team_id, req.user_id, page, creds, app, req.channel_id)
        else:
            link = await linking.link_account(services, req.team_id, req.user_id, page, creds, req.channel_id)
        if before is not None and before.status == "active" and link.period > before.period:
            await after_relink(services, before, link, req.user_id)  # a fresh token ended the old period
        return blocks.notice(success_text(services, link) + ("" if app_name else lost_app_text(before, link)))

    await guarded(req, page.page_id, work)


async def perform_unlink(req: Req, link: Link, application: str | None) -> None:
    async def work() -> dict[str, Any]:
        done = await linking.unlink(req.services, req.team_id, req.user_id, link, application=application)
        return blocks.notice(f":scissors: {done}")

    await guarded(req, link.page_id, work)


def relink_window(services: Services) -> int:
    """A login whose Facebook data access ends within this window is too old to re-link with."""
    return max(services.settings.reminder_days) * DAY


async def start_relink(req: Req, link: Link) -> None:
    """Relink now, or first send a login link when the user's Facebook access is (nearly) over."""
    services = req.services
    login = await req.store.get_login(req.team_id, req.user_id)
    stale = login is None or (
        login.data_access_expires_at is not None and login.data_access_expires_at - req.now < relink_window(services)
    )
    if stale:
        text = (
            f"To re-link *{blocks.escape(link.page_name)}*, fblink needs a fresh Facebook login"
            + (" (yours is missing)." if login is None else " (your Facebook data access ends soon).")
            + " Log in and the re-link completes by itself."
        )
        await req.say(await login_prompt(req, text=text, purpose="relink", payload={"page_id": link.page_id}))
        return
    pages = await fetch_pages(req)
    if pages is None:
        return
    page = by_id(pages, link.page_id)
    if page is None:
        await req.say(
            blocks.notice(
                f"Your Facebook login does not list *{blocks.escape(link.page_name)}*: only "
                "someone who manages the Page can re-link it."
            )
        )
        return

    async def work() -> dict[str, Any]:
        new = await linking.relink(services, req.team_id, req.user_id, link, page)
        await after_relink(services, link, new, req.user_id)
        return blocks.notice(success_text(services, new, verb="Re-linked") + lost_app_text(link, new))

    await guarded(req, link.page_id, work)


async def relink_after_login(services: Services, state: OAuthState) -> None:
    """The login asked for by a relink came back: finish the relink, answering by DM."""
    req = Req(services, state.team_id, state.user_id, state.channel_id, dm_responder(services, state.user_id))
    link = await services.store.get_link(state.team_id, str(state.payload.get("page_id")))
    try:
        if link is None:
            await req.say(blocks.notice("That Page is no longer linked; nothing to re-link."))
            return
        await start_relink(req, link)
    except Exception as exc:
        await req.say(blocks.notice(user_error_text(exc, what="The re-link")))
