"""Finding the Page, link, key and application a user means.

Values that are ids (button values, stored links, modal submissions) are matched by id
only. Free command text is matched by exact id, then by exact name, and only then is the
word "app" taken as the keyword that starts an application name. When more than one
reading fits, the user is asked which one was meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from bot import blocks
from bot.linking import LinkRefused
from bot.services import Services
from bot.store import Link, StoredPage
from bot.vonage import Credentials

T = TypeVar("T", StoredPage, Link)


def _name(item: StoredPage | Link) -> str:
    return item.name if isinstance(item, StoredPage) else item.page_name


def by_id(items: Sequence[T], page_id: str) -> T | None:
    """Ids stay ids: never falls back to names."""
    return next((i for i in items if i.page_id == page_id), None)


def by_text(items: Sequence[T], wanted: str) -> T | None:
    """Exact id first, then exact (case-insensitive) name."""
    wanted = wanted.strip()
    return by_id(items, wanted) or next((i for i in items if _name(i).lower() == wanted.lower()), None)


@dataclass(frozen=True)
class Reading:
    """One way to read `<page> [api-key] [app <application>]`."""

    target: StoredPage | Link
    api_key: str | None
    application: str | None


class Ambiguous(LinkRefused):
    """More than one reading of the command fits."""


def read_target(items: Sequence[T], words: Sequence[str], *, with_key: bool) -> Reading | None:
    """The one reading of the words that names an existing Page; None when none does.

    Raises :class:`Ambiguous` when several readings fit (e.g. Pages "Shop" and "Shop app Deals").
    """
    words = list(words)
    found: dict[tuple[str, str | None, str | None], Reading] = {}

    def consider(page_words: list[str], key: str | None, app: list[str] | None) -> None:
        if not page_words or (app is not None and not app):
            return
        item = by_text(items, " ".join(page_words))
        if item is not None:
            application = " ".join(app) if app is not None else None
            found[(item.page_id, key, application)] = Reading(item, key, application)

    consider(words, None, None)
    if with_key and len(words) > 1:
        consider(words[:-1], words[-1], None)
    for i, word in enumerate(words):
        if i and word.lower() == "app":
            consider(words[:i], None, words[i + 1 :])
            if with_key and i > 1:
                consider(words[: i - 1], words[i - 1], words[i + 1 :])
    if len(found) > 1:
        options = "; ".join(
            f"Page *{blocks.escape(_name(r.target))}*"
            + (f" with key `{blocks.escape(r.api_key)}`" if r.api_key else "")
            + (f" and application “{blocks.escape(r.application)}”" if r.application else "")
            for r in found.values()
        )
        raise Ambiguous(
            f"That command can be read more than one way: {options}. Put the Page name in quotes, "
            'e.g. `/fblink link "Shop app Deals"`, or use the Page id.'
        )
    return next(iter(found.values()), None)


def not_managed(wanted: str) -> str:
    return (
        f"You don't manage a Facebook Page called “{blocks.escape(wanted)}” (by id or exact name), or your "
        "login doesn't list it. Run `/fblink pages` to see yours."
    )


def not_linked(wanted: str) -> str:
    return f"No Page called “{blocks.escape(wanted)}” is linked in this workspace. `/fblink status` lists the links."


async def creds_or_refuse(services: Services, team_id: str, api_key: str | None, user_id: str) -> Credentials:
    """The key's credentials. Only admins are told which keys exist."""
    creds = await services.credentials(team_id, api_key)
    if creds is None:
        text = f"Unknown Vonage API key `{blocks.escape(api_key or '')}`."
        if services.is_admin(user_id):
            text += (
                " Configured keys: "
                + ", ".join(f"`{blocks.escape(k)}`" for k in await services.api_keys(team_id))
                + "."
            )
        else:
            text += " Ask an fblink admin which keys are configured."
        raise LinkRefused(text)
    return creds
