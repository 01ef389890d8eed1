"""Click what fblink really posted: find a button or select in the blocks the fake Slack received
(messages, response_url answers, views, or a command's ack) and send Slack's payload for it.

A test that builds its own ``action_id`` and ``value`` keeps passing when fblink renames the button
it sends; one that finds the button as a user does (by its label, beside the Page it is about) and
sends what fblink put in it fails, as the real button would.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from bot.fakes import slack_payloads as sp
from tests.conftest import ENTERPRISE

_triggers = itertools.count(1)
EPHEMERAL_TS = "1700000000.000900"  # Slack gives an ephemeral message's ts in the container only


@dataclass(frozen=True)
class Posted:
    """A button or select as fblink sent it, and where it is shown."""

    element: dict[str, Any]
    block: dict[str, Any]
    before: dict[str, Any]  # for a row of buttons, the block above it (a Page's section above its buttons)
    surface: str  # "message" (chat.postMessage/update), "ephemeral" (response_url or ack), "view"
    source: dict[str, Any]  # the whole message, answer or view
    channel: str | None = None
    ts: str | None = None

    @property
    def label(self) -> str:
        """What the user reads: a button's text, or a select's input label."""
        if self.element.get("type") == "button":
            return str(self.element["text"]["text"])
        return str((self.block.get("label") or {}).get("text", ""))

    @property
    def action_id(self) -> str:
        return str(self.element["action_id"])

    @property
    def value(self) -> str:
        return str(self.element.get("value", ""))


Shown = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def elements(blocks: Iterable[dict[str, Any]]) -> Iterator[Shown]:
    """(element, block, the block above a row of buttons) for every interactive element: actions'
    elements, accessories, input elements."""
    above: dict[str, Any] = {}
    for block in blocks:
        if block.get("type") == "actions":
            for el in block.get("elements", []):
                yield el, block, above
        for key in ("accessory", "element"):
            el = block.get(key)
            if isinstance(el, dict) and "action_id" in el and el.get("type") != "plain_text_input":
                yield el, block, {}  # its own block says what it is about
        above = block


def everything(bot: Any, acks: Iterable[dict[str, Any]] = ()) -> list[Posted]:
    """Every element fblink has shown so far, oldest first."""
    out: list[Posted] = []
    for m in list(bot.slack.messages):
        surface = {"chat.postMessage": "message", "chat.update": "message", "chat.postEphemeral": "ephemeral"}
        if m["method"] in surface:
            for el, block, above in elements(m.get("blocks") or []):
                out.append(Posted(el, block, above, surface[m["method"]], m, m.get("channel"), m.get("ts")))
    for r in [*list(bot.slack.responses), *acks]:
        for el, block, above in elements(r.get("blocks") or []):
            out.append(Posted(el, block, above, "ephemeral", r))
    for v in list(bot.slack.views):
        for el, block, above in elements(v["view"].get("blocks") or []):
            out.append(Posted(el, block, above, "view", v))
    return out


def find(
    bot: Any,
    label: str,
    *,
    near: str | None = None,
    acks: Iterable[dict[str, Any]] = (),
    timeout: float = 5.0,
) -> Posted:
    """The latest button or select fblink showed with this label (in a block, or below one, that
    mentions ``near``): found as a user finds it, never by its action_id or value."""

    def match() -> Posted | None:
        for p in reversed(everything(bot, list(acks))):
            if p.label != label:
                continue
            if near is not None and near not in json.dumps([p.before, p.block], ensure_ascii=False):
                continue
            return p
        return None

    deadline = time.monotonic() + timeout
    while True:
        found = match()
        if found is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert found is not None, f"fblink showed no {label!r} (near={near!r})"
    return found


def click(
    bot: Any,
    posted: Posted,
    *,
    user: str = "U1",
    channel: str = "C1",
    response: str = "r",
    choose: str | None = None,
) -> httpx.Response:
    """Send the payload Slack sends when ``user`` clicks this button, or picks the option shown as
    ``choose`` in this select (one of the select's own options)."""
    el = posted.element
    block_id = posted.block.get("block_id", "b1")
    action: dict[str, Any]
    chosen: dict[str, Any] | None = None
    if el["type"] == "button":
        action = sp.button_action(el["action_id"], el.get("value", ""), block_id=block_id, text=el["text"]["text"])
    else:
        (chosen,) = [o for o in el["options"] if o["text"]["text"] == choose] if choose else [el["options"][0]]
        action = sp.select_action(el["action_id"], chosen["value"], block_id=block_id)
        action["selected_option"] = chosen
    trigger = bot.slack.issue_trigger(f"p{next(_triggers)}.{int(time.time())}.feedc0ffee", user)
    common: dict[str, Any] = dict(
        action=action, user_id=user, enterprise_id=ENTERPRISE, enterprise_name=sp.HOSTILE["enterprise_name"]
    )
    if posted.surface == "view":
        view = posted.source["view"]
        full = dict(bot.slack.home_of(user) if view.get("type") == "home" else bot.slack.modal_of(user) or view)
        if full.get("type") == "modal":  # Slack sends the view's state, the new choice in it
            full["state"] = {"values": view_state(full, {posted.label: chosen["text"]["text"]} if chosen else {})}
        payload = sp.block_actions(view=full, trigger_id=trigger, **common)
    else:
        where = posted.channel or channel
        ts = posted.ts or EPHEMERAL_TS
        payload = sp.block_actions(
            channel_id=where,
            message_ts=ts,
            message_blocks=posted.source.get("blocks"),
            is_ephemeral=posted.surface == "ephemeral",
            response_url=bot.slack.response_url(response, where, user, ts),
            trigger_id=trigger,
            **common,
        )
    return bot.interact(payload)  # type: ignore[no-any-return]


def submit_modal(bot: Any, choose: dict[str, str], *, user: str = "U1") -> httpx.Response:
    """Submit the modal open for ``user`` as Slack does: ``choose`` maps an input's label to the
    option shown in its select; the others keep their initial option."""
    view = bot.slack.modal_of(user)
    assert view is not None, "no modal is open"
    return bot.submit(  # type: ignore[no-any-return]
        view["callback_id"],
        view_state(view, choose),
        user=user,
        private_metadata=view.get("private_metadata", ""),
        view_id=view["id"],
    )


def view_state(view: dict[str, Any], choose: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A modal's ``state.values`` as Slack sends them: every select's initial option, unless the user
    chose another of its own options (``choose``: input label -> the option's text)."""
    values: dict[str, dict[str, Any]] = {}
    for block in view["blocks"]:
        el = block.get("element")
        if block.get("type") != "input" or not isinstance(el, dict):
            continue
        want = choose.get(block["label"]["text"])
        option = el.get("initial_option")
        if want is not None:
            option = next(o for o in el["options"] if o["text"]["text"] == want)
        if option is not None:
            values[block["block_id"]] = {el["action_id"]: {"type": el["type"], "selected_option": option}}
    return values
