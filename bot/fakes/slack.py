"""A fake Slack Web API (and response_url endpoint) on 127.0.0.1.

Speaks Slack's wire format: form or JSON bodies, ``Authorization: Bearer``,
``{"ok": false, "error": ...}`` answers with HTTP 200, and HTTP 429 with
Retry-After for rate limits (through the base class's fault injection).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from bot.fakes.base import FakeServer, Request, Response


class FakeSlack(FakeServer):
    name = "fake-slack"

    def __init__(self, bot_token: str = "xoxb-test-token", team_id: str = "T0001", bot_user_id: str = "UBOT") -> None:
        super().__init__()
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self._ts = itertools.count(1)
        # channel id -> error to answer chat.postMessage with (channel_not_found, not_in_channel, is_archived)
        self.channel_errors: dict[str, str] = {}
        self.messages: list[dict[str, Any]] = []  # chat.postMessage/chat.update/postEphemeral, in order
        self.responses: list[dict[str, Any]] = []  # posts to response_url
        self.views: list[dict[str, Any]] = []  # views.open / views.update / views.publish

    # -- helpers for tests -----------------------------------------------------
    def response_url(self, name: str = "r") -> str:
        return f"{self.url}/response/{name}"

    def wait_for(self, predicate, timeout: float = 10.0) -> Any:  # type: ignore[no-untyped-def]
        """Wait until predicate() returns something truthy; return it (or fail the test)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out waiting; responses={self.responses!r} messages={self.messages!r}"
                    )
                self.changed.wait(remaining)

    def wait_response(self, contains: str, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_for(lambda: next((r for r in self.responses if contains in json.dumps(r)), None), timeout)

    def wait_message(self, contains: str, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_for(lambda: next((m for m in self.messages if contains in json.dumps(m)), None), timeout)

    # -- server ----------------------------------------------------------------
    def _record(self, bucket: list[dict[str, Any]], item: dict[str, Any]) -> None:
        with self.changed:
            bucket.append(item)
            self.changed.notify_all()

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/response/"):
            self._record(self.responses, {"url_name": request.path.rsplit("/", 1)[-1], **request.json})
            return Response(200, "ok")
        method = request.path.strip("/").rsplit("/", 1)[-1]
        auth = request.headers.get("authorization", "")
        params = request.params
        if auth != f"Bearer {self.bot_token}" and params.get("token") != self.bot_token:
            return Response(200, {"ok": False, "error": "invalid_auth"})
        for key in ("blocks", "view", "attachments"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return Response(200, {"ok": False, "error": "unknown_method"})
        return Response(200, handler(params))

    def api_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "fblink",
            "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": "BBOT", "is_enterprise_install": False,
        }

    def api_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel", "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.channel_errors:
            return {"ok": False, "error": self.channel_errors[channel]}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if len(p.get("blocks") or []) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        ts = f"{1700000000 + next(self._ts)}.000100"
        out_channel = "D" + channel[1:] if channel.startswith("U") else channel
        self._record(self.messages, {"method": "chat.postMessage", **p, "channel": out_channel, "ts": ts})
        return {"ok": True, "channel": out_channel, "ts": ts, "message": {"text": p.get("text", ""), "ts": ts}}

    def api_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("channel") in self.channel_errors:
            return {"ok": False, "error": self.channel_errors[p["channel"]]}
        self._record(self.messages, {"method": "chat.postEphemeral", **p})
        return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}

    def api_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        if not any(m.get("ts") == p.get("ts") and m.get("channel") == p.get("channel") for m in self.messages):
            return {"ok": False, "error": "message_not_found"}
        self._record(self.messages, {"method": "chat.update", **p})
        return {"ok": True, "channel": p["channel"], "ts": p["ts"]}

    def api_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = p.get("users", "")
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}

    def api_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = p.get("user", "")
        return {"ok": True, "user": {"id": uid, "name": uid.lower(), "tz": "Europe/London", "tz_offset": 0}}

    def _view(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        view = p.get("view")
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            return {"ok": False, "error": "invalid_arguments"}
        if len(view.get("blocks", [])) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        if method == "views.open" and not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view_id = p.get("view_id") or f"V{next(self._ts):06d}"
        self._record(self.views, {"method": method, **p})
        return {"ok": True, "view": {**view, "id": view_id, "hash": "h" + view_id}}

    def api_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view("views.open", p)

    def api_views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view("views.update", p)

    def api_views_push(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._view("views.push", p)

    def api_views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return self._view("views.publish", p)
