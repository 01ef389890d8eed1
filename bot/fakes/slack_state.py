"""The conversation state behind the fake Slack: channels, ephemerals, response_urls, modals, Home tabs.

Kept apart from the HTTP layer so a browser demo can render exactly what each user would see, with
Slack's semantics: chat.update replaces in place, ephemerals are visible to one user, response_url
answers act on the message they belong to, a trigger_id opens one view within 3 seconds, and
views.update checks the view's hash. Every change bumps ``version`` (for polling).
"""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

BOT_USER = "UBOT"
BOT_ID = "B0BOT"
APP_ID = "A0001"


@dataclass
class Message:
    """One message as a channel member would see it."""

    channel: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    user: str = BOT_USER
    bot_id: str | None = BOT_ID
    ephemeral_to: str | None = None  # only this user sees it
    thread_ts: str | None = None
    edited: bool = False
    source: str = "chat.postMessage"  # or chat.postEphemeral, response_url, ack
    metadata: dict[str, Any] | None = None  # message metadata: {"event_type", "event_payload"}

    def visible_to(self, user: str | None) -> bool:
        return self.ephemeral_to is None or (user is not None and self.ephemeral_to == user)

    def api(self, team_id: str) -> dict[str, Any]:
        """The `message` object Slack returns from chat.postMessage / chat.update."""
        out: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "ts": self.ts,
            "blocks": self.blocks,
            "team": team_id,
        }
        if self.bot_id:
            out.update(
                subtype="bot_message",
                bot_id=self.bot_id,
                app_id=APP_ID,
                bot_profile={
                    "id": self.bot_id,
                    "app_id": APP_ID,
                    "name": "fblink",
                    "deleted": False,
                    "updated": 1700000000,
                    "team_id": team_id,
                    "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
                },
            )
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        return out


@dataclass
class ResponseHook:
    """Where a response_url posts: the channel, the user who acted, and the message it belongs to."""

    channel: str | None
    user: str | None
    message_ts: str | None
    uses: int = 0
    last_ts: str | None = None  # the message this hook last posted (replace_original acts on it)


class Conversations:
    """Mutable state; callers hold the fake's lock around every method."""

    response_url_uses = 5  # Slack: up to 5 posts per response_url within 30 minutes
    trigger_ttl = 3.0

    def __init__(self, team_id: str) -> None:
        self.team_id = team_id
        self.version = 0
        self.channels: dict[str, list[Message]] = {}
        self.hooks: dict[str, ResponseHook] = {}
        self.triggers: dict[str, tuple[str | None, float]] = {}  # trigger_id -> (user, issued monotonic)
        self.modals: dict[str, list[dict[str, Any]]] = {}  # user -> stack of open views (root first)
        self.homes: dict[str, dict[str, Any]] = {}
        self.views_by_id: dict[str, tuple[str, dict[str, Any]]] = {}  # view id -> (user, view)
        self._seq = itertools.count(1)

    def bump(self) -> None:
        self.version += 1

    def new_ts(self) -> str:
        return f"{int(time.time())}.{next(self._seq):06d}"

    # -- messages ----------------------------------------------------------------------
    def post(self, msg: Message) -> Message:
        self.channels.setdefault(msg.channel, []).append(msg)
        self.bump()
        return msg

    def find(self, channel: str, ts: str) -> Message | None:
        return next((m for m in self.channels.get(channel, []) if m.ts == ts), None)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None) -> Message | None:
        msg = self.find(channel, ts)
        if msg is None:
            return None
        msg.text, msg.blocks, msg.edited = text, blocks if blocks is not None else [], True
        self.bump()
        return msg

    def delete(self, channel: str, ts: str) -> bool:
        msg = self.find(channel, ts)
        if msg is None:
            return False
        self.channels[channel].remove(msg)
        self.bump()
        return True

    def history(self, channel: str, user: str | None = None) -> list[Message]:
        return [m for m in self.channels.get(channel, []) if m.visible_to(user)]

    # -- response_url ------------------------------------------------------------------
    def register_hook(self, name: str, channel: str | None, user: str | None, message_ts: str | None) -> None:
        self.hooks[name] = ResponseHook(channel, user, message_ts)

    def respond(self, name: str, body: dict[str, Any]) -> tuple[int, str]:
        """Apply a response_url post; (HTTP status, body) the way Slack answers it."""
        hook = self.hooks.setdefault(name, ResponseHook(None, None, None))
        if hook.uses >= self.response_url_uses:
            return 404, "used_url"
        hook.uses += 1
        if hook.channel is None:
            return 200, "ok"  # unregistered: recorded by the caller, no conversation to act on
        target = hook.message_ts or hook.last_ts
        if body.get("delete_original"):
            if not (target and self.delete(hook.channel, target)):
                return 404, "message_not_found"
            return 200, "ok"
        text, blocks = str(body.get("text") or ""), body.get("blocks")
        if not text and not blocks:
            return 400, "no_text"
        if body.get("replace_original") and target and self.find(hook.channel, target):
            replaced = self.update(hook.channel, target, text, blocks)
            if replaced is not None and replaced.ephemeral_to is not None:
                replaced.edited = False  # Slack marks no "(edited)" on an ephemeral message it replaced
            return 200, "ok"
        ephemeral = body.get("response_type", "ephemeral") != "in_channel"
        msg = self.post(
            Message(
                channel=hook.channel,
                ts=self.new_ts(),
                text=text,
                blocks=blocks or [],
                ephemeral_to=hook.user if ephemeral else None,
                source="response_url",
                thread_ts=body.get("thread_ts"),
            )
        )
        hook.last_ts = msg.ts
        return 200, "ok"

    # -- triggers and views ------------------------------------------------------------
    def issue_trigger(self, trigger_id: str, user: str | None) -> None:
        self.triggers[trigger_id] = (user, time.monotonic())

    def use_trigger(self, trigger_id: str) -> tuple[str, str | None]:
        """A trigger opens one view, within 3 seconds of the interaction: ("ok" | "expired" | "unknown", user)."""
        issued = self.triggers.pop(trigger_id, None)
        if issued is None:
            return "unknown", None
        user, at = issued
        return ("ok" if time.monotonic() - at <= self.trigger_ttl else "expired"), user

    def _full_view(self, view: dict[str, Any], view_id: str, root: str, previous: str | None) -> dict[str, Any]:
        h = f"{int(time.time())}.{hashlib.sha1(f'{view_id}{next(self._seq)}'.encode()).hexdigest()[:8]}"
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": h,
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous,
            "root_view_id": root,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def open_view(self, user: str, view: dict[str, Any], *, push: bool = False) -> dict[str, Any]:
        view_id = f"V{next(self._seq):010d}"
        stack = self.modals.setdefault(user, [])
        if not push:
            stack.clear()
        full = self._full_view(view, view_id, stack[0]["id"] if stack else view_id, stack[-1]["id"] if stack else None)
        stack.append(full)
        self.views_by_id[view_id] = (user, full)
        self.bump()
        return full

    def plant_view(self, user: str, view: dict[str, Any]) -> None:
        """A view a test says Slack has open (its payload came from it)."""
        if view.get("id") in self.views_by_id or not isinstance(view.get("id"), str):
            return
        self.views_by_id[view["id"]] = (user, view)
        if view.get("type") == "home":
            self.homes[user] = view
        else:
            self.modals.setdefault(user, []).append(view)

    def lookup(self, view_id: str | None, external_id: str | None) -> tuple[str, dict[str, Any]] | None:
        if view_id:
            return self.views_by_id.get(view_id)
        return next(
            ((u, v) for u, v in self.views_by_id.values() if external_id and v.get("external_id") == external_id), None
        )

    def replace_view(self, user: str, old: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
        full = self._full_view(view, old["id"], old.get("root_view_id") or old["id"], old.get("previous_view_id"))
        self.views_by_id[old["id"]] = (user, full)
        stack = self.modals.get(user, [])
        for i, v in enumerate(stack):
            if v["id"] == old["id"]:
                stack[i] = full
        if self.homes.get(user, {}).get("id") == old["id"]:
            self.homes[user] = full
        self.bump()
        return full

    def publish_home(self, user: str, view: dict[str, Any]) -> dict[str, Any]:
        old = self.homes.get(user)
        if old is not None:
            return self.replace_view(user, old, view)
        full = self._full_view(view, f"V{next(self._seq):010d}", "", None)
        full["root_view_id"] = full["id"]
        self.homes[user] = full
        self.views_by_id[full["id"]] = (user, full)
        self.bump()
        return full

    def close_modals(self, user: str) -> None:
        self.modals.pop(user, None)
        self.bump()
