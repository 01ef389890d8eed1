"""Block Kit and view limits the way Slack enforces them, for the fake Web API.

Slack refuses an over-limit message with ``invalid_blocks`` and an over-limit view with
``invalid_arguments``; both carry ``response_metadata.messages`` naming the JSON pointer,
e.g. ``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
Limits from the Block Kit reference (blocks, block elements, composition objects, views).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MESSAGE_TEXT = 40_000


def _too_long(value: Any, limit: int, pointer: str, out: list[str]) -> None:
    if isinstance(value, str) and len(value) > limit:
        out.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]")


def _text_obj(obj: Any, limit: int, pointer: str, out: list[str]) -> None:
    if obj is None:
        return
    if (
        not isinstance(obj, dict)
        or obj.get("type") not in ("plain_text", "mrkdwn")
        or not isinstance(obj.get("text"), str)
    ):
        out.append(f"[ERROR] must provide an object [json-pointer:{pointer}]")
        return
    if obj["text"] == "":
        out.append(f"[ERROR] must be more than 0 characters [json-pointer:{pointer}/text]")
    _too_long(obj["text"], limit, pointer + "/text", out)


def _options(options: Any, pointer: str, out: list[str]) -> None:
    if not isinstance(options, list):
        return
    if not options:  # Slack refuses a menu with nothing to choose
        out.append(f"[ERROR] must provide at least 1 items [json-pointer:{pointer}]")
    if len(options) > 100:
        out.append(f"[ERROR] no more than 100 items allowed [json-pointer:{pointer}]")
    for i, opt in enumerate(options):
        if isinstance(opt, dict):
            _text_obj(opt.get("text"), 75, f"{pointer}/{i}/text", out)
            _too_long(opt.get("value"), 150, f"{pointer}/{i}/value", out)


def _element(el: Any, pointer: str, out: list[str]) -> None:
    if not isinstance(el, dict):
        out.append(f"[ERROR] must provide an object [json-pointer:{pointer}]")
        return
    _too_long(el.get("action_id"), 255, pointer + "/action_id", out)
    if el.get("type") == "button":
        _text_obj(el.get("text"), 75, pointer + "/text", out)
        _too_long(el.get("value"), 2000, pointer + "/value", out)
        _too_long(el.get("url"), 3000, pointer + "/url", out)
    if el.get("type") in ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"):
        _options(el.get("options"), pointer + "/options", out)
        _text_obj(el.get("placeholder"), 150, pointer + "/placeholder", out)


def check_blocks(blocks: Any, limit: int, root: str = "/blocks") -> list[str]:
    """Slack's error messages for `blocks`, or [] when Slack would accept them."""
    out: list[str] = []
    if not isinstance(blocks, list):
        return [f"[ERROR] must provide an array [json-pointer:{root}]"]
    if len(blocks) > limit:
        out.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{root}]")
    for i, block in enumerate(blocks):
        p = f"{root}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            out.append(f"[ERROR] missing required field: type [json-pointer:{p}]")
            continue
        _too_long(block.get("block_id"), 255, p + "/block_id", out)
        kind = block["type"]
        if kind == "section":
            _text_obj(block.get("text"), 3000, p + "/text", out)
            fields = block.get("fields") or []
            if len(fields) > 10:
                out.append(f"[ERROR] no more than 10 items allowed [json-pointer:{p}/fields]")
            for j, f in enumerate(fields):
                _text_obj(f, 2000, f"{p}/fields/{j}", out)
            if block.get("text") is None and not fields:
                out.append(f"[ERROR] must provide either text or fields [json-pointer:{p}]")
            if "accessory" in block:
                _element(block["accessory"], p + "/accessory", out)
        elif kind == "header":
            _text_obj(block.get("text"), 150, p + "/text", out)
        elif kind == "context":
            els = block.get("elements") or []
            if len(els) > 10:
                out.append(f"[ERROR] no more than 10 items allowed [json-pointer:{p}/elements]")
        elif kind == "actions":
            els = block.get("elements") or []
            if len(els) > 25:
                out.append(f"[ERROR] no more than 25 items allowed [json-pointer:{p}/elements]")
            for j, el in enumerate(els):
                _element(el, f"{p}/elements/{j}", out)
        elif kind == "input":
            _text_obj(block.get("label"), 2000, p + "/label", out)
            _element(block.get("element"), p + "/element", out)
    if not out:
        out += _model_errors(blocks, root)
    return out


def _model_errors(blocks: list[Any], root: str) -> list[str]:
    """What slack_sdk's Block Kit models refuse (they encode Slack's documented limits), for
    anything the hand-written checks above do not cover."""
    out: list[str] = []
    for i, raw in enumerate(blocks):
        try:
            parsed = Block.parse(raw)
            if parsed is None:
                out.append(f"[ERROR] unsupported block [json-pointer:{root}/{i}]")
            else:
                parsed.to_dict()  # validates this block and every element inside it
        except (SlackObjectFormationError, KeyError, TypeError, ValueError, AttributeError) as exc:
            out.append(f"[ERROR] {exc} [json-pointer:{root}/{i}]")
    return out


def check_view(view: Any) -> list[str]:
    """Slack's error messages for a view object (modal or home)."""
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        return ["[ERROR] must be one of modal, home [json-pointer:/view/type]"]
    out = check_blocks(view.get("blocks", []), VIEW_BLOCKS, "/view/blocks")
    if view["type"] == "modal":
        if view.get("title") is None:
            out.append("[ERROR] missing required field: title [json-pointer:/view/title]")
        for key in ("title", "submit", "close"):
            _text_obj(view.get(key), 24, f"/view/{key}", out)
    _too_long(view.get("private_metadata"), 3000, "/view/private_metadata", out)
    _too_long(view.get("callback_id"), 255, "/view/callback_id", out)
    _too_long(view.get("external_id"), 255, "/view/external_id", out)
    return out


def error(code: str, messages: list[str] | None = None) -> dict[str, Any]:
    """A Web API refusal as Slack sends it: HTTP 200, ``ok: false``, messages in ``response_metadata``."""
    return {"ok": False, "error": code, "response_metadata": {"messages": messages or []}}


def view_error(view: Any) -> dict[str, Any] | None:
    """The answer to a view Slack would refuse (``invalid_arguments``), or None."""
    problems = check_view(view)
    return error("invalid_arguments", problems) if problems else None
