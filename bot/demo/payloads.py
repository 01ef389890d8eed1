"""Request bodies exactly as Slack sends them to an app, and Slack's request signature.

Shapes follow api.slack.com: slash commands are form posts; interactivity is a form
post with one ``payload`` JSON field; Events API deliveries are JSON envelopes. Each
is signed ``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

API_APP_ID = "A0DEMOAPP"
LEGACY_TOKEN = "demoVerificationToken0000"  # Slack still sends the deprecated verification token


def sign(secret: str, body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, body, ts),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}


def _user(team: str, user: str, name: str) -> dict[str, Any]:
    return {"id": user, "username": name, "name": name, "team_id": team}


def slash_command(*, team: str, team_domain: str, channel: str, channel_name: str, user: str, user_name: str,
                  text: str, response_url: str, trigger_id: str, command: str = "/fblink") -> bytes:
    return urlencode({
        "token": LEGACY_TOKEN, "team_id": team, "team_domain": team_domain, "channel_id": channel,
        "channel_name": channel_name, "user_id": user, "user_name": user_name, "command": command, "text": text,
        "api_app_id": API_APP_ID, "is_enterprise_install": "false", "response_url": response_url, "trigger_id": trigger_id,
    }).encode()


def interactive(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()


def clean_view(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if not k.startswith("_") and k != "errors"}


def block_actions(*, team: str, team_domain: str, user: str, user_name: str, action: dict[str, Any],
                  trigger_id: str, channel: str | None = None, channel_name: str = "", message: dict[str, Any] | None = None,
                  ephemeral: bool = False, response_url: str | None = None, view: dict[str, Any] | None = None,
                  state: dict[str, Any] | None = None) -> dict[str, Any]:
    """A click on a button or a menu choice, in a message, a modal or the Home tab."""
    payload: dict[str, Any] = {
        "type": "block_actions", "user": _user(team, user, user_name), "api_app_id": API_APP_ID, "token": LEGACY_TOKEN,
        "trigger_id": trigger_id, "team": {"id": team, "domain": team_domain}, "enterprise": None,
        "is_enterprise_install": False, "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view["id"]}
        payload["view"] = clean_view(view)
        payload["state"] = state or view.get("state") or {"values": {}}
    else:
        assert channel is not None and message is not None
        payload["container"] = {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": ephemeral}
        payload["channel"] = {"id": channel, "name": channel_name}
        if not ephemeral:  # Slack leaves the message out of clicks on ephemeral messages
            payload["message"] = {"type": "message", "user": message.get("user"), "ts": message["ts"], "bot_id": "B0DEMOBOT",
                                  "app_id": API_APP_ID, "text": message.get("text", ""), "team": team,
                                  "blocks": message.get("blocks", [])}
        payload["state"] = state or {"values": {}}
        payload["response_url"] = response_url
    return payload


def view_submission(*, team: str, team_domain: str, user: str, user_name: str, view: dict[str, Any],
                    values: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    return {
        "type": "view_submission", "team": {"id": team, "domain": team_domain}, "user": _user(team, user, user_name),
        "api_app_id": API_APP_ID, "token": LEGACY_TOKEN, "trigger_id": trigger_id,
        "view": {**clean_view(view), "state": {"values": values}}, "response_urls": [],
        "is_enterprise_install": False, "enterprise": None,
    }


def view_closed(*, team: str, team_domain: str, user: str, user_name: str, view: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "view_closed", "team": {"id": team, "domain": team_domain}, "user": _user(team, user, user_name),
        "api_app_id": API_APP_ID, "token": LEGACY_TOKEN, "view": clean_view(view), "is_cleared": False,
        "is_enterprise_install": False, "enterprise": None,
    }


def app_home_opened(*, team: str, user: str, bot_user: str, channel: str, view: dict[str, Any] | None) -> bytes:
    now = time.time()
    event: dict[str, Any] = {"type": "app_home_opened", "user": user, "channel": channel, "tab": "home",
                             "event_ts": f"{now:.6f}"}
    if view is not None:
        event["view"] = view
    return json.dumps({
        "token": LEGACY_TOKEN, "team_id": team, "context_team_id": team, "context_enterprise_id": None,
        "api_app_id": API_APP_ID, "event": event, "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(), "event_time": int(now),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": bot_user, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-" + secrets.token_urlsafe(24),
    }, ensure_ascii=False).encode()
