"""HTTP routes: Slack events, the Facebook callback, health and metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.internals import parse_body
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import blocks
from bot.logs import request_id
from bot.metrics import CONTENT_TYPE_LATEST
from handlers.commands import QUICK, SLOW, needs_bolt, parse, quick_answer

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000


def kind_and_command(body: dict) -> tuple[str, str]:  # type: ignore[type-arg]
    """Metric labels: a bounded set (unknown subcommands count as help)."""
    if "command" in body:
        name, _ = parse(str(body.get("text", "")))
        return "command", name if name in QUICK or name in SLOW else "help"
    if body.get("type") == "event_callback":
        return "event", "-"
    return "interactive", "-"


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _has_id(value: object) -> bool:
    return isinstance(value, dict) and _is_id(value.get("id"))


def _shape_ok(body: dict) -> bool:  # type: ignore[type-arg]
    """The parts of a Slack payload that Bolt and the listeners rely on are there and typed right."""
    for key in ("event", "team", "user", "channel", "view", "container", "message", "enterprise"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            return False
    for key in ("actions", "authorizations"):
        if body.get(key) is not None and not isinstance(body[key], list):
            return False
    kind = body.get("type")
    if kind in ("block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut", "message_action"):
        if not (_has_id(body.get("team")) and _has_id(body.get("user"))):
            return False
        if kind == "block_actions":
            actions = body.get("actions")
            if not (isinstance(actions, list) and actions and all(
                    isinstance(a, dict) and _is_id(a.get("action_id")) for a in actions)):
                return False
        if kind in ("view_submission", "view_closed") or "view" in body:
            view = body.get("view")
            if not (isinstance(view, dict) and isinstance(view.get("type"), str)
                    and isinstance(view.get("callback_id", ""), str)):
                return False
            state = view.get("state", {"values": {}})
            if not (isinstance(state, dict) and isinstance(state.get("values", {}), dict)):
                return False
        return True
    if "command" in body:
        return all(_is_id(body.get(k)) for k in ("team_id", "user_id")) and isinstance(body.get("text", ""), str)
    if kind == "event_callback":
        return isinstance(body.get("event"), dict) and _is_id(body.get("team_id"))
    return True


def _parse(text: str, content_type: str) -> dict | None:  # type: ignore[type-arg]
    """The body as Bolt will see it, or None when Bolt would raise on it (answer 400, not 500)."""
    try:
        body = parse_body(text, content_type.split(";")[0].strip() or None)
    except ValueError:
        return None
    return body if isinstance(body, dict) and _shape_ok(body) else None


def signature_ok(secret: str, body: bytes, timestamp: str, signature: str, *, now: float | None = None) -> bool:
    """Slack's v0 signature over raw bytes (Bolt's verifier only takes text)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > 300:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def build_routes(services: "Services", bolt: AsyncApp) -> list[Route]:
    from handlers.login import facebook_callback

    handler = AsyncSlackRequestHandler(bolt)
    secret = services.settings.slack_signing_secret or ""
    help_body = json.dumps(blocks.help_message()).encode()
    metrics = services.metrics

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return PlainTextResponse("request too large", status_code=413)
        ts = request.headers.get("x-slack-request-timestamp", "")
        if not signature_ok(secret, raw, ts, request.headers.get("x-slack-signature", "")):
            return PlainTextResponse("invalid signature", status_code=401)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return PlainTextResponse("body must be UTF-8", status_code=400)
        body = _parse(text, request.headers.get("content-type", ""))
        if body is None:
            return PlainTextResponse("malformed Slack payload", status_code=400)
        kind, command = kind_and_command(body)
        rid = uuid.uuid4().hex[:12]
        request_id.set(rid)  # lazy listeners inherit it: their tasks copy this context
        if kind == "command" and command == "help":
            # Static answer: skip Bolt's dispatch entirely (the signature is already checked).
            response: Response = Response(help_body, media_type="application/json;charset=utf-8")
        elif kind == "command" and body.get("command") == "/fblink" and not needs_bolt(*parse(str(body.get("text", "")))):
            # Quick subcommands are one database read and one ack: answered here, without Bolt's dispatch.
            response = JSONResponse(await quick_answer(services, body))
        else:
            request._body = raw  # Starlette caches the body; the Bolt adapter reads it again
            response = await handler.handle(request)
        response.headers["X-Request-Id"] = rid
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
        """Prometheus text; behind a bearer token when FBLINK_METRICS_TOKEN is set. The link
        counts come from a cache refreshed off the event loop (see bot.metrics), not a scan per scrape."""
        token = services.settings.fblink_metrics_token
        if token and not metrics.bearer_ok(request.headers.get("authorization"), token):
            return PlainTextResponse("unauthorized", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="fblink metrics"'})
        await metrics.refresh_link_states(services.store, services.now())
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/facebook/callback", callback, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_view, methods=["GET"]),
    ]
    if not services.settings.socket_mode:
        routes.insert(0, Route("/slack/events", slack_events, methods=["POST"]))
    return routes
