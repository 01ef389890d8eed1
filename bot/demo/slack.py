"""The demo's Slack workspace: the FakeSlack Web API plus what a Slack client shows.

FakeSlack (bot/fakes) answers fblink's Web API calls; this subclass also keeps the
state a person sees: channel histories (chat.update in place), ephemerals, the
open modal stack, the Home tab, and the response_url semantics (replace, delete,
new ephemeral). The names follow the planned stateful FakeSlack of the
``slack-wire`` branch (response_url / record_ack / history / modal_of / home_of /
version), so this module shrinks to nothing once that branch lands.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from bot.fakes.base import Request, Response
from bot.fakes.slack import FakeSlack

TRIGGER_LIFETIME = 3.0  # seconds a trigger_id is valid, once


@dataclass
class Message:
    channel: str
    ts: str
    user: str  # author: the bot's user id or a person
    text: str
    blocks: list[dict[str, Any]]
    ephemeral_to: str | None = None  # only this user sees it
    edited: bool = False
    at: int = 0  # when it was posted, on the demo's clock (ts values come from the Web API fake)

    def as_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "ts": self.ts, "user": self.user, "text": self.text,
                "blocks": self.blocks, "ephemeral": self.ephemeral_to is not None, "edited": self.edited, "at": self.at}


@dataclass
class Hook:
    """Where a response_url answers: the channel, the person and (maybe) the message it came from."""

    channel: str
    user: str
    message_ts: str | None
    ephemeral: bool
    uses: int = 0


@dataclass
class Trigger:
    user: str
    issued: float
    used: bool = False


@dataclass
class Surface:
    modals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user -> view stack
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> published home view


class DemoSlack(FakeSlack):
    """FakeSlack that remembers what each person would see."""

    name = "demo-slack"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.channels: dict[str, list[Message]] = {}
        self.hooks: dict[str, Hook] = {}
        self.triggers: dict[str, Trigger] = {}
        self.surface = Surface()
        self.version = 0
        self.clock: Callable[[], float] = time.time  # the demo points this at its movable clock
        self._seq = itertools.count(1)
        self._state_lock = threading.RLock()

    # -- what the web client reads -----------------------------------------------
    def history(self, channel: str, user: str) -> list[dict[str, Any]]:
        with self._state_lock:
            return [m.as_json() for m in self.channels.get(channel, []) if m.ephemeral_to in (None, user)]

    def modal_of(self, user: str) -> dict[str, Any] | None:
        with self._state_lock:
            stack = self.surface.modals.get(user) or []
            return stack[-1] if stack else None

    def home_of(self, user: str) -> dict[str, Any] | None:
        with self._state_lock:
            return self.surface.homes.get(user)

    def find(self, channel: str, ts: str) -> Message | None:
        with self._state_lock:
            return next((m for m in self.channels.get(channel, []) if m.ts == ts), None)

    # -- what the demo server does on the person's behalf ---------------------------
    def response_url(self, name: str = "r", channel: str = "", user: str = "", message_ts: str | None = None,
                     *, ephemeral: bool = True) -> str:
        """A response_url bound to where the interaction happened (Slack's are single-workspace, 30 min, 5 uses)."""
        if channel:
            with self._state_lock:
                self.hooks[name] = Hook(channel, user, message_ts, ephemeral)
        return f"{self.url}/response/{name}"

    def new_trigger(self, user: str) -> str:
        trigger = f"{next(self._seq)}{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._state_lock:
            self.triggers[trigger] = Trigger(user, time.monotonic())
        return trigger

    def post_as(self, channel: str, user: str, text: str) -> Message:
        """What the person typed, shown in the channel as Slack shows a slash command to its author."""
        return self._add(Message(channel, self._new_ts(), user, text, [], ephemeral_to=user))

    def record_ack(self, channel: str, user: str, body: dict[str, Any], hook: str | None = None) -> Message | None:
        """A slash command's HTTP answer: shown to the person (or the channel with in_channel)."""
        if not body or (not body.get("text") and not body.get("blocks")):
            return None
        ephemeral = body.get("response_type", "ephemeral") != "in_channel"
        msg = self._add(Message(channel, self._new_ts(), self.bot_user_id, str(body.get("text", "")),
                                list(body.get("blocks") or []), ephemeral_to=user if ephemeral else None))
        if hook and hook in self.hooks:
            self.hooks[hook].message_ts = msg.ts
        return msg

    def open_modal(self, user: str, view: dict[str, Any], *, push: bool = False) -> dict[str, Any]:
        full = self._full_view(view, user)
        with self._state_lock:
            stack = self.surface.modals.setdefault(user, [])
            if not push:
                stack.clear()
            stack.append(full)
        self._bump()
        return full

    def close_modal(self, user: str, *, clear: bool = False) -> None:
        with self._state_lock:
            stack = self.surface.modals.get(user) or []
            if clear:
                stack.clear()
            elif stack:
                stack.pop()
        self._bump()

    def set_modal_errors(self, user: str, errors: dict[str, str]) -> None:
        with self._state_lock:
            top = self.modal_of(user)
            if top is not None:
                top["errors"] = dict(errors)
        self._bump()

    # -- internals --------------------------------------------------------------
    def _new_ts(self) -> str:
        return f"{time.time():.6f}"[:-6] + f"{next(self._seq) % 1000000:06d}"

    def _bump(self) -> None:
        with self.changed:
            self.version += 1
            self.changed.notify_all()

    def _add(self, msg: Message) -> Message:
        msg.at = int(self.clock())
        with self._state_lock:
            self.channels.setdefault(msg.channel, []).append(msg)
        self._bump()
        return msg

    def _full_view(self, view: dict[str, Any], user: str, view_id: str | None = None) -> dict[str, Any]:
        view_id = view_id or f"V{next(self._seq):08d}{secrets.token_hex(2).upper()}"
        return {
            **view, "id": view_id, "team_id": self.team_id, "state": {"values": {}}, "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""), "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")), "root_view_id": view_id, "previous_view_id": None,
            "app_id": "A0DEMOAPP", "app_installed_team_id": self.team_id, "bot_id": "B0DEMOBOT", "_user": user,
        }

    def _find_view(self, view_id: str) -> tuple[str, int] | None:
        for user, stack in self.surface.modals.items():
            for i, v in enumerate(stack):
                if v["id"] == view_id:
                    return user, i
        return None

    # -- the Web API, with state ----------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path.startswith("/response/"):
            return self._respond(request)
        return super().handle(request)

    def _respond(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        try:
            body = request.json
        except ValueError:
            return Response(400, "invalid_payload")
        self._record(self.responses, {"url_name": name, **body})
        hook = self.hooks.get(name)
        if hook is None:
            return Response(404, "no_hook")
        with self._state_lock:
            hook.uses += 1
            if hook.uses > 5:
                return Response(404, "used_url")
            original = self.find(hook.channel, hook.message_ts) if hook.message_ts else None
            if body.get("delete_original") and original is not None:
                self.channels[hook.channel].remove(original)
            elif body.get("replace_original") and original is not None:
                original.text = str(body.get("text", ""))
                original.blocks = list(body.get("blocks") or [])
                original.edited = True
            else:
                ephemeral = body.get("response_type", "ephemeral") != "in_channel"
                msg = Message(hook.channel, self._new_ts(), self.bot_user_id, str(body.get("text", "")),
                              list(body.get("blocks") or []), ephemeral_to=hook.user if ephemeral else None)
                msg.at = int(self.clock())
                self.channels.setdefault(hook.channel, []).append(msg)
                if hook.message_ts is None:
                    hook.message_ts = msg.ts
        self._bump()
        return Response(200, "ok")

    def api_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        out = super().api_chat_postMessage(p)
        if out.get("ok"):
            self._add(Message(out["channel"], out["ts"], self.bot_user_id, str(p.get("text", "")), list(p.get("blocks") or [])))
        return out

    def api_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        out = super().api_chat_postEphemeral(p)
        if out.get("ok"):
            self._add(Message(p["channel"], out["message_ts"], self.bot_user_id, str(p.get("text", "")),
                              list(p.get("blocks") or []), ephemeral_to=p.get("user")))
        return out

    def api_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self.find(str(p.get("channel")), str(p.get("ts")))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        out = super().api_chat_update(p)
        if out.get("ok"):
            with self._state_lock:
                msg.text = str(p.get("text", msg.text))
                if "blocks" in p:
                    msg.blocks = list(p.get("blocks") or [])
                msg.edited = True
            self._bump()
        return out

    def api_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._open(p, push=False)

    def api_views_push(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._open(p, push=True)

    def _open(self, p: dict[str, Any], *, push: bool) -> dict[str, Any]:
        out = super().api_views_push(p) if push else super().api_views_open(p)
        if not out.get("ok"):
            return out
        with self._state_lock:
            trigger = self.triggers.get(str(p.get("trigger_id")))
            if trigger is None:
                return {"ok": False, "error": "invalid_trigger_id"}
            if trigger.used or time.monotonic() - trigger.issued > TRIGGER_LIFETIME:
                return {"ok": False, "error": "expired_trigger_id"}
            trigger.used = True
        view = self.open_modal(trigger.user, p["view"], push=push)
        return {"ok": True, "view": {k: v for k, v in view.items() if not k.startswith("_")}}

    def api_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        out = super().api_views_update(p)
        if not out.get("ok"):
            return out
        with self._state_lock:
            where = self._find_view(str(p.get("view_id")))
            if where is None:
                return {"ok": False, "error": "not_found"}
            user, i = where
            current = self.surface.modals[user][i]
            if p.get("hash") and p["hash"] != current["hash"]:
                return {"ok": False, "error": "hash_conflict"}
            view = self._full_view(p["view"], user, view_id=current["id"])
            view["state"] = current.get("state", {"values": {}})
            self.surface.modals[user][i] = view
        self._bump()
        return {"ok": True, "view": {k: v for k, v in view.items() if not k.startswith("_")}}

    def api_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        out = super().api_views_publish(p)
        if out.get("ok"):
            with self._state_lock:
                self.surface.homes[str(p["user_id"])] = {**p["view"], "id": out["view"]["id"]}
            self._bump()
        return out

