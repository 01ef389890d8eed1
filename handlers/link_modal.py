"""The link modal: Page, Vonage key and (optionally) application, opened by `/fblink link` or a button."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.services import Services
from bot.store import StoredPage
from bot.vonage import Application
from handlers import key_policy, names
from handlers.changes import perform_link
from handlers.common import Body, Req, ack_errors, first_submission, where_you_acted
from handlers.lookups import by_id
from handlers.session import fetch_pages, managed_page

log = logging.getLogger(__name__)
CALLBACK_ID = "link_modal"


def page_label(p: StoredPage) -> str:
    return f"{p.name} ({p.page_id})"


def app_label(a: Application) -> str:
    return f"{a.name} ({a.id[:8]})"


def choose(action_id: str, options: list[tuple[str, str]], initial: str | None, placeholder: str) -> dict[str, Any]:
    """A static select up to Slack's 100 options; beyond that a type-ahead (external) select, so
    every Page, application and key can be picked (Slack would drop the rest of a static list)."""
    if len(options) <= blocks.MAX_OPTIONS:
        return blocks.static_select(action_id, options, placeholder=placeholder, initial=initial)
    shown = next((o for o in options if o[1] == initial), None)
    return blocks.external_select(action_id, placeholder=f"{placeholder} (type to search)", initial=shown)


def link_modal_view(
    pages: list[StoredPage],
    keys: list[str],
    apps: list[Application] | None,
    *,
    page_id: str | None = None,
    api_key: str | None = None,
    meta: dict[str, Any],
) -> dict[str, Any]:
    page_opts = [(page_label(p), p.page_id) for p in pages if p.can_link]
    chosen_key = api_key or (keys[0] if keys else None)
    out = [
        blocks.select_input("page", "Facebook Page", choose("page", page_opts, page_id, "Choose a Page"))
        if page_opts
        else blocks.context(":warning: Your Facebook login lists no Page you can link. Run `/fblink pages`."),
        blocks.select_input(
            "key",
            "Vonage API key",
            choose("link_modal_key", [(k, k) for k in keys], chosen_key, "Choose a key"),
            dispatch_action=True,
        ),
    ]
    if apps is None:
        out.append(blocks.context(":hourglass_flowing_sand: Loading the key's Messages applications…"))
    elif apps:
        out.append(
            blocks.select_input(
                "app",
                "Vonage application",  # Slack adds "(optional)" itself
                choose("app", [(app_label(a), a.id) for a in apps], None, "Messages applications"),
                optional=True,
            )
        )
    else:
        out.append(blocks.context("This key has no applications with the Messages capability."))
    return blocks.modal(CALLBACK_ID, "Link a Page", out, submit="Link", private_metadata=json.dumps(meta)[:3000])


async def _messages_apps(services: Services, team_id: str, api_key: str | None) -> list[Application]:
    creds = await services.credentials(team_id, api_key)
    if creds is None:
        return []
    try:
        return [a for a in await services.vonage.list_applications(creds) if a.messages_capable]
    except Exception as exc:
        log.warning("could not list applications for the link modal: %s", type(exc).__name__)
        return []


async def open_link_modal(req: Req, *, page_id: str | None = None) -> None:
    """Open the modal at once (the trigger_id lasts 3 s), then fill in the key's applications."""
    services = req.services
    pages = await req.store.get_pages(req.team_id, req.user_id)
    if not pages:
        pages = await fetch_pages(req) or []
        if not pages and await req.store.get_login(req.team_id, req.user_id) is None:
            return  # fetch_pages sent a login link
    if not any(p.can_link for p in pages):
        await req.say(
            blocks.notice(
                "None of your Facebook Pages can be linked: you need the MESSAGING or MANAGE task on a Page, "
                "and its Page token. `/fblink pages` shows each Page and why."
                if pages
                else "Facebook lists no Pages for your login. Check your role on the Page, and that you selected it when "
                "you logged in (`/fblink login`)."
            )
        )
        return
    keys = await key_policy.usable_keys(services, req.team_id, req.user_id)
    meta = {"channel": req.channel_id}
    slack = await services.slack_for(req.team_id)
    opened = await slack.views_open(
        trigger_id=req.trigger_id, view=link_modal_view(pages, keys, None, page_id=page_id, meta=meta)
    )
    view = opened["view"]
    apps = await _messages_apps(services, req.team_id, keys[0])
    await slack.views_update(
        view_id=view["id"], hash=view.get("hash"), view=link_modal_view(pages, keys, apps, page_id=page_id, meta=meta)
    )


def _selected(values: dict[str, Any], block: str, action: str) -> str | None:
    opt = (values.get(block, {}).get(action) or {}).get("selected_option")
    return opt.get("value") if isinstance(opt, dict) else None


async def key_changed(ack: AsyncAck, body: Body, services: Services) -> None:
    """Another key was chosen: reload that key's applications into the open modal."""
    await ack()
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    view = body["view"]
    values = view.get("state", {}).get("values", {})
    api_key = _selected(values, "key", "link_modal_key")
    keys = await key_policy.usable_keys(services, team_id, user_id)
    if api_key not in keys:  # a key this user may not use (a crafted payload): its applications stay hidden
        api_key = keys[0]

    async def reload() -> None:
        pages = await services.store.get_pages(team_id, user_id)
        apps = await _messages_apps(services, team_id, api_key)
        meta = json.loads(view.get("private_metadata") or "{}")
        try:
            await (await services.slack_for(team_id)).views_update(
                view_id=view["id"],
                hash=view.get("hash"),
                view=link_modal_view(
                    pages,
                    keys,
                    apps,
                    page_id=_selected(values, "page", "page"),
                    api_key=api_key,
                    meta=meta,
                ),
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "hash_conflict":
                raise
            # The user changed the select again before this update landed: the newer change wins.
            log.info("link modal %s changed meanwhile; this reload is superseded", view["id"])

    services.spawn(reload())


async def validate(services: Services, team_id: str, user_id: str, values: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    page_id = _selected(values, "page", "page")
    page = by_id(await services.store.get_pages(team_id, user_id), page_id) if page_id else None
    if page is None:
        errors["page"] = "Choose one of the Pages your Facebook login lists."
    elif not page.can_link:
        errors["page"] = "You need the MESSAGING or MANAGE task on this Page."
    api_key = _selected(values, "key", "link_modal_key")
    if (
        api_key is None
        or not await key_policy.may_use(services, team_id, user_id, api_key)
        or await services.credentials(team_id, api_key) is None
    ):
        errors["key"] = "Choose a configured Vonage API key."
    return errors


async def submitted(ack: AsyncAck, body: Body, services: Services) -> None:
    """Validate in the ack; link after it, re-checking the Page with Facebook, answering by DM."""
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    view = body["view"]
    values = view.get("state", {}).get("values", {})
    errors = await validate(services, team_id, user_id, values)
    await ack_errors(ack, errors)
    if errors or not await first_submission(services, body):
        return
    meta = json.loads(view.get("private_metadata") or "{}")
    channel = meta.get("channel")
    req = Req(services, team_id, user_id, channel, where_you_acted(services, team_id, user_id, channel))

    async def link() -> None:
        page = await managed_page(req, _selected(values, "page", "page") or "")
        if page is not None:
            await perform_link(req, page, _selected(values, "key", "link_modal_key"), _selected(values, "app", "app"))

    services.spawn(link())


async def page_options(ack: AsyncAck, body: Body, services: Services) -> None:
    """Type-ahead for the Page select (over 100 Pages): the person's own linkable Pages, by what they typed."""
    pages = [p for p in await services.store.get_pages(body["team"]["id"], body["user"]["id"]) if p.can_link]
    found = names.suggest(pages, str(body.get("value") or ""), ident=lambda p: p.page_id, name=lambda p: p.name)
    await ack(options=[blocks.option(page_label(p), p.page_id) for p in found])


async def key_options(ack: AsyncAck, body: Body, services: Services) -> None:
    keys = await key_policy.usable_keys(services, body["team"]["id"], body["user"]["id"])
    found = names.suggest(keys, str(body.get("value") or ""), ident=lambda k: k, name=lambda k: k)
    await ack(options=[blocks.option(k, k) for k in found])


async def app_options(ack: AsyncAck, body: Body, services: Services) -> None:
    """The chosen key's Messages applications, by what was typed (Vonage is asked within the 3 s)."""
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    api_key = _selected(values, "key", "link_modal_key")
    if not await key_policy.may_use(services, team_id, user_id, api_key):
        api_key = None
    apps = await _messages_apps(services, team_id, api_key)
    found = names.suggest(apps, str(body.get("value") or ""), ident=lambda a: a.id, name=lambda a: a.name)
    await ack(options=[blocks.option(app_label(a), a.id) for a in found])


def register(app: AsyncApp) -> None:
    app.action("link_modal_key")(key_changed)
    app.view(CALLBACK_ID)(submitted)
    app.options("page")(page_options)
    app.options("link_modal_key")(key_options)
    app.options("app")(app_options)
