"""The demo's web server: the Slack-like client's JSON API, the clock control, and the
simulated Facebook dialog and Vonage dashboard pages.

Every Slack-side action is turned into the request Slack would send (bot/fakes/slack_payloads)
and posted, signed, to fblink over HTTP; what fblink answers is applied as Slack would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.demo import install, pages
from bot.demo.escape import escape_command_text
from bot.demo.world import CHANNELS, CHANNELS2, PEOPLE, PEOPLE2, SIGNING_SECRET, TEAM, TEAM2, WORKSPACES, World
from bot.fakes import slack_events as se
from bot.fakes import slack_payloads as sp
from bot.fakes.slack_state import Message
from bot.web import bounded_routes

DAY = 86400
ACK_TIMEOUT = 3.0  # Slack gives an app 3 s to answer
API_MAX_BODY = 256 * 1024  # a modal's values are the largest body the web client sends
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def own_origin(request: Request, bound_host: str) -> bool:
    """The request comes from the demo's own page: its Origin is exactly the origin the browser
    reached the demo at (``Host``), and that host is loopback or the one the demo was started on,
    so neither another web site nor a DNS-rebound name can drive the demo."""
    host = request.headers.get("host", "").lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if name not in (*LOOPBACK, bound_host.lower()):
        return False
    return request.headers.get("origin", "").strip().lower() == f"http://{host}"


def json_media(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def _person(user: str) -> dict[str, Any]:
    person = next((p for p in [*PEOPLE, *PEOPLE2] if p["id"] == user), None)
    if person is None:
        raise ValueError("unknown person")
    return person


def _team_of(user: str) -> str:
    """Each person belongs to one workspace: Slack signs their requests with its team_id."""
    return TEAM2 if any(p["id"] == user for p in PEOPLE2) else TEAM


def _channel_name(channel: str) -> str:
    return next((c["name"] for c in [*CHANNELS, *CHANNELS2] if c["id"] == channel), "directmessage")


class Demo:
    """The demo API's behaviour, apart from routing."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.slack = world.slack
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(ACK_TIMEOUT + 2, connect=2.0))
        self.errors: dict[tuple[str, str], dict[str, str]] = {}  # (view id, hash) -> field errors shown
        self._seq = itertools.count(1)

    async def post_to_fblink(self, body: bytes, content_type: str) -> httpx.Response | None:
        """Slack's side of a request: signed, 3 s budget; None when fblink did not answer in time."""
        headers = sp.signed_headers(body, SIGNING_SECRET, content_type=content_type)
        try:
            return await asyncio.wait_for(
                self.http.post(self.world.fblink_url + "/slack/events", content=body, headers=headers), ACK_TIMEOUT
            )
        except (TimeoutError, httpx.HTTPError):
            return None

    def _hook(self, channel: str, user: str, message_ts: str | None = None) -> str:
        return self.slack.response_url(f"{TEAM}-{next(self._seq)}-{secrets.token_hex(8)}", channel, user, message_ts)

    def _trigger(self, user: str) -> str:
        trigger = f"{next(self._seq)}{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        return self.slack.issue_trigger(trigger, user)

    def _slackbot(self, channel: str, user: str, text: str) -> None:
        """Slack's own ephemeral notes (an unknown command, an app that did not answer)."""
        with self.slack.changed:
            self.slack.state.post(
                Message(
                    channel=channel,
                    ts=self.slack.state.new_ts(),
                    text=text,
                    user="USLACKBOT",
                    bot_id=None,
                    ephemeral_to=user,
                    source="slackbot",
                )
            )
            self.slack.changed.notify_all()

    def _people(self, user: str) -> dict[str, Any]:
        person = _person(user)
        team = next(w for w in WORKSPACES if w["id"] == _team_of(user))
        return {"team_id": team["id"], "team_domain": team["domain"], "user_id": user, "user_name": person["name"]}

    async def command(self, user: str, channel: str, text: str) -> dict[str, Any]:
        who = self._people(user)
        command, _, rest = text.strip().partition(" ")
        if command != "/fblink":
            self._slackbot(
                channel,
                user,
                f"`{command or text}` is not a valid command. In Slack, all messages "
                'that start with the "/" character are interpreted as commands.',
            )
            return {"ok": True}
        fields = sp.slash_command(
            text=escape_command_text(  # manifest.yml sets should_escape: true, so Slack does this
                rest.strip(),
                {c["name"]: c["id"] for c in [*CHANNELS, *CHANNELS2]},
                {p["name"]: p["id"] for p in [*PEOPLE, *PEOPLE2]},
            ),
            channel_id=channel,
            channel_name=_channel_name(channel),
            response_url=(hook := self._hook(channel, user)),
            trigger_id=self._trigger(user),
            **who,
        )
        resp = await self.post_to_fblink(sp.form_body(fields), "application/x-www-form-urlencoded")
        if resp is None or resp.status_code != 200:
            why = "operation_timeout" if resp is None else "http_service_error"
            self._slackbot(channel, user, f'/fblink failed with the error "{why}"')
        elif resp.content:
            ack = resp.json() if "json" in resp.headers.get("content-type", "") else {"text": resp.text}
            self.slack.record_ack(channel, user, ack, hook)  # the command's response_url may replace it
        return {"ok": True}

    async def action(self, user: str, data: dict[str, Any]) -> dict[str, Any]:
        who = self._people(user)
        action = {**data["action"], "action_ts": f"{time.time():.6f}"}
        where = data.get("surface", "message")
        if where in ("modal", "home"):
            view = self.slack.modal_of(user) if where == "modal" else self.slack.home_of(user)
            if view is None:
                return {"ok": False, "error": "no view"}
            view = {**view, "state": {"values": data.get("values") or {}}}
            payload = sp.block_actions(action=action, view=view, trigger_id=self._trigger(user), **who)
            payload["state"] = view["state"]
        else:
            channel, ts = data["channel"], data["ts"]
            msg = self.slack.state.find(channel, ts)
            if msg is None or not msg.visible_to(user):
                return {"ok": False, "error": "message gone"}
            payload = sp.block_actions(
                action=action,
                channel_id=channel,
                channel_name=_channel_name(channel),
                message_ts=ts,
                message_blocks=msg.blocks,
                is_ephemeral=msg.ephemeral_to is not None,
                response_url=self._hook(channel, user, ts),
                trigger_id=self._trigger(user),
                **who,
            )
            if "message" in payload:
                payload["message"] = {**msg.api(who["team_id"]), "text": msg.text}
        resp = await self.post_to_fblink(sp.interactive_body(payload), "application/x-www-form-urlencoded")
        return {"ok": resp is not None and resp.status_code == 200}

    def _changed(self) -> None:
        """Something the client shows changed outside the Web API (errors, the clock): bump the version."""
        with self.slack.changed:
            self.slack.state.bump()
            self.slack.changed.notify_all()

    def _pop_modal(self, user: str, *, clear: bool = False) -> None:
        with self.slack.changed:
            stack = self.slack.state.modals.get(user) or []
            if clear:
                stack.clear()
            elif stack:
                stack.pop()
            self.slack.state.bump()
            self.slack.changed.notify_all()

    async def submit(self, user: str, values: dict[str, Any]) -> dict[str, Any]:
        who = self._people(user)
        view = self.slack.modal_of(user)
        if view is None:
            return {"ok": False, "error": "no modal"}
        sent = {**view, "state": {"values": values}}
        payload = sp.view_submission(view=sent, trigger_id=self._trigger(user), **who)
        resp = await self.post_to_fblink(sp.interactive_body(payload), "application/x-www-form-urlencoded")
        if resp is None or resp.status_code != 200:
            self.errors[(view["id"], view["hash"])] = {"_": "We had some trouble connecting. Try again?"}
            self._changed()
            return {"ok": False}
        answer = resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else {}
        kind = answer.get("response_action")
        if kind == "errors":
            self.errors[(view["id"], view["hash"])] = dict(answer.get("errors") or {})
            self._changed()
        elif kind == "update":
            with self.slack.changed:
                self.slack.state.replace_view(user, view, answer["view"])
        elif kind == "push":
            with self.slack.changed:
                self.slack.state.open_view(user, answer["view"], push=True)
        else:
            self._pop_modal(user, clear=kind == "clear")
        return {"ok": True}

    async def close(self, user: str) -> dict[str, Any]:
        who = self._people(user)
        view = self.slack.modal_of(user)
        if view is None:
            return {"ok": True}
        self._pop_modal(user)
        if view.get("notify_on_close"):
            payload = sp.view_closed(view=view, **who)
            await self.post_to_fblink(sp.interactive_body(payload), "application/x-www-form-urlencoded")
        return {"ok": True}

    async def open_home(self, user: str) -> dict[str, Any]:
        _person(user)
        body = json.dumps(
            se.app_home_opened(
                user_id=user, channel_id="D" + user[1:], team_id=_team_of(user), view=self.slack.home_of(user)
            ),
            ensure_ascii=False,
        ).encode()
        resp = await self.post_to_fblink(body, "application/json")
        return {"ok": resp is not None and resp.status_code == 200}

    def _message(self, msg: Message) -> dict[str, Any]:
        real = float(msg.ts.split(".")[0])
        return {
            "channel": msg.channel,
            "ts": msg.ts,
            "user": msg.user,
            "text": msg.text,
            "blocks": msg.blocks,
            "ephemeral": msg.ephemeral_to is not None,
            "edited": msg.edited,
            "at": self.world.clock.demo_time(real),
        }

    def state(self, user: str, channel: str) -> dict[str, Any]:
        modal = self.slack.modal_of(user)
        shown = None
        if modal is not None:
            shown = {**modal, "errors": self.errors.get((modal["id"], modal["hash"]), {})}
        return {
            "version": self.slack.version,
            "channel": channel,
            "messages": [self._message(m) for m in self.slack.history(channel, user)],
            "counts": {  # what this person can see in each conversation: the sidebar marks new ones unread
                c: len(self.slack.history(c, user))
                for c in [*(ch["id"] for ch in (CHANNELS2 if _team_of(user) == TEAM2 else CHANNELS)), "D" + user[1:]]
            },
            "modal": shown,
            "home": self.slack.home_of(user),
            "now": self.world.clock.now(),
            "offset_days": self.world.clock.offset / DAY,
        }


def build_app(world: World) -> Starlette:
    demo = Demo(world)
    static = resources.files("bot.demo") / "static"

    async def body(request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    async def index(request: Request) -> Response:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("app.js", "blocks.js", "style.css"):
            return Response("not found", status_code=404)
        return FileResponse(str(static / name), headers={"Cache-Control": "no-store"})

    async def config(request: Request) -> Response:
        return JSONResponse(
            {
                "people": [*({**p, "team": TEAM} for p in PEOPLE), *({**p, "team": TEAM2} for p in PEOPLE2)],
                "channels": [*({**c, "team": TEAM} for c in CHANNELS), *({**c, "team": TEAM2} for c in CHANNELS2)],
                "team": TEAM,
                "workspaces": [
                    {**w, "installed": await asyncio.to_thread(world.installed, w["id"])} for w in WORKSPACES
                ],
                "bot": world.slack.bot_user_id,
                "admins": sorted(world.fblink.services.settings.admins),
            }
        )

    async def state(request: Request) -> Response:
        q = request.query_params
        return JSONResponse(demo.state(q.get("user", ""), q.get("channel", "")))

    bound_host = urlsplit(world.login_url).hostname or "127.0.0.1"

    def route(fn: Any) -> Any:
        """A JSON API call that changes the demo: from the demo's own page only (issue 17, item 12)."""

        async def handler(request: Request) -> Response:
            if not json_media(request):
                return JSONResponse({"ok": False, "error": "send application/json"}, status_code=415)
            if not own_origin(request, bound_host):
                return JSONResponse({"ok": False, "error": "not from the demo's own page"}, status_code=403)
            data = await body(request)
            try:
                return JSONResponse(await fn(data))
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"ok": False, "error": f"bad request: {type(exc).__name__}"}, status_code=400)

        return handler

    async def advance(data: dict[str, Any]) -> dict[str, Any]:
        try:
            days = float(data.get("days", 1))
        except (TypeError, ValueError):
            days = 0.0
        if not 0 < days <= 3650:
            return {"ok": False, "error": "Enter a number of days from 1 to 3650: the clock only moves forward."}
        world.clock.advance(int(days * DAY))
        demo._changed()
        total = world.clock.offset // DAY
        return {
            "ok": True,
            "now": world.clock.now(),
            "said": f"Moved the clock {days:g} days forward ({total} in all). A link made at the start now "
            f"expires in {max(0, 90 - total)} days. Run the reminder sweep, then open the channel each Page "
            "was linked from (or #ops) to see the reminders.",
        }

    async def sweep(data: dict[str, Any]) -> dict[str, Any]:
        report = await asyncio.wrap_future(world.sweep())
        demo._changed()
        return {"ok": True, "report": report}

    routes = [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/favicon.ico", lambda r: Response(status_code=204)),
        Route("/api/config", config),
        Route("/api/state", state),
        Route("/api/command", route(lambda d: demo.command(d["user"], d["channel"], str(d["text"]))), methods=["POST"]),
        Route("/api/action", route(lambda d: demo.action(d["user"], d)), methods=["POST"]),
        Route("/api/submit", route(lambda d: demo.submit(d["user"], d.get("values") or {})), methods=["POST"]),
        Route("/api/close", route(lambda d: demo.close(d["user"])), methods=["POST"]),
        Route("/api/home", route(lambda d: demo.open_home(d["user"])), methods=["POST"]),
        Route("/api/clock/advance", route(advance), methods=["POST"]),
        Route("/api/clock/sweep", route(sweep), methods=["POST"]),
        *pages.routes(world),
        *install.routes(world, lambda request: own_origin(request, bound_host)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await demo.http.aclose()

    return Starlette(routes=bounded_routes(routes, API_MAX_BODY), lifespan=lifespan)
