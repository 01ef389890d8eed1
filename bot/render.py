"""One renderer for a link's state, used by the Pages list, status, App Home and reminders."""

from __future__ import annotations

from collections.abc import Sequence

from bot.blocks import escape, slack_date
from bot.store import Link, LinkState


def state_mark(link: Link, now: int, lost: Sequence[str] = ()) -> tuple[str, str]:
    """A status mark and its words, from :meth:`Link.state`.

    ``lost``: Messenger permissions the linker's Facebook login no longer grants; the Page token
    Vonage holds then cannot carry Messenger traffic, so the link is broken whatever its dates say.
    """
    state = link.state(now)
    if lost and state is not LinkState.GONE:
        names = ", ".join(f"`{escape(s)}`" for s in lost)
        return (
            ":boom:",
            f"*broken*: the Facebook login it was made with no longer grants {names}; "
            f"{who_linked(link)} should grant it again (`/fblink login`) and re-link",
        )
    if state is LinkState.BROKEN and link.unreadable_at and not link.broken_at:
        return (
            ":boom:",
            "*broken*: fblink cannot read this link's stored token (the server's encryption key changed); re-link it",
        )
    if state is LinkState.BROKEN:
        return ":boom:", "*broken*: the Page token Vonage holds was revoked"
    if state is LinkState.GONE:
        return ":x:", "deleted at Vonage"
    if state is LinkState.UNKNOWN_EXPIRY:
        return ":grey_question:", "expiry unknown (linked outside fblink); re-link it"
    assert link.expires_at is not None
    when = slack_date(link.expires_at)
    if state is LinkState.EXPIRED:
        return ":rotating_light:", f"*expired* {when}"
    left = link.days_left(now) or 0
    icon = ":large_orange_circle:" if left <= 3 else ":large_yellow_circle:" if left <= 14 else ":large_green_circle:"
    return icon, f"expires {when} · *{left} days left*"


def state_text(link: Link, now: int, lost: Sequence[str] = ()) -> str:
    icon, words = state_mark(link, now, lost)
    return f"{icon} {words}"


def application_text(link: Link) -> str:
    return escape(link.application_name or link.application_id or "no application")


def who_linked(link: Link) -> str:
    return f"<@{link.linked_by}>" if link.linked_by else "someone outside fblink"


def link_details(link: Link) -> str:
    """Key, application and who linked it: the second line of every link row."""
    return f"key `{escape(link.api_key)}` · application {application_text(link)} · linked by {who_linked(link)}"


def link_row(link: Link, now: int, lost: Sequence[str] = ()) -> str:
    """A link as one section: name and id, details, state."""
    muted = " · :no_bell: muted" if link.muted else ""
    return (
        f"*{escape(link.page_name)}* `{escape(link.page_id)}`\n{link_details(link)}\n"
        f"{state_text(link, now, lost)}{muted}"
    )


def needs_relink(link: Link, now: int, lost: Sequence[str] = ()) -> bool:
    """Expired, broken or of unknown expiry: the rows whose Re-link button is the thing to press."""
    return bool(lost) or link.state(now) in (LinkState.EXPIRED, LinkState.BROKEN, LinkState.UNKNOWN_EXPIRY)


def page_link_status(link: Link | None, now: int, lost: Sequence[str] = ()) -> str:
    """The link part of a row in the Pages list."""
    if link is None:
        return "not linked"
    if link.state(now) is LinkState.GONE:
        return state_text(link, now)
    return f"linked to `{escape(link.api_key)}` · app *{application_text(link)}* · {state_text(link, now, lost)}"


def relinked_text(link: Link, user_id: str | None) -> str:
    when = slack_date(link.expires_at) if link.expires_at else "unknown"
    who = f" by <@{user_id}>" if user_id else ""
    return f":white_check_mark: *{escape(link.page_name)}* was re-linked{who}. New expiry: {when}."
