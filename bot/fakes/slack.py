"""A fake Slack Web API (and response_url endpoint) on 127.0.0.1.

Speaks Slack's wire format: form or JSON bodies, ``Authorization: Bearer``, answers with the
documented shapes (chat.postMessage's ``message`` with ``bot_id``/``bot_profile``, full view objects
with ``id``/``hash``/``root_view_id``), errors as HTTP 200 ``{"ok": false, "error", "response_metadata"}``,
Block Kit limits (``invalid_blocks`` / ``invalid_arguments``), single-use 3-second trigger_ids, view
hash checks, and HTTP 429 with Retry-After (opt-in per-channel rate, or the base class's faults).
Behind it, :class:`~bot.fakes.slack_state.Conversations` holds what each user sees, for a demo.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.fakes.base import FakeServer, Request, Response
from bot.fakes.slack_conversations import ConversationsList
from bot.fakes.slack_history import ConversationsHistory, message_metadata
from bot.fakes.slack_limits import MESSAGE_BLOCKS, MESSAGE_TEXT, check_blocks, error, view_error
from bot.fakes.slack_oauth import SlackOAuth
from bot.fakes.slack_payloads import HOSTILE
from bot.fakes.slack_state import Conversations, Message
from bot.fakes.slack_users import Person, user_info

Answer = dict[str, Any] | Response


class FakeSlack(ConversationsList, ConversationsHistory, FakeServer):
    name = "fake-slack"

    def __init__(self, bot_token: str = "xoxb-test-token", team_id: str = "T0001", bot_user_id: str = "UBOT") -> None:
        super().__init__()
        self.oauth = SlackOAuth()  # installs, token rotation and the tokens they issue (a test may replace it)
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.state = Conversations(team_id)
        # channel id -> error to answer chat.postMessage with (channel_not_found, not_in_channel, is_archived)
        self.channel_errors: dict[str, str] = {}
        self.history_errors: dict[str, str] = {}  # channel id -> conversations.history's error (ratelimited: a 429)
        self.messages: list[dict[str, Any]] = []  # chat.postMessage/chat.update/postEphemeral/delete, in order
        self.responses: list[dict[str, Any]] = []  # accepted posts to response_url
        self.views: list[dict[str, Any]] = []  # accepted views.open / update / push / publish
        self.rate_limit: float | None = None  # chat.postMessage per channel per second (Slack: about 1)
        self._last_post: dict[str, float] = {}
        self._caller_team: str | None = team_id  # the workspace of the call being answered
        self.roles: dict[str, Person] = {}  # user id -> workspace and role (users.info); others are members

    # -- reading the conversation (tests and the demo) ---------------------------------
    @property
    def channels(self) -> dict[str, list[Message]]:
        return self.state.channels

    @property
    def version(self) -> int:
        return self.state.version

    def history(self, channel: str, user: str | None = None) -> list[Message]:
        """What `user` sees in `channel` (their ephemerals included); without a user, the public part."""
        with self.lock:
            return list(self.state.history(channel, user))

    def modal_of(self, user: str) -> dict[str, Any] | None:
        """The view on top of the user's modal stack, or None."""
        with self.lock:
            stack = self.state.modals.get(user) or []
            return stack[-1] if stack else None

    def home_of(self, user: str) -> dict[str, Any] | None:
        with self.lock:
            return self.state.homes.get(user)

    # -- telling the fake what Slack did (helpers and the demo) ---------------------------
    def response_url(
        self, name: str = "r", channel: str | None = None, user: str | None = None, message_ts: str | None = None
    ) -> str:
        """A response_url; with a channel, posts to it land in that conversation (5 uses)."""
        with self.changed:
            self.state.register_hook(name, channel, user, message_ts)
        return f"{self.url}/response/{name}"

    def issue_trigger(self, trigger_id: str, user: str | None = None) -> str:
        """Slack issues a trigger_id with each command or interaction it sends."""
        with self.changed:
            self.state.issue_trigger(trigger_id, user)
        return trigger_id

    def plant_view(self, user: str, view: dict[str, Any]) -> None:
        """A view a payload came from: Slack has it open for `user`."""
        with self.changed:
            self.state.plant_view(user, view)

    def record_ack(self, channel: str, user: str, body: Any, response_url: str | None = None) -> Message | None:
        """fblink's HTTP answer to a slash command, shown as Slack shows it (ephemeral unless in_channel).
        ``response_url``: the command's; Slack lets it replace this first answer (``replace_original``)."""
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return None
        with self.changed:
            msg = self.state.post(
                Message(
                    channel=channel,
                    ts=self.state.new_ts(),
                    text=str(body.get("text") or ""),
                    blocks=body.get("blocks") or [],
                    source="ack",
                    ephemeral_to=None if body.get("response_type") == "in_channel" else user,
                )
            )
            if response_url is not None:
                self.state.hooks[response_url.rsplit("/", 1)[-1]].last_ts = msg.ts
            self.changed.notify_all()
            return msg

    def record_user_message(self, channel: str, user: str, text: str) -> Message:
        """A person's own message (e.g. the `/fblink ...` line a demo shows)."""
        with self.changed:
            msg = self.state.post(
                Message(channel=channel, ts=self.state.new_ts(), text=text, user=user, bot_id=None, source="user")
            )
            self.changed.notify_all()
            return msg

    # -- waiting (tests) ---------------------------------------------------------------
    def seen(self) -> str:
        return f"responses={self.responses!r} messages={self.messages!r}"

    def wait_response(self, contains: str, timeout: float = 10.0) -> dict[str, Any]:
        found: dict[str, Any] = self.wait_for(
            lambda: next((r for r in self.responses if contains in json.dumps(r)), None), timeout
        )
        return found

    def wait_message(self, contains: str, timeout: float = 10.0) -> dict[str, Any]:
        found: dict[str, Any] = self.wait_for(
            lambda: next((m for m in self.messages if contains in json.dumps(m)), None), timeout
        )
        return found

    # -- server ------------------------------------------------------------------------
    def _record(self, bucket: list[dict[str, Any]], item: dict[str, Any]) -> None:
        with self.changed:
            bucket.append(item)
            self.changed.notify_all()

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/response/"):
            return self._response_url(request)
        if request.path == "/oauth/v2/authorize" or request.path.endswith("/oauth.v2.access"):
            return self.oauth.serve(request, self.changed)  # client credentials, no token
        method = request.path.strip("/").rsplit("/", 1)[-1]
        auth = request.headers.get("authorization", "")
        params = request.params
        if not auth and "token" not in params:
            return Response(200, error("not_authed"))
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else str(params.get("token") or "")
        if token != self.bot_token and (answer := self.oauth.check(token, method)) is not None:
            return answer  # a token no install issued, or auth.test about one that is
        for key in ("blocks", "view", "attachments"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    return Response(200, error("invalid_blocks_format" if key == "blocks" else "invalid_arguments"))
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return Response(200, error("unknown_method"))
        with self.changed:
            self._caller_team = self.team_id if token == self.bot_token else self.oauth.team_of(token)
            answer = handler(params)
            self.changed.notify_all()
        return answer if isinstance(answer, Response) else Response(200, answer)

    def _response_url(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        try:
            body = request.json
        except ValueError:
            return Response(400, "invalid_payload")
        if not isinstance(body, dict):
            return Response(400, "invalid_payload")
        if "blocks" in body and check_blocks(body["blocks"], MESSAGE_BLOCKS):
            return Response(400, "invalid_blocks")
        with self.changed:
            status, text = self.state.respond(name, body)
            if status == 200:
                self.responses.append({"url_name": name, **body})
            self.changed.notify_all()
        return Response(status, text)

    # -- auth, users, conversations ------------------------------------------------------
    def api_auth_test(self, p: dict[str, Any]) -> Answer:
        return {
            "ok": True,
            "url": "https://payload-inc.slack.com/",
            "team": HOSTILE["team_name"],
            "user": "fblink",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT",
            "is_enterprise_install": False,
        }

    def api_users_info(self, p: dict[str, Any]) -> Answer:
        uid = str(p.get("user", ""))
        names = self.person_names(uid, HOSTILE["real_name"], HOSTILE["display_name"])
        answer = user_info(uid, self._caller_team, self.roles.get(uid), names, HOSTILE["user_name"])
        if answer.get("ok") and (grid := self.grid_user(uid)):
            answer["user"]["enterprise_user"] = grid
        return answer

    # -- chat ----------------------------------------------------------------------------
    def _check_message(self, p: dict[str, Any]) -> dict[str, Any] | None:
        if self.foreign(str(p.get("channel") or "")):
            return error("channel_not_found")
        if not p.get("text") and not p.get("blocks") and not p.get("attachments"):
            return error("no_text")
        if len(str(p.get("text") or "")) > MESSAGE_TEXT:
            return error("msg_too_long")
        if "blocks" in p:
            problems = check_blocks(p["blocks"], MESSAGE_BLOCKS)
            if problems:
                return error("invalid_blocks", problems)
        return None

    def api_chat_postMessage(self, p: dict[str, Any]) -> Answer:
        channel = str(p.get("channel") or "")
        if not channel:
            return error("channel_not_found")
        if channel in self.channel_errors:
            return error(self.channel_errors[channel])
        if self.rate_limit:
            now = time.monotonic()
            if now - self._last_post.get(channel, 0.0) < 1.0 / self.rate_limit:
                return Response(429, error("ratelimited"), {"Retry-After": "1"})
            self._last_post[channel] = now
        problem = self._check_message(p)
        if problem:
            return problem
        metadata = message_metadata(p.get("metadata"))
        if isinstance(metadata, str):
            return error(metadata)
        out_channel = "D" + channel[1:] if channel[:1] in ("U", "W") else channel
        msg = self.state.post(
            Message(
                channel=out_channel,
                ts=self.state.new_ts(),
                text=str(p.get("text") or ""),
                blocks=p.get("blocks") or [],
                thread_ts=p.get("thread_ts"),
                metadata=metadata,
            )
        )
        self.messages.append({"method": "chat.postMessage", **p, "channel": out_channel, "ts": msg.ts})
        return {"ok": True, "channel": out_channel, "ts": msg.ts, "message": msg.api(self.team_id)}

    def api_chat_postEphemeral(self, p: dict[str, Any]) -> Answer:
        channel, user = str(p.get("channel") or ""), str(p.get("user") or "")
        if channel in self.channel_errors:
            return error(self.channel_errors[channel])
        if not channel:
            return error("channel_not_found")
        if not user:
            return error("user_not_in_channel")
        problem = self._check_message(p)
        if problem:
            return problem
        msg = self.state.post(
            Message(
                channel=channel,
                ts=self.state.new_ts(),
                text=str(p.get("text") or ""),
                blocks=p.get("blocks") or [],
                ephemeral_to=user,
                source="chat.postEphemeral",
            )
        )
        self.messages.append({"method": "chat.postEphemeral", **p, "ts": msg.ts})
        return {"ok": True, "message_ts": msg.ts}

    def api_chat_update(self, p: dict[str, Any]) -> Answer:
        channel, ts = str(p.get("channel") or ""), str(p.get("ts") or "")
        msg = self.state.find(channel, ts)
        if msg is None or msg.ephemeral_to is not None:
            return error("message_not_found")  # ephemerals cannot be updated through the Web API
        if msg.bot_id is None:
            return error("cant_update_message")
        problem = self._check_message(p)
        if problem:
            return problem
        self.state.update(channel, ts, str(p.get("text") or ""), p.get("blocks"))
        self.messages.append({"method": "chat.update", **p})
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.text, "message": msg.api(self.team_id)}

    def api_chat_delete(self, p: dict[str, Any]) -> Answer:
        channel, ts = str(p.get("channel") or ""), str(p.get("ts") or "")
        msg = self.state.find(channel, ts)
        if msg is None or msg.ephemeral_to is not None:
            return error("message_not_found")
        if msg.bot_id is None:
            return error("cant_delete_message")
        self.state.delete(channel, ts)
        self.messages.append({"method": "chat.delete", **p})
        return {"ok": True, "channel": channel, "ts": ts}

    # -- views ---------------------------------------------------------------------------
    def _trigger(self, p: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        trigger = p.get("trigger_id") or p.get("interactivity_pointer")
        if not trigger:
            return error("invalid_arguments", ["[ERROR] missing required field: trigger_id"]), None
        status, user = self.state.use_trigger(str(trigger))
        if status != "ok":
            return error("invalid_trigger_id" if status == "unknown" else "expired_trigger_id"), None
        return None, user or "U?"

    def _view_and_trigger(self, p: dict[str, Any]) -> tuple[Answer | None, str]:
        """views.open and views.push: a valid view, and a trigger_id issued in the last 3 s, used once."""
        problem = view_error(p.get("view"))
        if problem:
            return problem, ""
        problem, user = self._trigger(p)
        if problem or user is None:
            return problem or error("invalid_trigger_id"), ""
        return None, user

    def api_views_open(self, p: dict[str, Any]) -> Answer:
        problem, user = self._view_and_trigger(p)
        if problem:
            return problem
        full = self._owned(self.state.open_view(user, p["view"]))
        self.views.append({"method": "views.open", **p})
        return {"ok": True, "view": full}

    def api_views_push(self, p: dict[str, Any]) -> Answer:
        problem, user = self._view_and_trigger(p)
        if problem:
            return problem
        if len(self.state.modals.get(user, [])) >= 3:
            return error("push_limit_reached")
        full = self._owned(self.state.open_view(user, p["view"], push=True))
        self.views.append({"method": "views.push", **p})
        return {"ok": True, "view": full}

    def api_views_update(self, p: dict[str, Any]) -> Answer:
        if not p.get("view_id") and not p.get("external_id"):
            return error("invalid_arguments", ["[ERROR] view_id or external_id is required"])
        problem = view_error(p.get("view"))
        if problem:
            return problem
        found = self.state.lookup(p.get("view_id"), p.get("external_id"))
        if found is None or self._caller_team not in (None, found[1].get("team_id", self._caller_team)):
            return error("not_found")  # another workspace's view does not exist for this token
        user, old = found
        if p.get("hash") and p["hash"] != old.get("hash"):
            return error("hash_conflict")
        full = self._owned(self.state.replace_view(user, old, p["view"]))
        self.views.append({"method": "views.update", **p})
        return {"ok": True, "view": full}

    def api_views_publish(self, p: dict[str, Any]) -> Answer:
        user = str(p.get("user_id") or "")
        if not user:
            return error("invalid_arguments", ["[ERROR] missing required field: user_id"])
        problem = view_error(p.get("view"))
        if problem:
            return problem
        if p["view"].get("type") != "home":
            return error("invalid_arguments", ["[ERROR] must be home [json-pointer:/view/type]"])
        current = self.state.homes.get(user)
        if p.get("hash") and current is not None and p["hash"] != current.get("hash"):
            return error("hash_conflict")
        full = self.state.publish_home(user, p["view"])
        self.views.append({"method": "views.publish", **p})
        return {"ok": True, "view": full}
