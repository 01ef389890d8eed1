"""Services: everything a listener needs, built once per process (slack-machine's setup order:
settings -> storage -> clients). Listeners receive them by name through Bolt's context.

This module imports no handler and no entry point, so the domain and the handlers can
depend on it without a cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import anyio
import httpx
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.authorize import CachedAuthorize
from bot.clock import Clock
from bot.crypto import Vault
from bot.graph import GraphClient
from bot.http import RetryPolicy
from bot.installations import slack_refresher
from bot.logs import install_redaction
from bot.metrics import Metrics
from bot.revocation import Revocation
from bot.settings import Settings
from bot.slack_retry import ShortRateLimitRetry
from bot.store import Store, engine_for
from bot.store.installations import SlackInstall
from bot.turns import Turns
from bot.vonage import Credentials, VonageClient

log = logging.getLogger(__name__)
SHUTDOWN_WAIT = 10.0  # seconds the after-ack tasks get to finish at shutdown
CLIENTS_MAX = 1_000  # per-install Slack clients kept at most (distributed mode)
ROLE_TTL = 300.0  # seconds a person's Slack admin/owner flags (users.info) are trusted
ROLES_MAX = 10_000  # (workspace, person) answers cached at most
SLACK_ROLES = ("is_admin", "is_owner", "is_primary_owner")  # users.info flags that make an fblink admin
NO_KEY = "No Vonage API key is set up for this workspace yet: an fblink admin adds one with `/fblink keys add`."


class NoVonageKey(Exception):
    """Distributed mode: this workspace has not added a Vonage key yet (never another's is used)."""

    def __init__(self, team_id: str) -> None:
        super().__init__(NO_KEY)
        self.team_id = team_id


class NotInstalled(Exception):
    """Distributed mode: no install (or no bot token) serves this workspace, so nothing can be
    said to it in Slack; its work is skipped, never retried against another workspace's token."""

    def __init__(self, team_id: str | None, enterprise_id: str | None = None) -> None:
        super().__init__(f"fblink is not installed for team {team_id} (enterprise {enterprise_id})")
        self.team_id, self.enterprise_id = team_id, enterprise_id


class InstallSource(Protocol):
    """Where distributed mode finds a workspace's install (bot.oauth's cached authorize)."""

    async def install_for(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> SlackInstall | None: ...

    def forget(self, enterprise_id: str | None = None, team_id: str | None = None) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class Services:
    """Settings, store, clients, clock and metrics; created once per process."""

    settings: Settings
    store: Store
    clock: Clock
    graph: GraphClient
    vonage: VonageClient
    slack: AsyncWebClient
    http: httpx.AsyncClient
    metrics: Metrics
    policy: RetryPolicy
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)  # this process, for Page leases
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    opened: bool = False  # the store is connected (start() ran)
    loop: asyncio.AbstractEventLoop | None = None  # the loop start() ran on (tests reach the store through it)
    turns: Turns = field(default_factory=Turns)  # background work takes one step per loop iteration
    installs: InstallSource | None = None  # distributed mode (SLACK_CLIENT_ID): each workspace's own token
    _clients: dict[str, AsyncWebClient] = field(default_factory=dict)  # per bot token, sharing one session
    _roles: dict[tuple[str, str], tuple[float, bool]] = field(default_factory=dict)  # users.info, per workspace

    def now(self) -> int:
        return self.clock.now()

    async def slack_for(self, team_id: str | None, enterprise_id: str | None = None) -> AsyncWebClient:
        """The Web API client that speaks for this workspace: the one bot token in single-workspace
        mode; in distributed mode a client with that install's (fresh) token, sharing the pooled
        session and retry handlers. Raises :class:`NotInstalled` when nothing serves the workspace."""
        if self.installs is None:
            return self.slack
        install = await self.installs.install_for(enterprise_id or None, team_id or None)
        if install is None or not install.bot_token:
            raise NotInstalled(team_id, enterprise_id)
        client = self._clients.get(install.bot_token)
        if client is None:
            if len(self._clients) >= CLIENTS_MAX:  # a rotated token's client is dropped oldest first
                self._clients.pop(next(iter(self._clients)))
            client = AsyncWebClient(
                token=install.bot_token,
                base_url=self.slack.base_url,
                timeout=self.slack.timeout,
                session=self.slack.session,
                retry_handlers=[Revocation(self.store, self.installs, install), *self.slack.retry_handlers],
            )
            self._clients[install.bot_token] = client
        return client

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """An fblink admin of this workspace. One workspace: FBLINK_ADMINS, as always. Distributed:
        its installer and the admins it added (`/fblink admins add`), or a Slack admin or owner of
        that workspace (users.info with its own token, cached for a few minutes)."""
        if not self.settings.distributed:
            return user_id in self.settings.admins
        if not team_id or not user_id:
            return False
        if await self.store.is_team_admin(team_id, user_id):
            return True
        return await self.slack_admin(team_id, user_id)

    async def slack_admin(self, team_id: str, user_id: str) -> bool:
        """users.info's admin and owner flags for this person, asked with this workspace's token."""
        key, now = (team_id, user_id), time.monotonic()
        cached = self._roles.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            answer = await (await self.slack_for(team_id)).users_info(user=user_id)
        except Exception as exc:  # unknown here, not installed, Slack down: not an admin, asked again next time
            log.info("users.info for an admin check failed: %s", type(exc).__name__)
            return False
        user = answer.get("user") or {}
        is_admin = any(user.get(flag) is True for flag in SLACK_ROLES)
        if len(self._roles) >= ROLES_MAX:
            self._roles.pop(next(iter(self._roles)))
        self._roles[key] = (now + ROLE_TTL, is_admin)
        return is_admin

    def forget_role(self, team_id: str, user_id: str) -> None:
        """An admin was added or removed here: this process asks again (others within ROLE_TTL)."""
        self._roles.pop((team_id, user_id), None)

    async def admins(self, team_id: str) -> list[str]:
        """The fblink admins to name to someone refused: FBLINK_ADMINS, or those this workspace added."""
        if not self.settings.distributed:
            return sorted(self.settings.admins)
        return [str(r["user_id"]) for r in await self.store.team_admins(team_id)]

    async def credentials(self, team_id: str, api_key: str | None = None) -> Credentials | None:
        """The default Vonage key, or another one an admin added (None when unknown). The default is
        VONAGE_API_KEY with one workspace; in distributed mode the workspace's first added key
        (:class:`NoVonageKey` when it has none)."""
        if not self.settings.distributed:
            api_key = api_key or self.settings.vonage_api_key
            if api_key and api_key == self.settings.vonage_api_key and self.settings.vonage_api_secret:
                return Credentials(api_key, self.settings.vonage_api_secret)
        elif api_key is None:
            api_key = await self.store.default_key(team_id)
            if api_key is None:
                raise NoVonageKey(team_id)
        secret = await self.store.key_secret(team_id, api_key) if api_key else None
        return Credentials(api_key, secret) if api_key and secret else None

    async def api_keys(self, team_id: str) -> list[str]:
        """The workspace's keys, the default first (:class:`NoVonageKey` when a workspace has none)."""
        default = (
            self.settings.vonage_api_key if not self.settings.distributed else await self.store.default_key(team_id)
        )
        if default is None:
            raise NoVonageKey(team_id)
        return [default, *(k["api_key"] for k in await self.store.list_keys(team_id) if k["api_key"] != default)]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work after the ack as a tracked task: kept alive, and awaited at shutdown."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("after-ack work failed: %s", type(exc).__name__, exc_info=exc)

    async def start(self) -> None:
        """Inside the running loop: one pooled HTTP session for every Slack Web API call
        (without it slack_sdk opens and closes a session per call, on the event loop), the
        database opened (a schema behind this version's is refused) with its upkeep started."""
        if self.slack.session is None:
            self.slack.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.slack.timeout))
        anyio.Event()  # httpx's first request imports anyio's asyncio backend: ~50 ms on the loop, paid here
        if not self.opened:
            self.loop = asyncio.get_running_loop()
            await self.store.open()
            await self.store.engine.serve()
            self.opened = True

    async def aclose(self) -> None:
        """Wait for after-ack work, then close the clients and the database."""
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=SHUTDOWN_WAIT)
        if self.installs is not None:
            await self.installs.aclose()
        if self.slack.session is not None:
            await self.slack.session.close()
            self.slack.session = None
        self._clients.clear()  # they shared the closed session
        await self.http.aclose()
        self.metrics.close()
        if self.opened:
            await self.store.close()
            self.opened = False


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.fblink_retry_attempts,
        total_timeout=settings.fblink_retry_total,
        wait_initial=settings.fblink_retry_wait,
        wait_max=max(settings.fblink_retry_wait * 10, 0.05),
        wait_jitter=settings.fblink_retry_wait,
        connect_timeout=min(5.0, settings.fblink_http_timeout),
        read_timeout=settings.fblink_http_timeout,
        max_retry_after=min(30.0, settings.fblink_retry_total),
    )


def open_store(settings: Settings, clock: Clock | None = None) -> Store:
    """The Store on the configured engine (not yet connected: :meth:`Services.start` does that)."""
    return Store(engine_for(settings), Vault(settings.fblink_secret_key), clock=clock)


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    install_redaction()
    policy = retry_policy(settings)
    metrics = Metrics()
    http = httpx.AsyncClient(timeout=policy.timeout(), headers={"User-Agent": "fblink/0.1"})
    store = open_store(settings, clock)
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
            ShortRateLimitRetry(max_retry_count=2),  # a long Retry-After is not slept through (bot.slack_retry)
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
    installs = None
    if settings.distributed:
        assert settings.slack_client_id and settings.slack_client_secret
        # Its own client, without the retry handlers: a refresh retried after Slack already took
        # it would spend the refresh token twice (invalid_refresh_token).
        refresh_client = AsyncWebClient(
            base_url=settings.slack_api_url, timeout=int(max(1, settings.fblink_http_timeout))
        )
        installs = CachedAuthorize(
            store, slack_refresher(refresh_client, settings.slack_client_id, settings.slack_client_secret)
        )
    return Services(
        installs=installs,
        settings=settings,
        store=store,
        clock=clock or Clock(),
        graph=graph,
        vonage=vonage,
        slack=slack,
        http=http,
        metrics=metrics,
        policy=policy,
    )


@contextlib.asynccontextmanager
async def open_services(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Services]:
    """Services for one unit of work (`fblink sweep`, a benchmark); everything is closed after."""
    services = build_services(settings, clock)
    await services.start()
    try:
        yield services
    finally:
        await services.aclose()
