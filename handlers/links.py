"""link / unlink / relink / status / sync / history: commands, buttons and the link modal."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot import blocks, linking
from bot.linking import AppConflict, LinkRefused
from bot.store import Link, OAuthState, StoredPage
from bot.vonage import Credentials
from handlers.common import Req, ack_errors, ack_only, dm_responder, first_submission, services_of, user_error_text
from handlers.pages import fetch_pages

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
DAY = 86400


# -- finding things -------------------------------------------------------------------

def match_page(pages: list[StoredPage], wanted: str) -> StoredPage | None:
    wanted = wanted.strip()
    return next((p for p in pages if p.page_id == wanted), None) or next(
        (p for p in pages if p.name.lower() == wanted.lower()), None
    )


def match_link(links: list[Link], wanted: str) -> Link | None:
    wanted = wanted.strip()
    return next((lk for lk in links if lk.page_id == wanted), None) or next(
        (lk for lk in links if lk.page_name.lower() == wanted.lower()), None
    )


def split_app(words: tuple[str, ...]) -> tuple[list[str], list[str] | None]:
    """`<page words> app <application words>` -> (page words, application words or None)."""
    for i in range(1, len(words)):
        if words[i].lower() == "app":
            return list(words[:i]), list(words[i + 1 :])
    return list(words), None


def not_managed(wanted: str) -> str:
    return (
        f"You don't manage a Facebook Page called “{blocks.escape(wanted)}” (by id or exact name), or your "
        "login doesn't list it. Run `/fblink pages` to see yours."
    )


def success_text(services: "Services", link: Link, verb: str = "Linked") -> str:
    app = f" and application *{blocks.escape(link.application_name or link.application_id or '')}*" if link.application_id else ""
    when = ""
    if link.expires_at:
        left = blocks.days_left(link.expires_at, services.now())
        when = f" The link expires {blocks.slack_date(link.expires_at)} ({left} days); fblink will remind you before then."
    return (
        f":white_check_mark: {verb} *{blocks.escape(link.page_name)}* to Vonage API key "
        f"`{blocks.escape(link.api_key)}`{app}.{when}"
    )


def replace_prompt(conflict: AppConflict) -> dict[str, Any]:
    value = json.dumps({"p": conflict.page.page_id, "k": conflict.creds.api_key, "a": conflict.wanted.id,
                        "c": conflict.current_id})  # the application the user is shown and agrees to replace
    text = (
        f":warning: *{blocks.escape(conflict.page.name)}* is already linked to application "
        f"*{blocks.escape(conflict.current_name)}* (`{blocks.escape(conflict.current_id)}`). Vonage allows one "
        f"application per Page. Replace it with *{blocks.escape(conflict.wanted.name)}*?"
    )
    return blocks.message(text, [
        blocks.section(text),
        blocks.actions(
            blocks.button("Replace", "link_replace", value, style="danger", confirm=blocks.confirm_dialog(
                "Replace application?",
                f"Messenger traffic for {blocks.escape(conflict.page.name)} will go to "
                f"{blocks.escape(conflict.wanted.name)} instead of {blocks.escape(conflict.current_name)}.",
                ok="Replace")),
            blocks.button("Keep current", "link_keep", conflict.page.page_id),
        ),
    ])


async def guarded(req: Req, page_id: str, work: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    """Run one Page operation under its in-flight lock and tell the user the outcome."""
    services = req.services
    try:
        services.locks.acquire(req.team_id, page_id)
    except LinkRefused as exc:
        await req.respond(**blocks.notice(f":hourglass: {exc}"), replace_original=False)
        return
    try:
        msg = await work()
    except AppConflict as conflict:
        msg = replace_prompt(conflict)
    except LinkRefused as exc:
        msg = blocks.notice(f":no_entry: {exc}")
    except Exception as exc:
        msg = blocks.notice(user_error_text(exc, what="The change"))
    finally:
        services.locks.release(req.team_id, page_id)
    await req.respond(**msg, replace_original=False)


def creds_or_refuse(services: "Services", team_id: str, api_key: str | None) -> Credentials:
    creds = services.credentials(team_id, api_key)
    if creds is None:
        known = ", ".join(f"`{blocks.escape(k)}`" for k in services.api_keys(team_id))
        raise LinkRefused(f"Unknown Vonage API key `{blocks.escape(api_key or '')}`. Configured keys: {known}.")
    return creds


# -- /fblink link -----------------------------------------------------------------------

async def perform_link(req: Req, page: StoredPage, api_key: str | None, app_name: str | None) -> None:
    services = req.services

    async def work() -> dict[str, Any]:
        creds = creds_or_refuse(services, req.team_id, api_key)
        before = req.store.get_link(req.team_id, page.page_id)
        if app_name:
            app = await linking.resolve_application(services, creds, app_name)
            link = await linking.link_application(services, req.team_id, req.user_id, page, creds, app, req.channel_id)
        else:
            link = await linking.link_account(services, req.team_id, req.user_id, page, creds, req.channel_id)
        if before is not None and before.status == "active" and link.period > before.period:
            from bot.reminders import after_relink  # a fresh token ended the old period: update its reminders

            await after_relink(services, before, link, req.user_id)
        return blocks.notice(success_text(services, link))

    await guarded(req, page.page_id, work)


async def cmd_link(req: Req) -> None:
    if not req.args:
        await open_link_modal(req)
        return
    page_words, app_words = split_app(req.args)
    if app_words is not None and not app_words:
        await req.respond(**blocks.notice("Name the application: `/fblink link <page> app <application>`."), replace_original=False)
        return
    pages = await fetch_pages(req)
    if pages is None:
        return
    wanted = " ".join(page_words)
    page, api_key = match_page(pages, wanted), None
    if page is None and len(page_words) > 1:
        page = match_page(pages, " ".join(page_words[:-1]))
        api_key = page_words[-1] if page else None
    if page is None:
        await req.respond(**blocks.notice(not_managed(wanted)), replace_original=False)
        return
    await perform_link(req, page, api_key, " ".join(app_words) if app_words else None)


# -- /fblink unlink ---------------------------------------------------------------------

async def cmd_unlink(req: Req) -> None:
    page_words, app_words = split_app(req.args)
    if not page_words:
        await req.respond(**blocks.notice("Usage: `/fblink unlink <page> [app <application>]`."), replace_original=False)
        return
    wanted = " ".join(page_words)
    link = match_link(req.store.list_links(req.team_id), wanted)
    if link is None:
        await req.respond(**blocks.notice(f"No Page called “{blocks.escape(wanted)}” is linked in this workspace. "
                                          "`/fblink status` lists the links."), replace_original=False)
        return
    await perform_unlink(req, link, " ".join(app_words) if app_words else None)


async def perform_unlink(req: Req, link: Link, application: str | None) -> None:
    services = req.services

    async def work() -> dict[str, Any]:
        done = await linking.unlink(services, req.team_id, req.user_id, link, application=application)
        return blocks.notice(f":scissors: {done}")

    await guarded(req, link.page_id, work)


# -- /fblink relink ---------------------------------------------------------------------

def relink_window(services: "Services") -> int:
    return max(services.settings.reminder_days) * DAY


async def start_relink(req: Req, link: Link) -> None:
    """Relink now, or first send a login link when the user's Facebook access is (nearly) over."""
    services = req.services
    login = req.store.get_login(req.team_id, req.user_id)
    stale = login is None or (
        login.data_access_expires_at is not None and login.data_access_expires_at - req.now < relink_window(services)
    )
    if stale:
        from handlers.login import login_url

        url = login_url(services, req.team_id, req.user_id, channel_id=req.channel_id, purpose="relink",
                        payload={"page_id": link.page_id})
        text = (
            f"To re-link *{blocks.escape(link.page_name)}*, fblink needs a fresh Facebook login"
            + (" (yours is missing)." if login is None else " (your Facebook data access ends soon).")
            + " Log in and the re-link completes by itself."
        )
        await req.respond(**blocks.message(text, [
            blocks.section(text),
            blocks.actions(blocks.button("Continue with Facebook", "login_open", "relink", style="primary", url=url)),
        ]), replace_original=False)
        return
    pages = await fetch_pages(req)
    if pages is None:
        return
    page = match_page(pages, link.page_id)
    if page is None:
        await req.respond(**blocks.notice(
            f"Your Facebook login does not list *{blocks.escape(link.page_name)}*: only someone who manages the Page "
            "can re-link it."), replace_original=False)
        return

    async def work() -> dict[str, Any]:
        new = await linking.relink(services, req.team_id, req.user_id, link, page)
        from bot.reminders import after_relink

        await after_relink(services, link, new, req.user_id)
        return blocks.notice(success_text(services, new, verb="Re-linked"))

    await guarded(req, link.page_id, work)


async def cmd_relink(req: Req) -> None:
    wanted = " ".join(req.args)
    if not wanted:
        await req.respond(**blocks.notice("Usage: `/fblink relink <page>`."), replace_original=False)
        return
    link = match_link(req.store.list_links(req.team_id), wanted)
    if link is None:
        await req.respond(**blocks.notice(f"No Page called “{blocks.escape(wanted)}” is linked in this workspace."),
                          replace_original=False)
        return
    await start_relink(req, link)


async def relink_after_login(services: "Services", state: OAuthState) -> None:
    """The login asked for by a relink came back: finish the relink, answering by DM."""
    req = Req(services, state.team_id, state.user_id, state.channel_id, dm_responder(services, state.user_id))
    link = services.store.get_link(state.team_id, str(state.payload.get("page_id")))
    try:
        if link is None:
            await req.respond(**blocks.notice("That Page is no longer linked; nothing to re-link."))
            return
        await start_relink(req, link)
    except Exception as exc:
        await req.respond(**blocks.notice(user_error_text(exc, what="The re-link")))


# -- /fblink status and history -----------------------------------------------------------

def link_row(services: "Services", link: Link) -> str:
    now = services.now()
    app = blocks.escape(link.application_name or link.application_id or "no application")
    who = f"<@{link.linked_by}>" if link.linked_by else "outside fblink"
    if link.status == "gone":
        state = ":x: deleted at Vonage"
    elif link.expires_at is None:
        state = ":warning: expiry unknown (linked outside fblink); re-link it"
    else:
        left = blocks.days_left(link.expires_at, now)
        state = (f":rotating_light: *expired* {blocks.slack_date(link.expires_at)}" if link.expires_at <= now
                 else f"expires {blocks.slack_date(link.expires_at)} · *{left} days left*")
    if link.broken_at:
        state = ":boom: token broken · " + state
    return (f"*{blocks.escape(link.page_name)}* `{blocks.escape(link.page_id)}`\n"
            f"key `{blocks.escape(link.api_key)}` · {app} · linked by {who}\n{state}")


def status_message(services: "Services", team_id: str, offset: int = 0) -> dict[str, Any]:
    total = services.store.count_links(team_id)
    if not total:
        return blocks.notice("No Pages are linked in this workspace yet. Start with `/fblink pages`.")
    offset = min(max(0, offset), total - 1)
    chunk = services.store.list_links(team_id, limit=blocks.PAGE_SIZE, offset=offset)
    nxt = offset + blocks.PAGE_SIZE if offset + blocks.PAGE_SIZE < total else None
    out = [blocks.section(f"*Links in this workspace* ({total}), soonest expiry first")]
    for link in chunk:
        out.append(blocks.section(link_row(services, link), accessory=blocks.button(
            "Re-link", "status_relink", link.page_id)))
    nav = blocks.nav_buttons("status_next", offset, nxt)
    if nav:
        out.append(blocks.actions(*nav))
    return blocks.message(f"{total} links", out)


async def cmd_status(req: Req) -> dict[str, Any]:
    return status_message(req.services, req.team_id)


async def cmd_history(req: Req) -> dict[str, Any]:
    wanted = " ".join(req.args)
    if not wanted:
        return blocks.notice("Usage: `/fblink history <page>`.")
    link = match_link(req.store.list_links(req.team_id), wanted)
    page_id = link.page_id if link else wanted
    rows = req.store.history(req.team_id, page_id)
    if not rows:
        return blocks.notice(f"No history for “{blocks.escape(wanted)}”.")
    lines = [
        f"{blocks.slack_date(r['at'])} · {r['action']} · "
        + (f"<@{r['user_id']}>" if r["user_id"] else "fblink")
        + f" · {blocks.escape(r['detail'] or '')} · {blocks.escape(r['result'])}"
        for r in rows
    ]
    return blocks.notice(f"*History of {blocks.escape(link.page_name if link else wanted)}*\n" + "\n".join(lines))


async def cmd_sync(req: Req) -> None:
    imported, gone = await linking.sync(req.services, req.team_id)
    parts = [":arrows_clockwise: Synced with Vonage."]
    if imported:
        parts.append("Imported (linked in the dashboard; expiry unknown, please re-link): "
                     + ", ".join(f"*{blocks.escape(n)}*" for n in imported))
    if gone:
        parts.append("Deleted at Vonage, marked gone: " + ", ".join(f"*{blocks.escape(n)}*" for n in gone))
    if not imported and not gone:
        parts.append("Everything already matches.")
    await req.respond(**blocks.notice("\n".join(parts)), replace_original=False)


# -- the link modal ---------------------------------------------------------------------------

def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": blocks.truncate(text, 75) or "-"}, "value": value[:150]}


def link_modal_view(pages: list[StoredPage], keys: list[str], apps: list[Any] | None, *,
                    page_id: str | None = None, api_key: str | None = None, meta: dict[str, Any]) -> dict[str, Any]:
    page_opts = [_option(f"{p.name} ({p.page_id})", p.page_id) for p in pages if p.can_link][:100]
    key_opts = [_option(k, k) for k in keys][:100]
    page_select: dict[str, Any] = {"type": "static_select", "action_id": "page", "options": page_opts,
                                   "placeholder": {"type": "plain_text", "text": "Choose a Page"}}
    initial_page = next((o for o in page_opts if o["value"] == page_id), None)
    if initial_page:
        page_select["initial_option"] = initial_page
    key_select: dict[str, Any] = {"type": "static_select", "action_id": "link_modal_key", "options": key_opts}
    chosen_key = api_key or (keys[0] if keys else None)
    initial_key = next((o for o in key_opts if o["value"] == chosen_key), None)
    if initial_key:
        key_select["initial_option"] = initial_key
    view_blocks: list[dict[str, Any]] = [
        {"type": "input", "block_id": "page", "label": {"type": "plain_text", "text": "Facebook Page"}, "element": page_select},
        {"type": "input", "block_id": "key", "dispatch_action": True,
         "label": {"type": "plain_text", "text": "Vonage API key"}, "element": key_select},
    ]
    if apps is None:
        view_blocks.append(blocks.context(":hourglass_flowing_sand: Loading the key's Messages applications…"))
    elif apps:
        view_blocks.append({
            "type": "input", "block_id": "app", "optional": True,
            "label": {"type": "plain_text", "text": "Vonage application (optional)"},
            "element": {"type": "static_select", "action_id": "app",
                        "options": [_option(f"{a.name} ({a.id[:8]})", a.id) for a in apps][:100],
                        "placeholder": {"type": "plain_text", "text": "Messages applications"}},
        })
    else:
        view_blocks.append(blocks.context("This key has no applications with the Messages capability."))
    return {
        "type": "modal", "callback_id": "link_modal",
        "title": {"type": "plain_text", "text": "Link a Page"},
        "submit": {"type": "plain_text", "text": "Link"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps(meta)[:3000],
        "blocks": view_blocks,
    }


async def _messages_apps(services: "Services", team_id: str, api_key: str | None) -> list[Any]:
    creds = services.credentials(team_id, api_key)
    if creds is None:
        return []
    try:
        return [a for a in await services.vonage.list_applications(creds) if a.messages_capable]
    except Exception as exc:
        log.warning("could not list applications for the link modal: %s", type(exc).__name__)
        return []


async def open_link_modal(req: Req, *, page_id: str | None = None) -> None:
    services = req.services
    pages = req.store.get_pages(req.team_id, req.user_id)
    if not pages:
        pages = await fetch_pages(req) or []
        if not pages:
            return
    keys = services.api_keys(req.team_id)
    meta = {"channel": req.channel_id}
    opened = await services.slack.views_open(
        trigger_id=req.trigger_id, view=link_modal_view(pages, keys, None, page_id=page_id, meta=meta))
    view = opened["view"]
    apps = await _messages_apps(services, req.team_id, keys[0])
    await services.slack.views_update(view_id=view["id"], hash=view.get("hash"),
                                      view=link_modal_view(pages, keys, apps, page_id=page_id, meta=meta))


def _selected(values: dict[str, Any], block: str, action: str) -> str | None:
    opt = (values.get(block, {}).get(action) or {}).get("selected_option")
    return opt.get("value") if isinstance(opt, dict) else None


async def link_modal_key_changed(body, context):  # type: ignore[no-untyped-def]
    services = services_of(context)
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    view = body["view"]
    values = view.get("state", {}).get("values", {})
    api_key = _selected(values, "key", "link_modal_key")
    pages = services.store.get_pages(team_id, user_id)
    keys = services.api_keys(team_id)
    apps = await _messages_apps(services, team_id, api_key)
    meta = json.loads(view.get("private_metadata") or "{}")
    await services.slack.views_update(view_id=view["id"], hash=view.get("hash"), view=link_modal_view(
        pages, keys, apps, page_id=_selected(values, "page", "page"), api_key=api_key, meta=meta))


def validate_link_modal(services: "Services", team_id: str, user_id: str, values: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    page_id = _selected(values, "page", "page")
    page = match_page(services.store.get_pages(team_id, user_id), page_id or "\0") if page_id else None
    if page is None:
        errors["page"] = "Choose one of the Pages your Facebook login lists."
    elif not page.can_link:
        errors["page"] = "You need the MESSAGING or MANAGE task on this Page."
    api_key = _selected(values, "key", "link_modal_key")
    if services.credentials(team_id, api_key) is None:
        errors["key"] = "Choose a configured Vonage API key."
    return errors


async def link_modal_ack(ack, body, context):  # type: ignore[no-untyped-def]
    services = services_of(context)
    values = body["view"].get("state", {}).get("values", {})
    errors = validate_link_modal(services, body["team"]["id"], body["user"]["id"], values)
    await ack_errors(ack, errors)


async def link_modal_submit(body, context):  # type: ignore[no-untyped-def]
    """After the modal closed: link (re-validated), answering by DM."""
    services = services_of(context)
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    view = body["view"]
    values = view.get("state", {}).get("values", {})
    if validate_link_modal(services, team_id, user_id, values):
        return
    if not first_submission(services, view):
        return
    meta = json.loads(view.get("private_metadata") or "{}")
    req = Req(services, team_id, user_id, meta.get("channel"), dm_responder(services, user_id))
    page_id = _selected(values, "page", "page") or ""
    pages = await fetch_pages(req)  # the user's Page roles as Facebook says now, not as cached
    if pages is None:
        return
    page = match_page(pages, page_id)
    if page is None:
        await req.respond(**blocks.notice(not_managed(page_id)))
        return
    await perform_link(req, page, _selected(values, "key", "link_modal_key"), _selected(values, "app", "app"))


# -- buttons ---------------------------------------------------------------------------------

def _action_req(body: dict[str, Any], context: Any, respond: Any) -> Req:
    """A button click; clicks on the App Home or in a modal have no response_url, so answer by DM."""
    services = services_of(context)
    user_id = body["user"]["id"]
    return Req(
        services=services, team_id=body["team"]["id"], user_id=user_id,
        channel_id=(body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id"),
        respond=respond if body.get("response_url") else dm_responder(services, user_id),
        trigger_id=body.get("trigger_id"),
    )


CLICK_WINDOW = 30  # seconds in which a second click on the same button is the same request


def first_click(req: Req, body: dict[str, Any]) -> bool:
    """A double click (or a re-delivered payload) performs the action once and answers once."""
    try:
        action = body["actions"][0]
        where = (body.get("container") or {}).get("message_ts") or (body.get("view") or {}).get("id") or ""
        key = f"act:{req.team_id}:{req.user_id}:{action.get('action_id')}:{action.get('value', '')}:{where}"
    except (KeyError, IndexError, AttributeError):
        return True
    return req.store.first_time(key[:500], now=req.now, ttl=CLICK_WINDOW)


def _value(body: dict[str, Any]) -> str:
    try:
        return str(body["actions"][0].get("value") or "")[:2000]
    except (KeyError, IndexError, AttributeError):
        return ""


async def page_link_button(body, context, respond):  # type: ignore[no-untyped-def]
    req = _action_req(body, context, respond)
    page_id = _value(body)
    if match_page(req.store.get_pages(req.team_id, req.user_id), page_id) is None:
        await req.respond(**blocks.notice(not_managed(page_id)), replace_original=False)
        return
    await open_link_modal(req, page_id=page_id)


async def _clicked_link(body: dict[str, Any], context: Any, respond: Any) -> tuple[Req, Link] | None:
    """The clicker's request and the link the button names, looked up afresh; None when done already."""
    req = _action_req(body, context, respond)
    if not first_click(req, body):
        return None
    link = req.store.get_link(req.team_id, _value(body))
    if link is None:
        await req.respond(**blocks.notice("That Page is not linked any more."), replace_original=False)
        return None
    return req, link


async def page_unlink_button(body, context, respond):  # type: ignore[no-untyped-def]
    clicked = await _clicked_link(body, context, respond)
    if clicked:
        await perform_unlink(clicked[0], clicked[1], None)


async def relink_button(body, context, respond):  # type: ignore[no-untyped-def]
    clicked = await _clicked_link(body, context, respond)
    if clicked:
        await start_relink(*clicked)


async def replace_button(body, context, respond):  # type: ignore[no-untyped-def]
    """The user chose Replace: check everything again, never trusting the button's ids."""
    req = _action_req(body, context, respond)
    if not first_click(req, body):
        return
    try:
        data = json.loads(_value(body))
        page_id, api_key, app_id, shown = str(data["p"]), str(data["k"]), str(data["a"]), str(data["c"])
    except (ValueError, KeyError, TypeError):
        await req.respond(**blocks.notice("That button is out of date. Run the command again."), replace_original=False)
        return
    pages = await fetch_pages(req)  # the user's Page roles as Facebook says now, not as cached
    if pages is None:
        return
    page = match_page(pages, page_id)
    if page is None:
        await req.respond(**blocks.notice(not_managed(page_id)), replace_original=False)
        return
    services = req.services

    async def work() -> dict[str, Any]:
        creds = creds_or_refuse(services, req.team_id, api_key)
        app = await linking.resolve_application(services, creds, app_id)
        link = await linking.link_application(services, req.team_id, req.user_id, page, creds, app, req.channel_id,
                                              replace=shown)
        return blocks.notice(success_text(services, link, verb="Replaced the application: linked"))

    await guarded(req, page.page_id, work)


async def keep_button(respond):  # type: ignore[no-untyped-def]
    await respond(**blocks.notice("Kept the current application; nothing changed."), replace_original=True)


async def status_nav(body, context, respond):  # type: ignore[no-untyped-def]
    services = services_of(context)
    try:
        offset = max(0, int(_value(body) or 0))
    except ValueError:
        offset = 0
    await respond(**status_message(services, body["team"]["id"], offset), replace_original=True)


def register(app: AsyncApp) -> None:
    app.action("page_link")(ack=ack_only, lazy=[page_link_button])
    app.action("page_link_app")(ack=ack_only, lazy=[page_link_button])
    app.action("page_unlink")(ack=ack_only, lazy=[page_unlink_button])
    app.action("page_relink")(ack=ack_only, lazy=[relink_button])
    app.action("status_relink")(ack=ack_only, lazy=[relink_button])
    app.action("link_replace")(ack=ack_only, lazy=[replace_button])
    app.action("reminder_relink")(ack=ack_only, lazy=[relink_button])
    app.action("link_keep")(ack=ack_only, lazy=[keep_button])
    app.action("status_next")(ack=ack_only, lazy=[status_nav])
    app.action("status_next_prev")(ack=ack_only, lazy=[status_nav])
    app.action("link_modal_key")(ack=ack_only, lazy=[link_modal_key_changed])
    app.view("link_modal")(ack=link_modal_ack, lazy=[link_modal_submit])
