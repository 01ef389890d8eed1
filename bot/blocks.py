"""Block Kit builders and mrkdwn helpers: plain dicts, fast enough for the ack path.

Every payload fblink builds is checked against slack_sdk's validated Block Kit models
(``slack_sdk.models``) by the fake Slack the tests and the demo use
(:mod:`bot.fakes.slack_limits`), so Slack's limits are checked by the library; here only
text we do not control (names) is shortened so that it fits. Building each block as a
model at run time cost ~260 µs per section and tripled `/fblink status`'s ack time.

User- and Facebook-controlled text is escaped with :func:`escape` and shown in
``verbatim`` text objects, so Slack does not turn URLs or ``#channel`` names inside a
Page name into links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.clock import iso

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT_LIMIT = 3000
PAGE_SIZE = 10  # rows per message page: each row is a section + actions, plus header/footer

Block = dict[str, Any]


def escape(text: str) -> str:
    """Escape user-controlled text for mrkdwn: & < > are control characters in Slack."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Shorten text we do not control (names) to fit a limit, rather than have Slack refuse it."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_date(ts: int, fallback: str | None = None) -> str:
    """A date each reader sees in their own time zone."""
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback or iso(ts)}>"


def mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> Block:
    return {"type": "mrkdwn", "text": truncate(text, limit), "verbatim": True}


def plain(text: str, limit: int = 75) -> Block:
    return {"type": "plain_text", "text": truncate(text, limit) or "-", "emoji": True}


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if accessory:
        block["accessory"] = accessory
    return block


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, 150)}


def divider() -> Block:
    return {"type": "divider"}


def confirm_dialog(title: str, text: str, ok: str = "Yes", deny: str = "Cancel") -> Block:
    return {
        "title": plain(title, 100),
        "text": mrkdwn(text, 300),
        "confirm": plain(ok, 30),
        "deny": plain(deny, 30),
        "style": "danger",
    }


def button(
    text: str,
    action_id: str,
    value: str = "",
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: Block | None = None,
) -> Block:
    b: Block = {"type": "button", "text": plain(text), "action_id": action_id}
    if value:
        b["value"] = value[:2000]
    if style:
        b["style"] = style
    if url:
        b["url"] = url
    if confirm:
        b["confirm"] = confirm
    return b


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def static_select(
    action_id: str, options: Sequence[tuple[str, str]], *, placeholder: str | None = None, initial: str | None = None
) -> Block:
    """A select menu from (label, value) pairs; ``initial`` names the value shown as chosen."""
    opts = [{"text": plain(label), "value": value[:150]} for label, value in options][:100]
    el: Block = {"type": "static_select", "action_id": action_id, "options": opts}
    chosen = next((o for o in opts if o["value"] == initial), None)
    if chosen:
        el["initial_option"] = chosen
    if placeholder:
        el["placeholder"] = plain(placeholder, 150)
    return el


MAX_OPTIONS = 100  # Slack's limit on a static select's options, and on one options answer


def option(label: str, value: str) -> Block:
    return {"text": plain(label), "value": value[:150]}


def external_select(action_id: str, *, placeholder: str | None = None, initial: tuple[str, str] | None = None) -> Block:
    """A select whose options fblink answers as the person types (block_suggestion): for lists over 100.
    ``initial``: the (label, value) shown as chosen."""
    el: Block = {"type": "external_select", "action_id": action_id, "min_query_length": 0}
    if placeholder:
        el["placeholder"] = plain(placeholder, 150)
    if initial:
        el["initial_option"] = option(*initial)
    return el


def text_input(block_id: str, label: str, *, hint: str | None = None, max_length: int = 100) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": {"type": "plain_text_input", "action_id": block_id, "max_length": max_length},
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def select_input(
    block_id: str, label: str, element: Block, *, optional: bool = False, dispatch_action: bool = False
) -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, 2000), "element": element}
    if optional:
        block["optional"] = True
    if dispatch_action:
        block["dispatch_action"] = True
    return block


def modal(
    callback_id: str,
    title: str,
    blocks: Sequence[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    private_metadata: str | None = None,
) -> Block:
    view: Block = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, 24),
        "close": plain(close, 24),
        "blocks": list(blocks)[:MAX_VIEW_BLOCKS],
    }
    if submit:
        view["submit"] = plain(submit, 24)
    if private_metadata:
        view["private_metadata"] = private_metadata[:3000]
    return view


def home(blocks: Sequence[Block]) -> Block:
    return {"type": "home", "blocks": list(blocks)[:MAX_VIEW_BLOCKS]}


def message(text: str, blocks: Sequence[Block] | None = None, *, ephemeral: bool = True) -> dict[str, Any]:
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


def paginate(items: Sequence[Any], offset: int, size: int = PAGE_SIZE) -> tuple[Sequence[Any], int | None]:
    """The slice to show and the offset of the next slice (None when this is the last)."""
    offset = max(0, offset)
    chunk = items[offset : offset + size]
    nxt = offset + size if offset + size < len(items) else None
    return chunk, nxt


def nav_buttons(action_id: str, offset: int, nxt: int | None, size: int = PAGE_SIZE) -> list[Block]:
    buttons = []
    if offset > 0:
        buttons.append(button("Previous", f"{action_id}_prev", str(max(0, offset - size))))
    if nxt is not None:
        buttons.append(button("Next", action_id, str(nxt)))
    return buttons
