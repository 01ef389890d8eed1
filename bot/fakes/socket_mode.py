"""A fake Slack Socket Mode endpoint (and Web API front) on 127.0.0.1.

Runs an aiohttp web server in its own thread and event loop:

* ``POST /api/apps.connections.open`` checks ``Authorization: Bearer xapp-...``
  and answers ``{"ok": true, "url": "ws://127.0.0.1:PORT/link?ticket=..."}``,
  as Slack does (``{"ok": false, "error": "invalid_auth"}`` otherwise).
* ``GET /link`` is the WebSocket: on connect it sends Slack's ``hello``; tests
  push envelopes with :meth:`send_envelope` and read the app's
  acknowledgements with :meth:`wait_ack`.
* Every other ``/api/*`` call (auth.test, chat.postMessage, views.open, ...)
  is handed to a :class:`~bot.fakes.slack.FakeSlack` instance, and recorded
  in its request log, so one ``slack_api_url`` serves both and tests keep
  using ``slack.messages`` / ``slack.wait_message``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from typing import Any

from aiohttp import WSMsgType, web

from bot.fakes.base import Request
from bot.fakes.slack import FakeSlack


class FakeSocketMode:
    name = "fake-slack-socket-mode"

    def __init__(self, slack: FakeSlack, app_token: str = "xapp-1-A0001-test", app_id: str = "A0001") -> None:
        self.slack = slack
        self.app_token = app_token
        self.app_id = app_id
        self.opens: list[dict[str, str]] = []  # headers of each apps.connections.open call
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the app's answer on the socket
        self.received: list[Any] = []  # every text frame from the app, in order
        self.connections = 0  # WebSockets accepted so far
        self._sockets: list[web.WebSocketResponse] = []
        self._ids = itertools.count(1)
        self._tickets = itertools.count(1)
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> FakeSocketMode:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._start_server())
            except BaseException as exc:  # surface start-up failures to start()
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._stop_server())
                loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake socket mode server did not start")
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _start_server(self) -> None:
        app = web.Application()
        app.router.add_post("/api/apps.connections.open", self._connections_open)
        app.router.add_get("/link", self._link)
        app.router.add_route("*", "/api/{method}", self._web_api)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # bind first so the port is known before serving
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _stop_server(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What to use as fblink's ``slack_api_url``."""
        return self.url + "/api/"

    # -- server side ---------------------------------------------------------
    async def _connections_open(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._cond:
            self.opens.append(headers)
        if headers.get("authorization") != f"Bearer {self.app_token}":
            # Slack answers HTTP 200 with ok=false; a bot token here is "not_allowed_token_type".
            auth = headers.get("authorization", "")
            error = "not_allowed_token_type" if auth.startswith("Bearer xoxb-") else "invalid_auth"
            return web.json_response({"ok": False, "error": error})
        ticket = f"t{next(self._tickets)}"
        return web.json_response(
            {"ok": True, "url": f"ws://127.0.0.1:{self._port}/link?ticket={ticket}&app_id={self.app_id}"}
        )

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()  # autoping: answers the client's pings with pongs
        await ws.prepare(request)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        with self._cond:
            self._sockets.append(ws)
            self.connections += 1
            self._cond.notify_all()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = msg.data
                with self._cond:
                    self.received.append(data)
                    if isinstance(data, dict) and data.get("envelope_id"):
                        self.acks[data["envelope_id"]] = data
                    self._cond.notify_all()
        finally:
            with self._cond:
                if ws in self._sockets:
                    self._sockets.remove(ws)
                self._cond.notify_all()
        return ws

    async def _web_api(self, request: web.Request) -> web.Response:
        """Everything but apps.connections.open: FakeSlack answers, as if called directly."""
        req = Request(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
        )
        with self.slack.lock:
            self.slack.requests.append(req)
        # FakeSlack takes locks and notifies waiters: keep that off this event loop.
        resp = await asyncio.get_running_loop().run_in_executor(None, self.slack.handle, req)
        data, headers = resp.encode()
        return web.Response(status=resp.status, body=data, headers=headers)

    # -- helpers for tests ---------------------------------------------------
    def wait_connected(self, timeout: float = 5.0) -> None:
        """Block until the app holds an open WebSocket (fail the test otherwise)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._sockets:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the app never opened a Socket Mode connection; opens={self.opens!r}")
                self._cond.wait(remaining)

    def wait_disconnected(self, timeout: float = 5.0) -> None:
        """Block until the app has closed every WebSocket (fail the test otherwise)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sockets:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{len(self._sockets)} WebSocket(s) still open after {timeout}s")
                self._cond.wait(remaining)

    def send_envelope(
        self, type: str, payload: dict[str, Any], *, accepts_response_payload: bool = True, timeout: float = 5.0
    ) -> str:
        """Deliver one envelope (``slash_commands``, ``interactive``, ``events_api``) to the app."""
        self.wait_connected(timeout)
        envelope_id = f"env-{next(self._ids):04d}"
        message = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":  # Slack adds the delivery's retry count to Events API envelopes
            message.update(retry_attempt=0, retry_reason="")
        with self._cond:
            ws = self._sockets[-1]
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(ws.send_str(json.dumps(message)), self._loop).result(timeout)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The app's answer for an envelope: ``{"envelope_id": ..., "payload": {...}}`` (payload optional)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self.acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no ack for {envelope_id} within {timeout}s; received={self.received!r}")
                self._cond.wait(remaining)
            return self.acks[envelope_id]
