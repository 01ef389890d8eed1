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
from bot.reminder_routes import channel_for
from bot.reminders import after_relink
from bot.services import Services
from bot.store import Link, OAuthState, StoredPage
from bot.vonage import Application, Credentials
from handlers import names, permissions
from handlers.common import Req, user_error_text, where_you_acted
from handlers.lookups import by_id, creds_or_refuse, did_you_mean
from handlers.session import fetch_pages, login_prompt

LEASE_SECONDS = 120  # the least a Page lease lasts
VONAGE_CALLS = 8  # the most Vonage calls one Page operation makes (a replace whose restore and undo fail)


def lease_seconds(services: Services) -> int:
    """Long enough for the slowest Page operation: each call may take FBLINK_RETRY_TOTAL plus one
    last FBLINK_HTTP_TIMEOUT. Should it still run out, linking will not undo another process's work."""
    s = services.settings
    return max(LEASE_SECONDS, int(VONAGE_CALLS * (s.fblink_retry_total + s.fblink_http_timeout)))


async def success_text(services: Services, link: Link, verb: str = "Linked") -> str:
    app = (
        f" and application *{blocks.escape(link.application_name or link.application_id or '')}*"
        if link.application_id
        else " (no application linked)"
    )
    when = ""
    if link.expires_at:
        left = link.days_left(services.now())
        when = f" The link expires {blocks.slack_date(link.expires_at)} ({left} days)."
    return (
        f":white_check_mark: {verb} *{blocks.escape(link.page_name)}* to Vonage API key "
        f"`{blocks.escape(link.api_key)}`{app}.{when} {await reminders_go(services, link)}"
    )


async def reminders_go(services: Services, link: Link) -> str:
    """Where this link's reminders will be posted, and how to change it."""
    if link.muted:
        return "Its reminders are off; turn them on with `/fblink remind <page> on`."
    where = await channel_for(services, link)
    place = "your DM with fblink" if where is None or where[:1] in ("U", "W", "D") else f"<#{where}>"
    return f"Reminders go to {place}; change with `/fblink remind`."


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
        f"*{esc(conflict.wanted.name or conflict.wanted.id)}*?"
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
                        f"Messenger traffic for {esc(conflict.page.name)} will go to "
                        f"{esc(conflict.wanted.name or conflict.wanted.id)} instead "
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


async def lacking_permissions(req: Req, page: StoredPage, *, verb: str = "link") -> dict[str, Any] | None:
    """The refusal when the user's login lacks a permission Messenger traffic needs; None when it has them."""
    login = await req.store.get_login(req.team_id, req.user_id)
    lacking = permissions.blocking(login.scopes) if login is not None else ()
    if not lacking:
        return None
    return await permissions.refusal(
        req.services, req.team_id, req.user_id, req.channel_id, lacking, page_name=page.name, verb=verb
    )


async def application_or_choices(
    req: Req, creds: Credentials, page: StoredPage, wanted: str
) -> tuple[Application | None, dict[str, Any] | None]:
    """The application the person means, found the forgiving way; or the message offering candidates.

    One list of the key's applications serves both (Vonage is asked once)."""
    every = await req.services.vonage.list_applications(creds)
    exact = names.find(every, wanted, ident=lambda a: a.id, name=lambda a: a.name)
    if exact.item is not None and exact.exact and not exact.item.messages_capable:
        raise LinkRefused(
            f"Application *{blocks.escape(exact.item.name)}* has no Messages capability, so it cannot receive "
            "Messenger traffic. Enable Messages on it in the Vonage dashboard, or pick another application."
        )
    apps = [a for a in every if a.messages_capable]
    found = names.find(apps, wanted, ident=lambda a: a.id, name=lambda a: a.name)
    if found.item is not None:
        return found.item, None
    key = blocks.escape(creds.api_key)
    offered = list(found.candidates) + [a for a in apps if a not in found.candidates and not found.several]
    choices = [(a.name, f"link {page.page_id} {creds.api_key} app {a.id}") for a in offered[: names.MAX_SUGGESTIONS]]
    intro = (
        f"More than one application of API key `{key}` matches “{blocks.escape(wanted)}”."
        if found.several
        else f"API key `{key}` has no application called “{blocks.escape(wanted)}” among its Messages applications."
    )
    if not choices:
        return None, blocks.notice(
            f":x: {intro} It has no application with the Messages capability: create one in the Vonage dashboard."
        )
    if len(offered) > len(choices):
        intro += f" It has {len(offered)}; here are {len(choices)}, or give the application's id."
    return None, did_you_mean(intro, choices)


async def perform_link(req: Req, page: StoredPage, api_key: str | None, app_name: str | None) -> None:
    services = req.services
    refused = await lacking_permissions(req, page)
    if refused is not None:
        await req.say(refused)
        return

    async def work() -> dict[str, Any]:
        creds = await creds_or_refuse(services, req.team_id, api_key, req.user_id)
        before = await req.store.get_link(req.team_id, page.page_id)
        if app_name:
            app, choices = await application_or_choices(req, creds, page, app_name)
            if app is None:
                return choices or blocks.notice(":x: No such application.")
            link = await linking.link_application(services, req.team_id, req.user_id, page, creds, app, req.channel_id)
        else:
            link = await linking.link_account(services, req.team_id, req.user_id, page, creds, req.channel_id)
        if before is not None and before.status == "active" and link.period > before.period:
            await after_relink(services, before, link, req.user_id)  # a fresh token ended the old period
        return blocks.notice(await success_text(services, link) + ("" if app_name else lost_app_text(before, link)))

    await guarded(req, page.page_id, work)


async def perform_unlink(req: Req, link: Link, application: str | None) -> None:
    async def work() -> dict[str, Any]:
        current = await req.store.get_link(req.team_id, link.page_id)  # read again under the lease
        if current is None:  # another change unlinked it meanwhile
            return blocks.notice(f"*{blocks.escape(link.page_name)}* is no longer linked; nothing to do.")
        done = await linking.unlink(req.services, req.team_id, req.user_id, current, application=application)
        return blocks.notice(f":scissors: {done}")

    await guarded(req, link.page_id, work)


def relink_window(services: Services) -> int:
    """A login whose Facebook data access ends within this window (its edge included: a re-link
    would be due for its first reminder at once) is too old to re-link with."""
    return max(services.settings.reminder_days) * DAY


async def start_relink(req: Req, link: Link) -> None:
    """Relink now, or first send a login link when the user's Facebook access is (nearly) over."""
    services = req.services
    login = await req.store.get_login(req.team_id, req.user_id)
    stale = login is None or (
        login.data_access_expires_at is not None and login.data_access_expires_at - req.now <= relink_window(services)
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
    refused = await lacking_permissions(req, page, verb="re-link")
    if refused is not None:
        await req.say(refused)
        return

    async def work() -> dict[str, Any]:
        new = await linking.relink(services, req.team_id, req.user_id, link, page)
        await after_relink(services, link, new, req.user_id)
        return blocks.notice(await success_text(services, new, verb="Re-linked") + lost_app_text(link, new))

    await guarded(req, link.page_id, work)


async def relink_after_login(services: Services, state: OAuthState) -> None:
    """The login asked for by a relink came back: finish the relink, answering by DM."""
    req = Req(
        services,
        state.team_id,
        state.user_id,
        state.channel_id,
        where_you_acted(services, state.team_id, state.user_id, state.channel_id),
    )
    link = await services.store.get_link(state.team_id, str(state.payload.get("page_id")))
    try:
        if link is None:
            await req.say(blocks.notice("That Page is no longer linked; nothing to re-link."))
            return
        await start_relink(req, link)
    except Exception as exc:
        await req.say(blocks.notice(user_error_text(exc, what="The re-link")))
