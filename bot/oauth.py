"""Distributed mode: "Add to Slack", Bolt's OAuth routes, and an authorize without a round trip.

Chosen by configuration (``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET``, see :mod:`bot.settings`);
with ``SLACK_BOT_TOKEN`` none of this is built and fblink runs as before.

- Bolt's OAuth flow serves ``/slack/install`` (the "Add to Slack" page) and
  ``/slack/oauth_redirect``, saving to fblink's own installation and state stores
  (:mod:`bot.installations`: tokens encrypted, states single-use);
- :class:`CachedAuthorize` replaces Bolt's default authorize, which reads the store and calls
  ``auth.test`` on every request (300–500 ms, bolt-python#122): it reads the install once per
  (enterprise, team) per ``ttl`` seconds and never calls Slack, except through
  :func:`~bot.installations.fresh_bot_token` when a rotating token is due;
- `/fblink` commands skip Bolt (bot/web.py answers them itself), so :meth:`Distributed.guard`
  puts the same authorize in front of them: a workspace with no install is told so.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.installations import (
    REFRESH_WINDOW,
    InstallationStore,
    Refresher,
    StateStore,
    fresh_bot_token,
    slack_refresher,
    wall_now,
)
from bot.services import Services
from bot.store import Store
from bot.store.installations import SlackInstall

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes of manifest.yml (tests/test_installations_mode.py keeps the two equal).
BOT_SCOPES = ("commands", "chat:write", "chat:write.public", "im:write", "users:read", "channels:read", "groups:read")
CACHE_TTL = 60.0  # seconds an install is trusted without reading it again
CACHE_MAX = 20_000  # (enterprise, team) pairs kept at most

OnCommand = Callable[[Services, Mapping[str, Any]], Awaitable[dict[str, Any]]]
CacheKey = tuple[str, str, bool]


@dataclass(frozen=True)
class _Entry:
    until: float  # monotonic
    install: SlackInstall


class CachedAuthorize(AsyncAuthorize):
    """Bolt's authorize from fblink's installs, cached per (enterprise, team) for a short TTL.

    A cached token is never used past its refresh window: the entry ends then, and the next
    request goes through :func:`fresh_bot_token`. Negative answers are not cached, so a
    workspace is served from the first request after its install, in every process.
    """

    def __init__(
        self,
        store: Store,
        refresh: Refresher,
        *,
        ttl: float = CACHE_TTL,
        window: int = REFRESH_WINDOW,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.refresh, self.ttl, self.window, self.monotonic = store, refresh, ttl, window, monotonic
        self._cache: dict[CacheKey, _Entry] = {}
        self.hits = 0
        self.misses = 0

    async def install_for(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> SlackInstall | None:
        """The install serving a request from this workspace (cached), or None."""
        key = (enterprise_id or "", team_id or "", bool(is_enterprise_install))
        entry = self._cache.get(key)
        now = self.monotonic()
        if entry is not None and entry.until > now:
            self.hits += 1
            return entry.install
        self.misses += 1
        install = await fresh_bot_token(
            self.store,
            self.refresh,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
            window=self.window,
        )
        if install is None or not install.bot_token:
            self._cache.pop(key, None)
            return None
        until = now + self.ttl
        if install.bot_token_expires_at is not None:  # not past the point where it is due for refresh
            left = install.bot_token_expires_at - self.window - wall_now()
            until = min(until, now + max(0, left))
        if len(self._cache) >= CACHE_MAX:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = _Entry(until, install)
        return install

    def forget(self, enterprise_id: str | None = None, team_id: str | None = None) -> None:
        """Drop cached installs of an org or workspace (after an uninstall or a reinstall); all without ids."""
        for key in list(self._cache):
            if (enterprise_id is None or key[0] == enterprise_id) and (team_id is None or key[1] == team_id):
                del self._cache[key]

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        install = await self.install_for(enterprise_id, team_id, context.is_enterprise_install)
        if install is None:
            return None
        return AuthorizeResult(
            enterprise_id=install.enterprise_id,
            team_id=team_id if install.is_enterprise_install else install.team_id,
            team=install.team_name,
            bot_user_id=install.bot_user_id,
            bot_id=install.bot_id,
            bot_token=install.bot_token,
            bot_scopes=install.bot_scopes,
            user_id=user_id,
        )


def not_installed() -> dict[str, Any]:
    return {
        "response_type": "ephemeral",
        "text": "fblink is not installed in this workspace. Ask a Slack admin to add it to Slack first.",
    }


class Distributed:
    """Everything distributed mode adds to the app: Bolt's options, the command guard, the routes."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        assert settings.slack_client_id and settings.slack_client_secret
        self.services = services
        store = services.store
        # Its own client, without services.slack's retry handlers: a refresh retried after Slack
        # already took it would spend the refresh token twice (invalid_refresh_token).
        refresh_client = AsyncWebClient(
            base_url=settings.slack_api_url, timeout=int(max(1, settings.fblink_http_timeout))
        )
        self.authorize = CachedAuthorize(
            store, slack_refresher(refresh_client, settings.slack_client_id, settings.slack_client_secret)
        )
        base = settings.fblink_public_url.rstrip("/")
        self.oauth_settings = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            redirect_uri=base + REDIRECT_PATH,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            authorization_url=urljoin(settings.slack_api_url, "/oauth/v2/authorize"),
            installation_store=InstallationStore(store),
            state_store=StateStore(store),
            install_page_rendering_enabled=True,  # the "Add to Slack" page
        )

    def bolt_options(self) -> dict[str, Any]:
        """Keyword arguments for Bolt's ``AsyncApp``."""
        return {"authorize": self.authorize, "oauth_settings": self.oauth_settings}

    def guard(self, on_command: OnCommand) -> OnCommand:
        """`/fblink` from a workspace fblink is not installed in is answered with how to install it."""

        async def guarded(services: Services, body: Mapping[str, Any]) -> dict[str, Any]:
            org = str(body.get("is_enterprise_install", "")).lower() == "true"
            install = await self.authorize.install_for(
                body.get("enterprise_id") or None, body.get("team_id") or None, org
            )
            if install is None:
                return not_installed()
            return await on_command(services, body)

        return guarded

    def routes(self, bolt: AsyncApp) -> list[BaseRoute]:
        """``/slack/install`` and ``/slack/oauth_redirect``, served by Bolt's OAuth flow."""
        handler = AsyncSlackRequestHandler(bolt)

        async def oauth(request: Request) -> Response:
            return await handler.handle(request)

        return [Route(INSTALL_PATH, oauth, methods=["GET"]), Route(REDIRECT_PATH, oauth, methods=["GET"])]
