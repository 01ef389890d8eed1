"""The user's Facebook session as listeners need it: login links and the Pages Facebook lists now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot import blocks
from bot.graph import GraphError
from bot.services import Services
from bot.store import StoredPage
from bot.store.states import state_ref
from handlers.common import Req, replace_message
from handlers.lookups import by_id, not_managed


async def login_url(
    services: Services,
    team_id: str,
    user_id: str,
    *,
    channel_id: str | None = None,
    purpose: str = "login",
    payload: dict[str, Any] | None = None,
    rerequest: bool = False,
    response_url: str | None = None,
) -> str:
    """A fresh single-use login link bound to this Slack user.

    It opens fblink's own confirmation page first (which names the Slack user the login
    will bind to); that page continues to Facebook. The user's earlier links stop working:
    the prompts that showed them are marked replaced, after the ack. ``response_url``: the
    one of the message this link will be shown in, kept (encrypted) to mark it done later.
    """
    now = services.now()
    replaced = await services.store.cancel_states(team_id, user_id, now=now)
    if replaced:
        services.spawn(_mark_replaced(services, team_id, replaced))
    state = await services.store.create_state(
        team_id,
        user_id,
        now=now,
        channel_id=channel_id,
        purpose=purpose,
        payload={**(payload or {}), "rerequest": rerequest},
        response_url=response_url,
    )
    return services.settings.fblink_public_url.rstrip("/") + "/facebook/login?state=" + state


REPLACED = ":arrows_counterclockwise: This login link was replaced by a newer one."


async def _mark_replaced(services: Services, team_id: str, prompts: Sequence[str | tuple[str, str]]) -> None:
    for where in prompts:
        await replace_message(services, where, blocks.notice(REPLACED), team_id)


def prompt_ref(url: str) -> str:
    """The value of a login link's button: its state's reference, so a click tells fblink which
    message shows that link (Slack sends the message's response_url with the click)."""
    state = (parse_qs(urlsplit(url).query).get("state") or [""])[0]
    return state_ref(state) if state else "login"


def login_message(url: str, *, rerequest_scopes: Sequence[str] = ()) -> dict[str, Any]:
    if rerequest_scopes:
        text = (
            "fblink still needs these Facebook permissions: "
            + ", ".join(f"`{s}`" for s in rerequest_scopes)
            + ". Log in again and allow them."
        )
    else:
        text = (
            "Log in with Facebook so fblink can see the Pages you manage. The link is yours alone and works "
            "for 10 minutes; do not forward it."
        )
    return blocks.message(
        "Continue with Facebook",
        [
            blocks.section(text),
            blocks.actions(
                blocks.button("Continue with Facebook", "login_open", prompt_ref(url), style="primary", url=url)
            ),
        ],
    )


async def login_prompt(
    req: Req, *, text: str | None = None, purpose: str = "login", payload: dict[str, Any] | None = None
) -> dict[str, Any]:
    url = await login_url(
        req.services,
        req.team_id,
        req.user_id,
        channel_id=req.channel_id,
        purpose=purpose,
        payload=payload,
        response_url=req.answer_url,
    )
    msg = login_message(url)
    if text:
        msg["blocks"].insert(0, blocks.section(text))
        msg["text"] = text
    return msg


async def fetch_pages(req: Req) -> list[StoredPage] | None:
    """Refresh the user's Pages from Graph; None (after telling the user) when that is impossible."""
    login = await req.store.get_login(req.team_id, req.user_id)
    if login is None:
        await req.say(
            await login_prompt(
                req, text="You are not logged in to Facebook yet. Run `/fblink login`, or use this button."
            )
        )
        return None
    try:
        pages = await req.services.graph.pages(login.token, login.scopes)
    except GraphError as exc:
        if exc.token_dead:
            await req.say(
                await login_prompt(
                    req, text=":warning: Your Facebook login has expired or was revoked. Log in again to continue."
                )
            )
            return None
        raise
    await req.store.save_pages(req.team_id, req.user_id, pages, now=req.now)
    return await req.store.get_pages(req.team_id, req.user_id)


async def managed_page(req: Req, page_id: str) -> StoredPage | None:
    """The Page as Facebook lists it for this user now (not as cached); None after telling them why not."""
    pages = await fetch_pages(req)
    if pages is None:
        return None
    page = by_id(pages, page_id)
    if page is None:
        await req.say(blocks.notice(not_managed(page_id)))
    return page
