"""Block Kit through slack_sdk's models: Slack's limits (block counts, text lengths, option
counts, titles) are checked by the library when each block is built.

Builders return plain dicts (what the Web API and an ack take). User- and Facebook-controlled
text is escaped with :func:`escape` and shown in ``verbatim`` text objects, so Slack does not
turn URLs or ``#channel`` names inside a Page name into links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.basic_components import ConfirmObject, MarkdownTextObject, Option, PlainTextObject
from slack_sdk.models.views import View

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


def mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, SECTION_TEXT_LIMIT), verbatim=True)


def plain(text: str, limit: int = 75) -> PlainTextObject:
    return PlainTextObject(text=truncate(text, limit) or "-", emoji=True)


def section(text: str, accessory: Block | None = None) -> Block:
    return SectionBlock(text=mrkdwn(text), accessory=accessory).to_dict()


def context(text: str) -> Block:
    return ContextBlock(elements=[mrkdwn(text)]).to_dict()


def header(text: str) -> Block:
    return HeaderBlock(text=plain(text, 150)).to_dict()


def divider() -> Block:
    return DividerBlock().to_dict()


def confirm_dialog(title: str, text: str, ok: str = "Yes", deny: str = "Cancel") -> Block:
    return ConfirmObject(
        title=plain(title, 100),
        text=MarkdownTextObject(text=truncate(text, 300), verbatim=True),
        confirm=plain(ok, 30),
        deny=plain(deny, 30),
        style="danger",
    ).to_dict()


def button(
    text: str,
    action_id: str,
    value: str = "",
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: Block | None = None,
) -> Block:
    return ButtonElement(
        text=plain(text),
        action_id=action_id,
        value=value or None,
        style=style,
        url=url,
        confirm=ConfirmObject.parse(confirm) if confirm else None,
    ).to_dict()


def actions(*elements: Block, block_id: str | None = None) -> Block:
    return ActionsBlock(elements=list(elements), block_id=block_id).to_dict()


def static_select(
    action_id: str, options: Sequence[tuple[str, str]], *, placeholder: str | None = None, initial: str | None = None
) -> Block:
    """A select menu from (label, value) pairs; ``initial`` names the value shown as chosen."""
    opts = [Option(value=value[:150], text=plain(label)) for label, value in options]
    chosen = next((o for o in opts if o.value == initial), None)
    return StaticSelectElement(
        action_id=action_id,
        options=opts,
        initial_option=chosen,
        placeholder=plain(placeholder, 150) if placeholder else None,
    ).to_dict()


def text_input(block_id: str, label: str, *, hint: str | None = None, max_length: int = 100) -> Block:
    return InputBlock(
        block_id=block_id,
        label=plain(label, 2000),
        hint=plain(hint, 2000) if hint else None,
        element=PlainTextInputElement(action_id=block_id, max_length=max_length),
    ).to_dict()


def select_input(
    block_id: str, label: str, element: Block, *, optional: bool = False, dispatch_action: bool = False
) -> Block:
    return InputBlock(
        block_id=block_id,
        label=plain(label, 2000),
        element=element,
        optional=optional or None,
        dispatch_action=dispatch_action or None,
    ).to_dict()


def modal(
    callback_id: str,
    title: str,
    blocks: Sequence[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    private_metadata: str | None = None,
) -> Block:
    return View(
        type="modal",
        callback_id=callback_id,
        title=plain(title, 24),
        blocks=list(blocks),
        submit=plain(submit, 24) if submit else None,
        close=plain(close, 24),
        private_metadata=private_metadata,
    ).to_dict()


def home(blocks: Sequence[Block]) -> Block:
    return View(type="home", blocks=list(blocks)[:MAX_VIEW_BLOCKS]).to_dict()


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
