"""Distributed mode: "Add to Slack", Bolt's OAuth routes, and an authorize without a round trip.

Chosen by configuration (``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET``, see :mod:`bot.settings`);
with ``SLACK_BOT_TOKEN`` none of this is built and fblink runs as before.

- Bolt's OAuth flow serves ``/slack/install`` (the "Add to Slack" page) and
  ``/slack/oauth_redirect``, saving to fblink's own installation and state stores
  (:mod:`bot.installations`: tokens encrypted, states single-use);
- :class:`~bot.authorize.CachedAuthorize` (built with the services, as the worker needs it too)
  replaces Bolt's default authorize, which calls ``auth.test`` on every request;
- after a successful install, ``on_installed`` (the handlers' welcome: the installer's DM asking
  for the workspace's Vonage key) runs after the answer, and Bolt's own success page is shown;
- `/fblink` commands skip Bolt (bot/web.py answers them itself), so :meth:`Distributed.guard`
  puts the same authorize in front of them: a workspace with no install is told so;
- an org admin installing from Slack's admin pages comes back without a ``state``: only an
  org-wide install is accepted that way (:func:`bot.installations.org_admin_install`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urljoin

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Installation
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bot.authorize import CachedAuthorize
from bot.installations import InstallationStore, StateStore, org_admin_install
from bot.services import Services

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes of manifest.yml (tests/test_installations_mode.py keeps the two equal).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "users:read",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
)

OnCommand = Callable[[Services, Mapping[str, Any]], Awaitable[dict[str, Any]]]
OnInstalled = Callable[[Services, Installation], Coroutine[Any, Any, None]]


def not_installed() -> dict[str, Any]:
    return {
        "response_type": "ephemeral",
        "text": "fblink is not installed in this workspace. Ask a Slack admin to add it to Slack first.",
    }


class Distributed:
    """Everything distributed mode adds to the app: Bolt's options, the command guard, the routes."""

    def __init__(self, services: Services, on_installed: OnInstalled | None = None) -> None:
        settings = services.settings
        assert settings.slack_client_id and settings.slack_client_secret
        self.services = services
        store = services.store
        assert isinstance(services.installs, CachedAuthorize)  # build_services made it (SLACK_CLIENT_ID)
        self.authorize = services.installs
        self.on_installed = on_installed
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
            callback_options=AsyncCallbackOptions(success=self._installed, failure=self._failed),
        )

    async def _installed(self, args: AsyncSuccessArgs) -> BoltResponse:
        """Bolt saved the install: welcome the installer after the answer, which stays Bolt's page."""
        if self.on_installed is not None:
            self.services.spawn(self.on_installed(self.services, args.installation))
        return await args.default.success(args)

    async def _failed(self, args: AsyncFailureArgs) -> BoltResponse:
        return await args.default.failure(args)

    def bolt_options(self) -> dict[str, Any]:
        """Keyword arguments for Bolt's ``AsyncApp``."""
        return {"authorize": self.authorize, "oauth_settings": self.oauth_settings}

    def guard(self, on_command: OnCommand) -> OnCommand:
        """`/fblink` from a workspace fblink is not installed in is answered with how to install it."""

        async def guarded(services: Services, body: Mapping[str, Any]) -> dict[str, Any]:
            org = str(body.get("is_enterprise_install", "")).lower() == "true"
            install = await self.authorize.install_for(
                body.get("enterprise_id") or None, body.get("team_id") or None, org, request=True
            )
            if install is None:
                return not_installed()
            await self.authorize.note(
                body.get("enterprise_id") or None, body.get("team_id") or None, body.get("team_domain") or None
            )
            return await on_command(services, body)

        return guarded

    def routes(self, bolt: AsyncApp) -> list[BaseRoute]:
        """``/slack/install`` and ``/slack/oauth_redirect``, served by Bolt's OAuth flow."""
        handler = AsyncSlackRequestHandler(bolt)

        async def oauth(request: Request) -> Response:
            return await handler.handle(request)

        async def redirect(request: Request) -> Response:
            q = request.query_params
            if "state" not in q and "error" not in q and q.get("code"):  # from the org admin pages
                assert bolt.oauth_flow is not None
                return await org_admin_install(bolt.oauth_flow, q["code"])
            return await handler.handle(request)

        return [Route(INSTALL_PATH, oauth, methods=["GET"]), Route(REDIRECT_PATH, redirect, methods=["GET"])]
