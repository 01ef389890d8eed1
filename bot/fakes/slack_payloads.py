"""What Slack SENDS to an app: slash commands, interaction payloads, Events API envelopes.

Built from Slack's reference pages (slash commands "app_command" form fields, the
``block_actions`` / ``view_submission`` / ``view_closed`` interaction payloads, the Events
API ``event_callback`` envelope and ``app_home_opened``), not from what fblink happens to
read. Every documented field is present, and names default to hostile values (the word
``payload``, ``&``, ``=``, ``+``, ``%``, quotes, emoji, non-Latin scripts, 80-character
names) so any test built on these exercises the parser, not a tidy sample. Real Slack
restricts some of these (a team domain is ``[a-z0-9-]``); the hostile defaults go beyond
that on purpose where Slack lets users choose display text.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

_ids = itertools.count(1)

LONG_NAME = ("payload-" + "名前&=+%'\"🙂" * 8)[:80]
HOSTILE: dict[str, str] = {
    # a real team domain is lower-case ASCII, digits and hyphens: "payload" is the hostile part
    "team_domain": "payload-inc",
    "team_name": 'Payload & Sons = "100%" + 🙂 株式会社',
    "enterprise_name": "payload=1&x=%26 Ltd \u2019s Grid",
    "channel_name": "payload-&=+%-'\"-🚀-канал",
    "user_name": "payload=o'brien+%20&x",
    "real_name": 'Zoë "payload" O\'Brien & Co = 100% + 漢字 🙂',
    "display_name": "زهرة payload",
    "long_name": LONG_NAME,
    "text": "payload=1&x=%26+y \"quoted\" 'single' 🙂 ünïcödé 中文",
}
TEAM_ID = "T0001"
APP_ID = "A0001"
BOT_ID = "B0BOT"
BOT_USER = "UBOT"
TOKEN = "legacy-verification-token"  # deprecated verification token: still sent by Slack


def _trigger() -> str:
    return f"{next(_ids)}{int(time.time())}.98765.{hashlib.sha1(str(time.time_ns()).encode()).hexdigest()[:24]}"


def _ts() -> str:
    return f"{time.time():.6f}"


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def team_object(
    team_id: str, team_domain: str, enterprise_id: str | None, enterprise_name: str | None
) -> dict[str, Any]:
    team: dict[str, Any] = {"id": team_id, "domain": team_domain}
    if enterprise_id:
        team.update(enterprise_id=enterprise_id, enterprise_name=enterprise_name or "")
    return team


def user_object(user_id: str, user_name: str, team_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def enterprise_object(enterprise_id: str | None, enterprise_name: str | None) -> dict[str, Any] | None:
    return {"id": enterprise_id, "name": enterprise_name or ""} if enterprise_id else None


def slash_command(
    *,
    text: str,
    team_id: str = TEAM_ID,
    team_domain: str = HOSTILE["team_domain"],
    user_id: str = "U1",
    user_name: str = HOSTILE["user_name"],
    channel_id: str = "C1",
    channel_name: str = HOSTILE["channel_name"],
    response_url: str = "https://hooks.slack.com/commands/T0001/1/x",
    trigger_id: str | None = None,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    api_app_id: str = APP_ID,
    command: str = "/fblink",
    token: str = TOKEN,
    is_enterprise_install: bool = False,
) -> dict[str, str]:
    """The form fields of a slash-command POST, all strings, in Slack's order."""
    fields = {"token": token, "team_id": team_id, "team_domain": team_domain}
    if enterprise_id:  # Slack sends these only for Enterprise Grid workspaces
        fields.update(enterprise_id=enterprise_id, enterprise_name=enterprise_name or "")
    fields.update(
        channel_id=channel_id,
        channel_name=channel_name,
        user_id=user_id,
        user_name=user_name,
        command=command,
        text=text,
        api_app_id=api_app_id,
        is_enterprise_install="true" if is_enterprise_install else "false",
        response_url=response_url,
        trigger_id=trigger_id or _trigger(),
    )
    return fields


def button_action(
    action_id: str, value: str = "", *, block_id: str = "b1", text: str = "Go", style: str | None = None
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "text": plain(text),
        "value": value,
        "type": "button",
        "action_ts": _ts(),
    }
    if style:
        action["style"] = style
    return action


def select_action(
    action_id: str, value: str, *, label: str = HOSTILE["long_name"], block_id: str = "b1"
) -> dict[str, Any]:
    """A static_select choice; `value` lives in selected_option, not at the top level."""
    return {
        "action_id": action_id,
        "block_id": block_id,
        "type": "static_select",
        "selected_option": {"text": plain(label), "value": value},
        "placeholder": plain("Choose"),
        "action_ts": _ts(),
    }


def view_object(
    *,
    view_id: str | None = None,
    team_id: str = TEAM_ID,
    type: str = "modal",
    callback_id: str = "",
    blocks: list[dict[str, Any]] | None = None,
    private_metadata: str = "",
    state_values: dict[str, Any] | None = None,
    title: str = "fblink",
    external_id: str = "",
    root_view_id: str | None = None,
    previous_view_id: str | None = None,
    app_id: str = APP_ID,
    bot_id: str = BOT_ID,
    hash: str | None = None,
) -> dict[str, Any]:
    """A view as Slack echoes it back in payloads (and as views.* return it)."""
    vid = view_id or f"V{next(_ids):010d}"
    view: dict[str, Any] = {
        "id": vid,
        "team_id": team_id,
        "type": type,
        "blocks": blocks or [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": state_values or {}},
        "hash": hash or f"{int(time.time())}.{hashlib.sha1(vid.encode()).hexdigest()[:8]}",
        "title": plain(title),
        "clear_on_close": False,
        "notify_on_close": False,
        "close": plain("Cancel") if type == "modal" else None,
        "submit": plain("Submit") if type == "modal" else None,
        "previous_view_id": previous_view_id,
        "root_view_id": root_view_id or vid,
        "app_id": app_id,
        "external_id": external_id,
        "app_installed_team_id": team_id,
        "bot_id": bot_id,
    }
    if type == "home":
        view["title"] = plain("Home")
    return view


def message_object(
    *, ts: str, text: str = "", blocks: list[dict[str, Any]] | None = None, team_id: str = TEAM_ID
) -> dict[str, Any]:
    """A bot message as embedded in a block_actions payload."""
    return {
        "type": "message",
        "subtype": "bot_message",
        "text": text or HOSTILE["text"],
        "ts": ts,
        "user": BOT_USER,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": team_id,
        "blocks": blocks or [],
    }


def block_actions(
    *,
    action_id: str = "",
    value: str = "",
    action: dict[str, Any] | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = HOSTILE["team_domain"],
    user_id: str = "U1",
    user_name: str = HOSTILE["user_name"],
    channel_id: str = "C1",
    channel_name: str = HOSTILE["channel_name"],
    response_url: str | None = None,
    message_ts: str = "1700000000.000100",
    message_blocks: list[dict[str, Any]] | None = None,
    is_ephemeral: bool = False,
    view: dict[str, Any] | None = None,
    state_values: dict[str, Any] | None = None,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    api_app_id: str = APP_ID,
    trigger_id: str | None = None,
    token: str = TOKEN,
) -> dict[str, Any]:
    """A click. With `view` it came from a modal or the App Home (no channel, message or response_url)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "container": None,
        "trigger_id": trigger_id or _trigger(),
        "team": team_object(team_id, team_domain, enterprise_id, enterprise_name),
        "enterprise": enterprise_object(enterprise_id, enterprise_name),
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view["id"]}
        payload["view"] = view
    else:
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        payload["channel"] = {"id": channel_id, "name": channel_name}
        if not is_ephemeral:  # Slack omits the message for ephemeral ones
            payload["message"] = message_object(ts=message_ts, blocks=message_blocks, team_id=team_id)
        payload["state"] = {"values": state_values or {}}
        payload["response_url"] = response_url or f"https://hooks.slack.com/actions/{team_id}/{next(_ids)}/x"
    payload["actions"] = [action or button_action(action_id, value)]
    return payload


def view_submission(
    *,
    view: dict[str, Any] | None = None,
    callback_id: str = "",
    state_values: dict[str, Any] | None = None,
    private_metadata: str = "",
    view_id: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = HOSTILE["team_domain"],
    user_id: str = "U1",
    user_name: str = HOSTILE["user_name"],
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    api_app_id: str = APP_ID,
    trigger_id: str | None = None,
    response_urls: list[dict[str, str]] | None = None,
    token: str = TOKEN,
) -> dict[str, Any]:
    """A modal's Submit."""
    if view is None:
        view = view_object(
            view_id=view_id,
            team_id=team_id,
            callback_id=callback_id,
            private_metadata=private_metadata,
            state_values=state_values,
        )
    return {
        "type": "view_submission",
        "team": team_object(team_id, team_domain, enterprise_id, enterprise_name),
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or _trigger(),
        "view": view,
        "response_urls": response_urls or [],
        "enterprise": enterprise_object(enterprise_id, enterprise_name),
        "is_enterprise_install": False,
    }


def view_closed(
    *,
    view: dict[str, Any] | None = None,
    callback_id: str = "",
    team_id: str = TEAM_ID,
    team_domain: str = HOSTILE["team_domain"],
    user_id: str = "U1",
    user_name: str = HOSTILE["user_name"],
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
    api_app_id: str = APP_ID,
    is_cleared: bool = False,
    token: str = TOKEN,
) -> dict[str, Any]:
    """Cancel on a modal opened with notify_on_close."""
    view = view or view_object(team_id=team_id, callback_id=callback_id)
    return {
        "type": "view_closed",
        "team": team_object(team_id, team_domain, enterprise_id, enterprise_name),
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "view": view,
        "is_cleared": is_cleared,
        "enterprise": enterprise_object(enterprise_id, enterprise_name),
        "is_enterprise_install": False,
    }


def form_body(fields: dict[str, str]) -> bytes:
    """application/x-www-form-urlencoded, as Slack encodes it (spaces as '+')."""
    return urlencode(fields).encode()


def interactive_body(payload: Any) -> bytes:
    """Interactions arrive as a form with a single `payload` field holding JSON."""
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()


def sign(body: bytes, ts: str, secret: str) -> str:
    """Slack's v0 signature: hex HMAC-SHA256 over `v0:{timestamp}:{raw body}`."""
    return "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes, secret: str, ts: str | None = None, *, content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, str]:
    """The headers Slack sends with every request to a Request URL."""
    ts = ts or str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(body, ts, secret),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
