"""Distributed mode: "Add to Slack", Bolt's OAuth routes, and an authorize without a round trip.

Chosen by configuration (``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET``, see :mod:`bot.settings`);
with ``SLACK_BOT_TOKEN`` none of this is built and fblink runs as before.

- Bolt's OAuth flow serves ``/slack/install`` (the "Add to Slack" page) and
  ``/slack/oauth_redirect``, saving to fblink's own installation and state stores
  (:mod:`bot.installations`: tokens encrypted, states single-use);
- :class:`~bot.authorize.CachedAuthorize` (built with the services, as the worker needs it too)
  replaces Bolt's default authorize, which calls ``auth.test`` on every request;
- `/fblink` commands skip Bolt (bot/web.py answers them itself), so :meth:`Distributed.guard`
  puts the same authorize in front of them: a workspace with no install is told so;
- an org admin installing from Slack's admin pages comes back without a ``state``: only an
  org-wide install is accepted that way (:func:`bot.installations.org_admin_install`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urljoin

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
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
        assert isinstance(services.installs, CachedAuthorize)  # build_services made it (SLACK_CLIENT_ID)
        self.authorize = services.installs
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
