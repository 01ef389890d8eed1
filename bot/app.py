"""The app factory: settings -> services -> Bolt listeners -> HTTP routes -> scheduler.

A process has a role: ``web`` answers HTTP (Slack's acks, buttons, modals, the login pages,
health and metrics) and runs no scheduler; ``worker`` runs the scheduler (sweeps, probes,
pruning) and serves only /healthz and /metrics; ``all`` (plain `fblink serve`) does both, as
one process always did. Any number of each may share one database: claims in the database
keep each reminder to one post.

Listeners take the services by name (``services``): a global middleware puts them in
Bolt's context, and Bolt injects context keys as listener arguments. Tests swap the
upstream URLs through Settings and the clock through ``create_app(clock=...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.authorize import CachedAuthorize
from bot.clock import Clock
from bot.logs import request_id
from bot.oauth import Distributed
from bot.scheduler import start_scheduler, stop_scheduler
from bot.services import SHUTDOWN_WAIT, Services, build_services
from bot.settings import Settings
from bot.turns import Turns
from bot.web import Health, SlackRouting, build_routes, health_routes, request_kind
from handlers import commands, home, keys, lifecycle, link_modal, links, login, pages, status

log = logging.getLogger(__name__)
Role = Literal["all", "web", "worker"]
ROLES: tuple[Role, ...] = ("all", "web", "worker")
LISTENERS = (commands, login, pages, links, link_modal, status, keys, home, lifecycle)


class _DropTokenUnused(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN is unused when a client is given; here that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_TOKEN_UNUSED = _DropTokenUnused()


def create_bolt(services: Services, distributed: Distributed | None = None) -> AsyncApp:
    settings = services.settings
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    if _TOKEN_UNUSED not in bolt_logger.filters:
        bolt_logger.addFilter(_TOKEN_UNUSED)
    bolt = AsyncApp(
        signing_secret=settings.slack_signing_secret or "socket-mode-unused",
        client=services.slack,
        process_before_response=True,  # listeners ack and spawn their slow work: no 10 ms ack wait
        # bot/web.py checks the signature on the raw bytes before Bolt sees a request; once is enough.
        request_verification_enabled=False,
        raise_error_for_unhandled_request=False,
        **(distributed.bolt_options() if distributed else {}),  # SLACK_CLIENT_ID: installs, cached authorize
    )

    async def inject_services(
        context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> None:
        context["services"] = services
        if not settings.socket_mode:
            await next()  # HTTP requests get their id, count and timing in bot/web.py
            return
        request_id.set(uuid.uuid4().hex[:12])
        started = time.perf_counter()
        await next()
        kind = request_kind(body)
        label = commands.metric_label(body) if kind == "command" else "-"
        services.metrics.requests.labels(kind, label).inc()
        services.metrics.ack_latency.labels(kind).observe(time.perf_counter() - started)

    bolt.middleware(inject_services)
    for module in LISTENERS:
        module.register(bolt)
    return bolt


@dataclass
class FblinkApp:
    services: Services
    bolt: AsyncApp | None  # None in a worker: it answers no Slack request
    asgi: Starlette
    health: Health  # the role, and whether the process is draining (set by the server on SIGTERM)


def browser_routes(services: Services) -> list[Route]:
    async def login_page(request: Request) -> Response:
        return await login.login_page(services, request)

    async def callback(request: Request) -> Response:
        return await login.facebook_callback(services, request)

    return [
        Route("/facebook/login", login_page, methods=["GET", "POST"]),
        Route("/facebook/callback", callback, methods=["GET"]),
    ]


def create_app(
    settings: Settings, clock: Clock | None = None, *, scheduler: bool = True, role: Role = "all"
) -> FblinkApp:
    """Build the bot for one role: services, Bolt listeners and HTTP routes (not in a worker),
    and the scheduler (not in a web process; ``scheduler=False`` leaves it out anywhere)."""
    services = build_services(settings, clock)
    if role == "worker":
        services.turns = Turns(shared=False)  # no acks share a worker's loop: no turns, no request pacing
    health = Health(role)
    serves_slack = role != "worker"
    runs_scheduler = scheduler and role != "web"
    if isinstance(services.installs, CachedAuthorize):  # distributed mode, web and worker alike
        services.metrics.count_authorize_cache(services.installs)
    distributed = Distributed(services, keys.welcome_installer) if settings.distributed and serves_slack else None
    bolt = create_bolt(services, distributed) if serves_slack else None
    on_command = distributed.guard(commands.handle_command) if distributed else commands.handle_command
    routing = SlackRouting(command=commands.COMMAND, on_command=on_command, command_label=commands.metric_label)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        sched = start_scheduler(services) if runs_scheduler else None
        socket_handler = None
        if bolt is not None and settings.socket_mode and settings.slack_app_token:
            # Fail start-up clearly on a bad app token: the socket client would retry it forever.
            await services.slack.apps_connections_open(app_token=settings.slack_app_token)
            socket_handler = AsyncSocketModeHandler(bolt, settings.slack_app_token)
            await socket_handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
            log.info("Slack traffic over Socket Mode")
        log.info("fblink started as %s", role)
        try:
            yield
        finally:
            if socket_handler is not None:
                await socket_handler.close_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
            if sched is not None:
                await stop_scheduler(sched)
            await finish_tasks(services, health)
            await services.aclose()

    if bolt is not None:
        extra = [*browser_routes(services), *(distributed.routes(bolt) if distributed else [])]
        routes = build_routes(services, bolt, routing, extra, health)
    else:
        routes = health_routes(services, health, readiness=False)
    asgi = Starlette(routes=routes, lifespan=lifespan)
    return FblinkApp(services=services, bolt=bolt, asgi=asgi, health=health)


async def finish_tasks(services: Services, health: Health) -> None:
    """Tracked work (after-ack tasks, a running sweep) gets what is left of the drain's grace;
    what is still running then is cancelled, so the process exits on time. A sweep cut short
    leaves claims that another worker takes over once their lease runs out."""
    if not services.tasks:
        return
    _, pending = await asyncio.wait(set(services.tasks), timeout=health.left(SHUTDOWN_WAIT))
    if pending:
        log.warning("shutdown: %d task(s) still running at the end of the grace period; cancelled", len(pending))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=1.0)
