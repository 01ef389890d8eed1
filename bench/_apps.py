"""ASGI factories for bench/ack_latency.py, one per server under test.

Each is run in its own uvicorn process (``uvicorn --factory bench._apps:NAME``)
and configured only through environment variables set by the benchmark:

- ``fblink_app``: the real app, ``create_app(Settings(), scheduler=False)``;
  Settings reads SLACK_*, FACEBOOK_*, VONAGE_*, FBLINK_* from the environment.
- ``bolt_app``: a bare Bolt ``AsyncApp`` with default settings whose ``/fblink``
  handler only acks, behind Bolt's Starlette adapter. BENCH_SIGNING_SECRET,
  BENCH_BOT_TOKEN, BENCH_SLACK_API_URL (a fake that answers auth.test).
  BENCH_PROCESS_BEFORE_RESPONSE=1 gives the same app with fblink's setting
  (process_before_response=True), for reference.
- ``floor_app``: a bare Starlette POST /slack/events that reads the body and
  answers 200: the cost of uvicorn + Starlette alone.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def fblink_app() -> Starlette:
    from bot.app import create_app
    from bot.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return create_app(settings, scheduler=False).asgi


def bolt_app() -> Starlette:
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # Same authorization path as fblink (a bot token -> AsyncSingleTeamAuthorization):
    # auth.test is called once, against a local fake, then cached for the process.
    client = AsyncWebClient(token=os.environ["BENCH_BOT_TOKEN"], base_url=os.environ["BENCH_SLACK_API_URL"])
    # Default settings (process_before_response=False) unless BENCH_PROCESS_BEFORE_RESPONSE=1,
    # fblink's own setting, which answers when the listener returns instead of polling for the ack.
    pbr = os.environ.get("BENCH_PROCESS_BEFORE_RESPONSE") == "1"
    bolt = AsyncApp(signing_secret=os.environ["BENCH_SIGNING_SECRET"], client=client, process_before_response=pbr)

    @bolt.command("/fblink")
    async def only_ack(ack):  # type: ignore[no-untyped-def]
        await ack()

    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


def floor_app() -> Starlette:
    async def events(request: Request) -> Response:
        await request.body()
        return Response(status_code=200)

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
