"""Facebook permissions in words: which ones a login lacks, what each is for, and the one-click re-request.

A login that did not grant ``pages_messaging`` or ``pages_manage_metadata`` hands Vonage a Page
token that cannot carry Messenger traffic, while every other check passes. So fblink refuses to
link with such a login, says so wherever the login or its links are shown, and offers a button
that asks Facebook again for exactly what is missing (``auth_type=rerequest``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot import blocks
from bot.graph import REQUIRED_SCOPES
from bot.services import Services
from bot.store import FacebookLogin, Link
from handlers.session import login_url, prompt_ref

# Without these Vonage cannot receive or send the Page's Messenger messages.
LINK_SCOPES: tuple[str, ...] = ("pages_messaging", "pages_manage_metadata")

WHAT_FOR = {
    "pages_show_list": "see the Pages you manage",
    "pages_messaging": "send and receive the Pages' Messenger messages",
    "pages_manage_metadata": "subscribe Vonage to the Pages' messages",
    "business_management": "see the Pages of your business portfolios",
}


def missing(scopes: Iterable[str]) -> tuple[str, ...]:
    """The permissions fblink asks for that this login did not grant."""
    have = set(scopes)
    return tuple(s for s in REQUIRED_SCOPES if s not in have)


def blocking(scopes: Iterable[str]) -> tuple[str, ...]:
    """The missing permissions without which a link cannot carry Messenger traffic."""
    return tuple(s for s in missing(scopes) if s in LINK_SCOPES)


def in_words(scopes: Sequence[str]) -> str:
    """`pages_messaging` (send and receive …), `…`"""
    return ", ".join(f"`{s}` ({WHAT_FOR.get(s, 'needed by fblink')})" for s in scopes)


async def grant_button(
    services: Services, team_id: str, user_id: str, channel_id: str | None, *, page_id: str | None = None
) -> dict[str, Any]:
    """Log in again, asking Facebook only for what was declined. With a Page, the re-link finishes by itself."""
    url = await login_url(
        services,
        team_id,
        user_id,
        channel_id=channel_id,
        purpose="relink" if page_id else "login",
        payload={"page_id": page_id} if page_id else None,
        rerequest=True,
    )
    return blocks.button("Grant the missing permissions", "login_open", prompt_ref(url), style="primary", url=url)


async def refusal(
    services: Services,
    team_id: str,
    user_id: str,
    channel_id: str | None,
    lacking: Sequence[str],
    *,
    page_name: str,
    verb: str = "link",
) -> dict[str, Any]:
    """Why a link was refused, with the one-click re-request."""
    text = (
        f":no_entry: fblink did not {verb} *{blocks.escape(page_name)}*: your Facebook login did not grant "
        f"{in_words(lacking)}. Without {'it' if len(lacking) == 1 else 'them'} Vonage cannot carry the Page's "
        "Messenger traffic. Grant the missing permissions, then try again."
    )
    return blocks.message(
        text, [blocks.section(text), blocks.actions(await grant_button(services, team_id, user_id, channel_id))]
    )


async def login_warning(
    services: Services, team_id: str, user_id: str, channel_id: str | None, login: FacebookLogin | None
) -> list[dict[str, Any]]:
    """Blocks that warn about what this login lacks (none when it lacks nothing)."""
    if login is None:
        return []
    lacking = missing(login.scopes)
    if not lacking:
        return []
    stops = blocking(login.scopes)
    text = f":warning: Your Facebook login did not grant {in_words(lacking)}." + (
        " Pages cannot be linked or re-linked with it, and links made with it cannot carry Messenger traffic."
        if stops
        else ""
    )
    return [blocks.section(text), blocks.actions(await grant_button(services, team_id, user_id, channel_id))]


async def linker_gaps(services: Services, team_id: str, links: Iterable[Link]) -> dict[str, tuple[str, ...]]:
    """For each linker of these links: the Messenger permissions their current login no longer grants.

    A linker who has logged out is not judged (nothing to read); the daily token probe still is.
    """
    users = sorted({lk.linked_by for lk in links if lk.linked_by})
    return gaps_of(await services.store.login_scopes(team_id, users))


def gaps_of(scopes: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Each user's missing Messenger permissions, from their granted scopes (users lacking none left out)."""
    return {user: lacking for user, granted in scopes.items() if (lacking := blocking(granted))}
