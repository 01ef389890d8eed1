"""Distributed mode's installations: slack_sdk's stores on fblink's own database, and the one
path every bot token of an install is fetched through.

- :class:`InstallationStore` is slack_sdk's ``AsyncInstallationStore`` (what Bolt's OAuth
  flow saves to and reads from) on :mod:`bot.store.installations`: tokens Fernet-encrypted,
  never slack_sdk's file or SQLAlchemy stores (plain text);
- :class:`StateStore` is its ``AsyncOAuthStateStore``: a state is stored hashed, used once,
  and expires;
- :func:`fresh_bot_token` is how handlers *and* background jobs get a bot token. With token
  rotation on, a token due within the window is refreshed here and only here, under a row
  lock, re-reading the row once the lock is held: two processes never spend one refresh
  token (Slack answers the second ``invalid_refresh_token``, and the install is dead).
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from starlette.responses import HTMLResponse, Response

from bot.store import Store
from bot.store.installations import InstallationRows, SlackInstall

log = logging.getLogger(__name__)

REFRESH_WINDOW = 120 * 60  # seconds before expiry a token is refreshed (Bolt's default: 120 minutes)
STATE_TTL = 600  # seconds an "Add to Slack" state lives (Bolt's default)

# A refresh: the refresh token in, Slack's ``oauth.v2.access`` answer out.
Refresher = Callable[[str], Awaitable[dict[str, Any]]]


class TokenRefreshError(Exception):
    """Slack refused a refresh (``invalid_refresh_token``: spent or revoked); the install needs reinstalling."""

    def __init__(self, error: str) -> None:
        super().__init__(f"Slack refused the token refresh: {error}")
        self.error = error


def _scopes(value: Any) -> str:
    if not value:
        return ""
    return value if isinstance(value, str) else ",".join(value)


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def from_installation(i: Installation) -> SlackInstall:
    return SlackInstall(
        enterprise_id=i.enterprise_id,
        team_id=None if i.is_enterprise_install else i.team_id,
        is_enterprise_install=bool(i.is_enterprise_install),
        installed_at=int(i.installed_at),
        enterprise_name=i.enterprise_name,
        enterprise_url=i.enterprise_url,
        team_name=i.team_name,
        app_id=i.app_id,
        token_type=i.token_type,
        bot_id=i.bot_id,
        bot_user_id=i.bot_user_id,
        bot_scopes=_scopes(i.bot_scopes),
        bot_token=i.bot_token,
        bot_refresh_token=i.bot_refresh_token,
        bot_token_expires_at=_int(i.bot_token_expires_at),
        user_id=i.user_id,
        user_scopes=_scopes(i.user_scopes),
        user_token=i.user_token,
        user_refresh_token=i.user_refresh_token,
        user_token_expires_at=_int(i.user_token_expires_at),
        incoming_webhook_url=i.incoming_webhook_url,
        incoming_webhook_channel=i.incoming_webhook_channel,
        incoming_webhook_channel_id=i.incoming_webhook_channel_id,
        incoming_webhook_configuration_url=i.incoming_webhook_configuration_url,
    )


def to_installation(s: SlackInstall) -> Installation:
    return Installation(
        app_id=s.app_id,
        enterprise_id=s.enterprise_id,
        enterprise_name=s.enterprise_name,
        enterprise_url=s.enterprise_url,
        team_id=s.team_id,
        team_name=s.team_name,
        bot_token=s.bot_token,
        bot_id=s.bot_id,
        bot_user_id=s.bot_user_id,
        bot_scopes=s.bot_scopes,
        bot_refresh_token=s.bot_refresh_token,
        bot_token_expires_at=s.bot_token_expires_at,
        user_id=s.user_id or "",
        user_token=s.user_token,
        user_scopes=s.user_scopes,
        user_refresh_token=s.user_refresh_token,
        user_token_expires_at=s.user_token_expires_at,
        incoming_webhook_url=s.incoming_webhook_url,
        incoming_webhook_channel=s.incoming_webhook_channel,
        incoming_webhook_channel_id=s.incoming_webhook_channel_id,
        incoming_webhook_configuration_url=s.incoming_webhook_configuration_url,
        is_enterprise_install=s.is_enterprise_install,
        token_type=s.token_type,
        installed_at=float(s.installed_at),
    )


def to_bot(s: SlackInstall) -> Bot:
    return Bot(
        app_id=s.app_id,
        enterprise_id=s.enterprise_id,
        enterprise_name=s.enterprise_name,
        team_id=s.team_id,
        team_name=s.team_name,
        bot_token=s.bot_token or "",
        bot_id=s.bot_id or "",
        bot_user_id=s.bot_user_id or "",
        bot_scopes=s.bot_scopes,
        bot_refresh_token=s.bot_refresh_token,
        bot_token_expires_at=s.bot_token_expires_at,
        is_enterprise_install=s.is_enterprise_install,
        installed_at=float(s.installed_at),
    )


class InstallationStore(AsyncInstallationStore):
    """slack_sdk's installation store on fblink's database (one row per install, tokens encrypted)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows = InstallationRows(store)

    @property
    def logger(self) -> logging.Logger:
        return log

    def _now(self) -> int:
        return self.store.clock.now()

    async def async_save(self, installation: Installation) -> None:
        await self.rows.save(from_installation(installation), now=self._now())

    async def async_save_bot(self, bot: Bot) -> None:
        """A bot alone (Bolt's bot-only mode): its columns, keeping the installer's."""
        found = await self.rows.get(bot.enterprise_id, bot.team_id, org=bool(bot.is_enterprise_install))
        base = found or SlackInstall(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            is_enterprise_install=bool(bot.is_enterprise_install),
            installed_at=int(bot.installed_at),
        )
        base.enterprise_name, base.team_name, base.app_id = bot.enterprise_name, bot.team_name, bot.app_id
        base.bot_id, base.bot_user_id, base.bot_scopes = bot.bot_id, bot.bot_user_id, _scopes(bot.bot_scopes)
        base.bot_token, base.bot_refresh_token = bot.bot_token, bot.bot_refresh_token
        base.bot_token_expires_at = _int(bot.bot_token_expires_at)
        await self.rows.save(base, now=self._now())

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        found = await self.rows.find(enterprise_id, team_id, is_enterprise_install=is_enterprise_install)
        return to_bot(found) if found and found.bot_token else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The install serving this workspace; with ``user_id``, only when that user installed it
        (the one user token fblink keeps is the installer's)."""
        found = await self.rows.find(enterprise_id, team_id, is_enterprise_install=is_enterprise_install)
        if found is None or (user_id is not None and found.user_id != user_id):
            return None
        return to_installation(found)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.rows.forget_bot(enterprise_id, team_id, now=self._now())

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:
            await self.rows.delete(enterprise_id, team_id)
        else:
            await self.rows.forget_user(enterprise_id, team_id, user_id, now=self._now())

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.rows.delete(enterprise_id, team_id)


class StateStore(AsyncOAuthStateStore):
    """slack_sdk's OAuth state store on fblink's database: hashed, single use, expiring."""

    def __init__(self, store: Store, *, expiration_seconds: int = STATE_TTL) -> None:
        self.rows = InstallationRows(store)
        self.store = store
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await self.rows.issue_state(now=self.store.clock.now(), ttl=self.expiration_seconds)

    async def async_consume(self, state: str) -> bool:
        return await self.rows.consume_state(state, now=self.store.clock.now())


# -- installs from Slack's org admin pages ---------------------------------------------------
async def org_admin_install(flow: AsyncOAuthFlow, code: str) -> Response:
    """A redirect without a ``state``: Slack sends one only when an org admin installs from the
    admin pages, which fblink cannot have issued a state for. The code is exchanged, and only an
    org-wide install (``is_enterprise_install: true``) is saved; anything else is refused without
    saving (its token is revoked), so a forged or replayed workspace install cannot skip the state."""
    installation = await flow.run_installation(code)
    if installation is None:
        return HTMLResponse("This install link is no longer valid. Start again from Slack.", status_code=401)
    if not installation.is_enterprise_install:
        log.warning("refused an install without a state: not an org-wide install")
        if installation.bot_token:
            try:
                await flow.client.auth_revoke(token=installation.bot_token)
            except SlackApiError as exc:
                log.warning("could not revoke the refused install's token: %s", exc.response.get("error"))
        return HTMLResponse(
            'Install fblink from its "Add to Slack" page: only an org admin can install it without one.',
            status_code=401,
        )
    await flow.settings.installation_store.async_save(installation)
    log.info("org-wide install from the admin pages for enterprise %s", installation.enterprise_id)
    org = html.escape(installation.enterprise_name or "your organization")
    return HTMLResponse(f"fblink is installed for {org}.")


# -- the one path to a bot token ------------------------------------------------------------
def slack_refresher(client: AsyncWebClient, client_id: str, client_secret: str) -> Refresher:
    """A refresh through ``oauth.v2.access`` (``grant_type=refresh_token``), Slack's errors as
    :class:`TokenRefreshError`. Give it a client without retry handlers: a retry after Slack took
    the first try would spend the refresh token twice."""

    async def refresh(refresh_token: str) -> dict[str, Any]:
        try:
            answer = await client.oauth_v2_access(
                client_id=client_id,
                client_secret=client_secret,
                grant_type="refresh_token",
                refresh_token=refresh_token,
            )
        except SlackApiError as exc:
            raise TokenRefreshError(str(exc.response.get("error") or "unknown")) from None
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    return refresh


async def fresh_bot_token(
    store: Store,
    refresh: Refresher,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool | None = False,
    window: int = REFRESH_WINDOW,
) -> SlackInstall | None:
    """The install serving ``(enterprise_id, team_id)`` with a bot token good for ``window`` more
    seconds, refreshing it first when due; None when nothing is installed there.

    The common case reads one row and takes no lock. A due token is refreshed inside one write
    transaction that holds the row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite ``BEGIN
    IMMEDIATE``) and reads it again once held: a process that waited finds the token another
    one just refreshed, and uses it instead of spending the same refresh token.
    """
    rows = InstallationRows(store)
    found = await rows.find(enterprise_id, team_id, is_enterprise_install=is_enterprise_install)
    if found is None or found.id is None or not _due(found, wall_now(), window):
        return found
    async with store.transaction():
        held = await rows.locked(found.id)
        if held is None or not _due(held, wall_now(), window):
            return held  # refreshed (or removed) by another process while we waited
        assert held.bot_refresh_token is not None
        answer = await refresh(held.bot_refresh_token)
        if answer.get("token_type") != "bot" or not answer.get("access_token"):
            raise TokenRefreshError("not_a_bot_token")
        now = wall_now()
        held.bot_token = str(answer["access_token"])
        held.bot_refresh_token = str(answer.get("refresh_token") or held.bot_refresh_token)
        held.bot_token_expires_at = now + int(answer["expires_in"]) if answer.get("expires_in") else None
        await rows.set_bot_token(
            held.id or found.id,
            token=held.bot_token,
            refresh_token=held.bot_refresh_token,
            expires_at=held.bot_token_expires_at,
            now=now,
        )
    log.info("refreshed the bot token of install %s", held.id)
    return held


def wall_now() -> int:
    """Token expiry is Slack's real time, never the app clock a test or the demo moves."""
    return int(time.time())


def _due(install: SlackInstall, now: int, window: int) -> bool:
    return (
        install.bot_token_expires_at is not None
        and install.bot_refresh_token is not None
        and install.bot_token_expires_at <= now + window
    )
