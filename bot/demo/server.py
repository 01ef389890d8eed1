"""The demo's web server: the Slack-like client's JSON API, the clock control, and the
simulated Facebook dialog and Vonage dashboard pages.

Every Slack-side action is turned into the request Slack would send (bot/demo/payloads)
and posted, signed, to fblink over HTTP; what fblink answers is applied as Slack would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.demo import pages, payloads
from bot.demo.world import CHANNELS, FACEBOOK_PEOPLE, PEOPLE, SIGNING_SECRET, TEAM, TEAM_DOMAIN, World

DAY = 86400
ACK_TIMEOUT = 3.0  # Slack gives an app 3 s to answer


def _person(user: str) -> dict[str, Any]:
    person = next((p for p in PEOPLE if p["id"] == user), None)
    if person is None:
        raise ValueError("unknown person")
    return person


def _channel_name(channel: str) -> str:
    return next((c["name"] for c in CHANNELS if c["id"] == channel), "directmessage")


class Demo:
    """The demo API's behaviour, apart from routing."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.slack = world.slack
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(ACK_TIMEOUT + 2, connect=2.0))
        self._hooks = 0

    async def post_to_fblink(self, body: bytes, content_type: str) -> httpx.Response | None:
        """Slack's side of a request: signed, 3 s budget; None when fblink did not answer in time."""
        headers = payloads.signed_headers(SIGNING_SECRET, body, content_type)
        try:
            return await asyncio.wait_for(
                self.http.post(self.world.fblink_url + "/slack/events", content=body, headers=headers), ACK_TIMEOUT)
        except (asyncio.TimeoutError, httpx.HTTPError):
            return None

    def _hook(self, channel: str, user: str, message_ts: str | None = None) -> str:
        self._hooks += 1
        return self.slack.response_url(f"h{self._hooks}x{id(self) % 9973}", channel, user, message_ts)

    def _slackbot(self, channel: str, user: str, text: str) -> None:
        self.slack.record_ack(channel, user, {"text": text, "blocks": [], "response_type": "ephemeral"})

    async def command(self, user: str, channel: str, text: str) -> dict[str, Any]:
        person = _person(user)
        command, _, rest = text.strip().partition(" ")
        if command != "/fblink":
            self._slackbot(channel, user, f"`{command or text}` is not a valid command. In Slack, all messages that start with the \"/\" character are interpreted as commands.")
            return {"ok": True}
        url = self._hook(channel, user)
        body = payloads.slash_command(team=TEAM, team_domain=TEAM_DOMAIN, channel=channel, channel_name=_channel_name(channel),
                                      user=user, user_name=person["name"], text=rest.strip(), response_url=url,
                                      trigger_id=self.slack.new_trigger(user))
        resp = await self.post_to_fblink(body, "application/x-www-form-urlencoded")
        if resp is None or resp.status_code != 200:
            why = "operation_timeout" if resp is None else f"http_service_error"
            self._slackbot(channel, user, f"/fblink failed with the error \"{why}\"")
        elif resp.content:
            ack = resp.json() if "json" in resp.headers.get("content-type", "") else {"text": resp.text}
            self.slack.record_ack(channel, user, ack, hook=url.rsplit("/", 1)[-1])
        return {"ok": True}

    async def action(self, user: str, data: dict[str, Any]) -> dict[str, Any]:
        person = _person(user)
        action = data["action"]
        where = data.get("surface", "message")
        trigger = self.slack.new_trigger(user)
        common = dict(team=TEAM, team_domain=TEAM_DOMAIN, user=user, user_name=person["name"], action=action, trigger_id=trigger)
        if where in ("modal", "home"):
            view = self.slack.modal_of(user) if where == "modal" else self.slack.home_of(user)
            if view is None:
                return {"ok": False, "error": "no view"}
            state = {"values": data.get("values") or {}}
            if where == "modal":
                view["state"] = state
            payload = payloads.block_actions(view=view, state=state, **common)
        else:
            channel, ts = data["channel"], data["ts"]
            msg = self.slack.find(channel, ts)
            if msg is None:
                return {"ok": False, "error": "message gone"}
            hook = self._hook(channel, user, ts)
            payload = payloads.block_actions(channel=channel, channel_name=_channel_name(channel), message=msg.as_json(),
                                             ephemeral=msg.ephemeral_to is not None, response_url=hook, **common)
        resp = await self.post_to_fblink(payloads.interactive(payload), "application/x-www-form-urlencoded")
        return {"ok": resp is not None and resp.status_code == 200}

    async def submit(self, user: str, values: dict[str, Any]) -> dict[str, Any]:
        person = _person(user)
        view = self.slack.modal_of(user)
        if view is None:
            return {"ok": False, "error": "no modal"}
        view["state"] = {"values": values}
        payload = payloads.view_submission(team=TEAM, team_domain=TEAM_DOMAIN, user=user, user_name=person["name"],
                                           view=view, values=values, trigger_id=self.slack.new_trigger(user))
        resp = await self.post_to_fblink(payloads.interactive(payload), "application/x-www-form-urlencoded")
        if resp is None or resp.status_code != 200:
            self.slack.set_modal_errors(user, {"_": "We had some trouble connecting. Try again?"})
            return {"ok": False}
        answer = resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else {}
        kind = answer.get("response_action")
        if kind == "errors":
            self.slack.set_modal_errors(user, answer.get("errors") or {})
        elif kind == "update":
            self.slack.close_modal(user)
            self.slack.open_modal(user, answer["view"], push=True)
        elif kind == "push":
            self.slack.open_modal(user, answer["view"], push=True)
        elif kind == "clear":
            self.slack.close_modal(user, clear=True)
        else:
            self.slack.close_modal(user)
        return {"ok": True}

    async def close(self, user: str) -> dict[str, Any]:
        person = _person(user)
        view = self.slack.modal_of(user)
        if view is None:
            return {"ok": True}
        self.slack.close_modal(user)
        if view.get("notify_on_close"):
            payload = payloads.view_closed(team=TEAM, team_domain=TEAM_DOMAIN, user=user, user_name=person["name"], view=view)
            await self.post_to_fblink(payloads.interactive(payload), "application/x-www-form-urlencoded")
        return {"ok": True}

    async def open_home(self, user: str) -> dict[str, Any]:
        _person(user)
        home = self.slack.home_of(user)
        body = payloads.app_home_opened(team=TEAM, user=user, bot_user=self.slack.bot_user_id, channel="D" + user[1:], view=home)
        resp = await self.post_to_fblink(body, "application/json")
        return {"ok": resp is not None and resp.status_code == 200}

    def state(self, user: str, channel: str) -> dict[str, Any]:
        modal = self.slack.modal_of(user)
        return {
            "version": self.slack.version, "channel": channel, "messages": self.slack.history(channel, user),
            "modal": payloads.clean_view(modal) | {"errors": modal.get("errors", {})} if modal else None,
            "home": self.slack.home_of(user), "now": self.world.clock.now(), "offset_days": self.world.clock.offset / DAY,
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
        return JSONResponse({"people": PEOPLE, "channels": CHANNELS, "team": TEAM, "bot": world.slack.bot_user_id,
                             "admins": sorted(world.fblink.services.settings.admins)})

    async def state(request: Request) -> Response:
        q = request.query_params
        return JSONResponse(demo.state(q.get("user", ""), q.get("channel", "")))

    def route(fn: Any) -> Any:
        async def handler(request: Request) -> Response:
            data = await body(request)
            try:
                return JSONResponse(await fn(data))
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"ok": False, "error": f"bad request: {type(exc).__name__}"}, status_code=400)
        return handler

    async def advance(data: dict[str, Any]) -> dict[str, Any]:
        days = float(data.get("days", 1))
        if not 0 < days <= 3650:
            raise ValueError("days")
        world.clock.advance(int(days * DAY))
        world.slack._bump()
        return {"ok": True, "now": world.clock.now()}

    async def sweep(data: dict[str, Any]) -> dict[str, Any]:
        report = await asyncio.wrap_future(world.sweep())
        world.slack._bump()
        return {"ok": True, "report": report}

    routes = [
        Route("/", index), Route("/static/{name}", asset), Route("/favicon.ico", lambda r: Response(status_code=204)), Route("/api/config", config), Route("/api/state", state),
        Route("/api/command", route(lambda d: demo.command(d["user"], d["channel"], str(d["text"]))), methods=["POST"]),
        Route("/api/action", route(lambda d: demo.action(d["user"], d)), methods=["POST"]),
        Route("/api/submit", route(lambda d: demo.submit(d["user"], d.get("values") or {})), methods=["POST"]),
        Route("/api/close", route(lambda d: demo.close(d["user"])), methods=["POST"]),
        Route("/api/home", route(lambda d: demo.open_home(d["user"])), methods=["POST"]),
        Route("/api/clock/advance", route(advance), methods=["POST"]),
        Route("/api/clock/sweep", route(sweep), methods=["POST"]),
        *pages.routes(world),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await demo.http.aclose()

    return Starlette(routes=routes, lifespan=lifespan)
