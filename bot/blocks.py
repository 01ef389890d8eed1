"""Block Kit builders and mrkdwn helpers.

Everything a user sees is built here, so the Slack limits (50 blocks per
message, 3,000 characters per section, 75 characters per button label) are
enforced in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_MESSAGE_BLOCKS = 50
SECTION_TEXT_LIMIT = 3000
PAGE_SIZE = 10  # rows per message page: each row is a section + actions, plus header/footer

USAGE: list[tuple[str, str]] = [
    ("login", "Log in with Facebook so fblink can see the Pages you manage"),
    ("logout", "Forget your Facebook login and Page tokens"),
    ("pages", "List the Facebook Pages you manage and their link status"),
    ("link <page> [api-key]", "Link a Page to a Vonage account (no arguments: open a form)"),
    ("link <page> app <application>", "Link a Page to a Vonage application"),
    ("unlink <page> [app <application>]", "Unlink an application, or remove the Page from Vonage"),
    ("relink <page>", "Refresh a Page's token at Vonage; starts a new 90-day period"),
    ("status", "Every link in this workspace, soonest expiry first"),
    ("remind [<page>] #channel | <page> off", "Where expiry reminders go; mute a Page"),
    ("sync", "Reconcile with Vonage: import dashboard links, mark deleted ones"),
    ("keys add | list | remove <api-key>", "Manage Vonage API keys (admins)"),
    ("history <page>", "The last changes made to a Page's link"),
    ("help", "This message"),
]


def escape(text: str) -> str:
    """Escape user-controlled text for mrkdwn: & < > are control characters in Slack."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_date(ts: int, fallback: str | None = None) -> str:
    """A date each reader sees in their own time zone."""
    from bot.clock import iso

    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback or iso(ts)}>"


def days_left(expires_at: int, now: int) -> int:
    """Days until expiry, counting a started day as a whole one (13.5 days -> 14); <= 0 once past."""
    return -((now - expires_at) // 86400)


def section(text: str, accessory: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}}
    if accessory:
        block["accessory"] = accessory
    return block


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_TEXT_LIMIT)}]}


def button(
    text: str, action_id: str, value: str = "", *, style: str | None = None, url: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": truncate(text, 75)}, "action_id": action_id}
    if value:
        b["value"] = value[:2000]
    if style:
        b["style"] = style
    if url:
        b["url"] = url
    if confirm:
        b["confirm"] = confirm
    return b


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def confirm_dialog(title: str, text: str, ok: str = "Yes", deny: str = "Cancel") -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": truncate(title, 100)},
        "text": {"type": "mrkdwn", "text": truncate(text, 300)},
        "confirm": {"type": "plain_text", "text": ok},
        "deny": {"type": "plain_text", "text": deny},
        "style": "danger",
    }


def message(text: str, blocks: Sequence[dict[str, Any]] | None = None, *, ephemeral: bool = True) -> dict[str, Any]:
    """A message payload usable as an ack body, a respond() call or chat.postMessage kwargs."""
    payload: dict[str, Any] = {"text": truncate(text, 3000)}
    if blocks:
        payload["blocks"] = list(blocks)[:MAX_MESSAGE_BLOCKS]
    if ephemeral:
        payload["response_type"] = "ephemeral"
    return payload


def notice(text: str, *, ephemeral: bool = True) -> dict[str, Any]:
    """A one-section message (errors, confirmations)."""
    return message(text, [section(text)], ephemeral=ephemeral)


def help_message() -> dict[str, Any]:
    lines = [f"`/fblink {cmd}` — {desc}" for cmd, desc in USAGE]
    text = "*fblink* links your Facebook Pages to Vonage and reminds you before the links expire.\n" + "\n".join(lines)
    return message("fblink commands", [section(text)])


def login_message(url: str, *, rerequest_scopes: Sequence[str] = ()) -> dict[str, Any]:
    if rerequest_scopes:
        text = (
            "fblink still needs these Facebook permissions: "
            + ", ".join(f"`{s}`" for s in rerequest_scopes)
            + ". Log in again and allow them."
        )
    else:
        text = "Log in with Facebook so fblink can see the Pages you manage. The link is yours alone and works for 10 minutes."
    return message(
        "Continue with Facebook",
        [section(text), actions(button("Continue with Facebook", "login_open", "login", style="primary", url=url))],
    )


def paginate(items: Sequence[Any], offset: int, size: int = PAGE_SIZE) -> tuple[Sequence[Any], int | None]:
    """The slice to show and the offset of the next slice (None when this is the last)."""
    offset = max(0, offset)
    chunk = items[offset : offset + size]
    nxt = offset + size if offset + size < len(items) else None
    return chunk, nxt


def nav_buttons(action_id: str, offset: int, nxt: int | None, size: int = PAGE_SIZE) -> list[dict[str, Any]]:
    buttons = []
    if offset > 0:
        buttons.append(button("Previous", f"{action_id}_prev", str(max(0, offset - size))))
    if nxt is not None:
        buttons.append(button("Next", action_id, str(nxt)))
    return buttons
