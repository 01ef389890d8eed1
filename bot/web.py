"""HTTP routes: Slack events, the Facebook callback, health and metrics."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000


def _kind_and_command(body: str) -> tuple[str, str]:
    """Label a Slack request for metrics without parsing it twice in full."""
    if body.startswith("payload="):
        return "interactive", "-"
    if "command=" in body:
        text = parse_qs(body).get("text", [""])[0].strip()
        return "command", (text.split()[0].lower() if text else "help")[:20]
    return "event", "-"


def build_routes(services: "Services", bolt: AsyncApp) -> list[Route]:
    from handlers.login import facebook_callback

    handler = AsyncSlackRequestHandler(bolt)
    verifier = SignatureVerifier(services.settings.slack_signing_secret or "")
    metrics = services.metrics

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return PlainTextResponse("request too large", status_code=413)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            ok = verifier.is_valid(
                raw, request.headers.get("x-slack-request-timestamp", ""), request.headers.get("x-slack-signature", "")
            )
            return PlainTextResponse("body must be UTF-8" if ok else "invalid signature", status_code=400 if ok else 401)
        kind, command = _kind_and_command(text)
        request._body = raw  # Starlette caches the body; the Bolt adapter reads it again
        response = await handler.handle(request)
        metrics.requests.labels(kind, command).inc()
        metrics.ack_latency.labels(kind).observe(time.perf_counter() - started)
        return response

    async def callback(request: Request) -> Response:
        return await facebook_callback(services, request)

    async def healthz(request: Request) -> Response:
        try:
            ok = services.store.ping()
        except Exception as exc:  # the whole point is to report it
            log.error("health check failed: %s", type(exc).__name__)
            ok = False
        return JSONResponse({"ok": ok, "database": "ok" if ok else "error"}, status_code=200 if ok else 503)

    async def metrics_view(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/facebook/callback", callback, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_view, methods=["GET"]),
    ]
    if not services.settings.socket_mode:
        routes.insert(0, Route("/slack/events", slack_events, methods=["POST"]))
    return routes
