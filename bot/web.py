"""HTTP routes: Slack requests, health and metrics. Browser routes (the Facebook login) are
handed in by the app factory, as is the `/fblink` dispatcher: this module imports no handler.

Every Slack request is checked here, on raw bytes, before anything else sees it: size (refused
before the body is read, or as soon as a chunked body passes the limit), signature and age,
UTF-8, then the body is parsed by field, as Slack sends it. A form body is interactive only
when it has a ``payload`` field; nothing depends on a substring of the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.logs import request_id
from bot.metrics import CONTENT_TYPE_LATEST
from bot.services import Services

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000
BROWSER_MAX_BODY = 8192  # a browser route's form is a state and a token: well under 1 KB
MAX_HEADER = 200  # a Slack signature is 67 characters, a timestamp 10
SKEW = 300  # seconds a request's timestamp may be off


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class SlackRouting:
    """What the app factory hands in: the `/fblink` dispatcher and its metric label."""

    command: str
    on_command: Callable[[Services, Mapping[str, Any]], Awaitable[dict[str, Any]]]
    command_label: Callable[[Mapping[str, Any]], str]


async def read_limited(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused before reading when Content-Length is too big, or as soon as a chunked
    body passes the limit: memory grows by the limit at most, never by the body."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def too_large() -> Response:
    return PlainTextResponse("request too large", status_code=413, headers={"Connection": "close"})


Endpoint = Callable[[Request], Awaitable[Response]]


def bounded(endpoint: Endpoint, limit: int = BROWSER_MAX_BODY) -> Endpoint:
    """The endpoint, behind the same bounded read as the Slack route: an over-long declared body
    is refused (413) before a byte of it is read, a chunked one as soon as it passes the limit.
    The body read is cached on the request, so ``await request.body()`` returns it."""

    async def guarded(request: Request) -> Response:
        try:
            request._body = await read_limited(request, limit)
        except BodyTooLarge:
            return too_large()
        except ClientDisconnect:
            return PlainTextResponse("incomplete request", status_code=400)
        return await endpoint(request)

    return guarded


def bounded_routes(routes: Sequence[BaseRoute], limit: int = BROWSER_MAX_BODY) -> list[BaseRoute]:
    """Every plain route of the list behind :func:`bounded`."""
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route):
            methods = sorted(route.methods or ()) or None
            route = Route(route.path, bounded(route.endpoint, limit), methods=methods, name=route.name)
        out.append(route)
    return out


def signature_ok(secret: str, body: bytes, timestamp: str, signature: str, *, now: float | None = None) -> bool:
    """Slack's v0 signature over raw bytes. Any malformed header is simply a bad signature."""
    if not (0 < len(timestamp) <= MAX_HEADER and timestamp.isascii() and timestamp.isdigit()):
        return False
    if not (signature.isascii() and signature.startswith("v0=") and len(signature) <= MAX_HEADER):
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > SKEW:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def parse_slack_body(text: str, content_type: str) -> tuple[str, dict[str, Any]] | None:
    """The request as Slack sent it, with its kind: ``event`` (JSON), ``interactive`` (a form
    with a ``payload`` field) or ``command`` (a form with a ``command`` field). None otherwise."""
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == "application/json":
            body = json.loads(text)
            return ("event", body) if isinstance(body, dict) else None
        if media != "application/x-www-form-urlencoded":
            return None
        fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
        if "payload" in fields:
            body = json.loads(fields["payload"])
            return ("interactive", body) if isinstance(body, dict) else None
        return ("command", fields) if "command" in fields else None
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to decode
        return None


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _has_id(value: object) -> bool:
    return isinstance(value, dict) and _is_id(value.get("id"))


INTERACTIVE = ("block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut", "message_action")


def shape_ok(body: dict[str, Any]) -> bool:
    """The parts of a Slack payload that Bolt and the listeners rely on are there and typed right."""
    for key in ("event", "team", "user", "channel", "view", "container", "message", "enterprise"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            return False
    for key in ("actions", "authorizations"):
        if body.get(key) is not None and not isinstance(body[key], list):
            return False
    kind = body.get("type")
    if kind in INTERACTIVE:
        if not (_has_id(body.get("team")) and _has_id(body.get("user"))):
            return False
        if kind == "block_actions":
            acts = body.get("actions")
            if not (
                isinstance(acts, list)
                and acts
                and all(isinstance(a, dict) and _is_id(a.get("action_id")) for a in acts)
            ):
                return False
        if kind in ("view_submission", "view_closed") or "view" in body:
            view = body.get("view")
            if not (
                isinstance(view, dict)
                and isinstance(view.get("type"), str)
                and isinstance(view.get("callback_id", ""), str)
            ):
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


def request_kind(body: Mapping[str, Any]) -> str:
    """The kind of an already parsed request (Socket Mode hands Bolt parsed envelopes)."""
    if "command" in body:
        return "command"
    if body.get("type") == "event_callback":
        return "event"
    return "interactive"


def build_routes(
    services: Services, bolt: AsyncApp, routing: SlackRouting, browser: list[BaseRoute]
) -> list[BaseRoute]:
    handler = AsyncSlackRequestHandler(bolt)
    secret = services.settings.slack_signing_secret or ""
    metrics = services.metrics

    async def slack_events(request: Request) -> Response:
        started = time.perf_counter()
        try:
            raw = await read_limited(request)
        except BodyTooLarge:
            return too_large()
        except ClientDisconnect:
            return PlainTextResponse("incomplete request", status_code=400)
        ts = request.headers.get("x-slack-request-timestamp", "")
        if not signature_ok(secret, raw, ts, request.headers.get("x-slack-signature", "")):
            return PlainTextResponse("invalid signature", status_code=401)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return PlainTextResponse("body must be UTF-8", status_code=400)
        parsed = parse_slack_body(text, request.headers.get("content-type", ""))
        if parsed is None or not shape_ok(parsed[1]):
            return PlainTextResponse("malformed Slack payload", status_code=400)
        kind, body = parsed
        label = "-"
        rid = uuid.uuid4().hex[:12]
        request_id.set(rid)  # after-ack tasks inherit it: they copy this context
        if kind == "command":
            if body.get("command") != routing.command:
                return PlainTextResponse("unknown command", status_code=404)
            label = routing.command_label(body)
            answer = await routing.on_command(services, body)
            response: Response = JSONResponse(answer) if answer else Response(status_code=200)
        else:
            request._body = raw  # Starlette caches the body; the Bolt adapter reads it again
            response = await handler.handle(request)
        response.headers["X-Request-Id"] = rid
        metrics.requests.labels(kind, label).inc()
        metrics.ack_latency.labels(kind).observe(time.perf_counter() - started)
        return response

    async def healthz(request: Request) -> Response:
        try:
            ok = await services.store.ping()
        except Exception as exc:  # the whole point is to report it
            log.error("health check failed: %s", type(exc).__name__)
            ok = False
        return JSONResponse({"ok": ok, "database": "ok" if ok else "error"}, status_code=200 if ok else 503)

    async def metrics_view(request: Request) -> Response:
        """Prometheus text; behind a bearer token when FBLINK_METRICS_TOKEN is set. The link
        counts come from a cache refreshed off the event loop (see bot.metrics), not a scan per scrape."""
        token = services.settings.fblink_metrics_token
        if token and not metrics.bearer_ok(request.headers.get("authorization"), token):
            return PlainTextResponse(
                "unauthorized", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="fblink metrics"'}
            )
        await metrics.refresh_link_states(services.store, services.now())
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # Browser and monitoring routes get the bounded read too: no anonymous body costs more than the limit.
    routes: list[BaseRoute] = bounded_routes(
        [
            *browser,
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_view, methods=["GET"]),
        ]
    )
    if not services.settings.socket_mode:
        routes.insert(0, Route("/slack/events", slack_events, methods=["POST"]))
    return routes
