"""App factory: builds every service once and wires Bolt, Starlette and the scheduler.

Listeners reach the services through Bolt's ``context["services"]`` (set by a
global middleware), so tests swap upstream URLs and the clock through Settings
and ``create_app(clock=...)`` rather than by patching.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette

from bot.clock import Clock
from bot.crypto import Vault
from bot.graph import GraphClient
from bot.http import RetryPolicy
from bot.linking import PageLocks
from bot.logs import install_redaction, request_id
from bot.metrics import Metrics
from bot.settings import Settings
from bot.store import Store
from bot.vonage import Credentials, VonageClient

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a listener needs; created once per process."""

    settings: Settings
    store: Store
    clock: Clock
    graph: GraphClient
    vonage: VonageClient
    slack: AsyncWebClient
    http: httpx.AsyncClient
    metrics: Metrics
    policy: RetryPolicy
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    locks: PageLocks = field(default_factory=PageLocks)

    def __deepcopy__(self, memo: dict[int, Any]) -> "Services":
        # Bolt deep-copies the context for lazy listeners; services are shared, not copied.
        return self

    def now(self) -> int:
        return self.clock.now()

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.settings.admins

    def credentials(self, team_id: str, api_key: str | None = None) -> Credentials | None:
        """The default Vonage key, or another one an admin added (None when unknown)."""
        api_key = api_key or self.settings.vonage_api_key
        if api_key == self.settings.vonage_api_key:
            return Credentials(api_key, self.settings.vonage_api_secret)
        secret = self.store.key_secret(team_id, api_key)
        return Credentials(api_key, secret) if secret else None

    def api_keys(self, team_id: str) -> list[str]:
        keys = [self.settings.vonage_api_key]
        keys += [k["api_key"] for k in self.store.list_keys(team_id) if k["api_key"] != self.settings.vonage_api_key]
        return keys

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run work after the ack, keeping a reference so it is not garbage-collected."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def aclose(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10)
        await self.http.aclose()


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    install_redaction()
    policy = RetryPolicy(
        attempts=settings.fblink_retry_attempts,
        total_timeout=settings.fblink_retry_total,
        wait_initial=settings.fblink_retry_wait,
        wait_max=max(settings.fblink_retry_wait * 10, 0.05),
        wait_jitter=settings.fblink_retry_wait,
        connect_timeout=min(5.0, settings.fblink_http_timeout),
        read_timeout=settings.fblink_http_timeout,
        max_retry_after=min(30.0, settings.fblink_retry_total),
    )
    metrics = Metrics()
    http = httpx.AsyncClient(timeout=policy.timeout(), headers={"User-Agent": "fblink/0.1"})
    store = Store(settings.fblink_database, Vault(settings.fblink_secret_key))
    graph = GraphClient(
        http,
        graph_url=settings.facebook_graph_url,
        login_url=settings.facebook_login_url,
        api_version=settings.facebook_api_version,
        app_id=settings.facebook_app_id,
        app_secret=settings.facebook_app_secret,
        redirect_uri=settings.redirect_uri,
        login_config_id=settings.facebook_login_config_id,
        policy=policy,
        on_attempt=metrics.outbound,
    )
    vonage = VonageClient(http, base_url=settings.vonage_api_url, policy=policy, on_attempt=metrics.outbound)
    slack = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=int(max(1, settings.fblink_http_timeout)),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    return Services(
        settings=settings, store=store, clock=clock or Clock(), graph=graph, vonage=vonage, slack=slack,
        http=http, metrics=metrics, policy=policy,
    )


class _DropTokenUnused(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_TOKEN_UNUSED = _DropTokenUnused()


def _bolt_app(settings: Settings, services: Services) -> AsyncApp:
    return AsyncApp(
        signing_secret=settings.slack_signing_secret or "socket-mode-unused",
        client=services.slack,
        process_before_response=True,
        # bot/web.py checks the signature on the raw bytes before Bolt sees a request
        # (Bolt's own check needs text and would 500 on a non-UTF-8 body); once is enough.
        request_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )


def create_bolt(services: Services) -> AsyncApp:
    settings = services.settings
    # Bolt warns that SLACK_BOT_TOKEN from the environment is unused when a client is given;
    # here that is the point (the client carries the token, base URL and retry handlers).
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    if _TOKEN_UNUSED not in bolt_logger.filters:
        bolt_logger.addFilter(_TOKEN_UNUSED)
    bolt = _bolt_app(settings, services)

    @bolt.middleware
    async def inject_services(context, body, next):  # type: ignore[no-untyped-def]
        context["services"] = services
        if not settings.socket_mode:
            await next()  # HTTP requests get their id, count and timing in bot/web.py
            return
        from bot.web import kind_and_command

        request_id.set(uuid.uuid4().hex[:12])
        started = time.perf_counter()
        await next()
        kind, command = kind_and_command(body)
        services.metrics.requests.labels(kind, command).inc()
        services.metrics.ack_latency.labels(kind).observe(time.perf_counter() - started)

    from handlers import commands, home, keys, links, login, pages, remind

    for module in (commands, login, pages, links, keys, remind, home):
        module.register(bolt)
    return bolt


@dataclass
class FblinkApp:
    services: Services
    bolt: AsyncApp
    asgi: Starlette


def create_app(settings: Settings, clock: Clock | None = None, *, scheduler: bool = True) -> FblinkApp:
    """Build the whole bot: services, Bolt listeners, HTTP routes and (optionally) the scheduler."""
    from bot.web import build_routes

    services = build_services(settings, clock)
    bolt = create_bolt(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sched = None
        socket_handler = None
        if scheduler:
            from bot.scheduler import start_scheduler

            sched = start_scheduler(services)
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            # Fail start-up clearly on a bad app token: the socket client would retry it forever.
            await services.slack.apps_connections_open(app_token=settings.slack_app_token)
            socket_handler = AsyncSocketModeHandler(bolt, settings.slack_app_token)
            await socket_handler.connect_async()
            log.info("Slack traffic over Socket Mode")
        try:
            yield
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()
            if sched is not None:
                from bot.scheduler import stop_scheduler

                await stop_scheduler(sched)
            await services.aclose()
            services.store.close()

    asgi = Starlette(routes=build_routes(services, bolt), lifespan=lifespan)
    return FblinkApp(services=services, bolt=bolt, asgi=asgi)
