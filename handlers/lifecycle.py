"""Slack's lifecycle events: fblink uninstalled, its tokens revoked, an org's workspaces taken away or
given back (distributed mode).

Bolt skips authorize for ``app_uninstalled``, ``tokens_revoked`` and ``team_access_revoked`` (the
token may be dead already), so these read the install from the store themselves. Each is done
before the ack: once Slack has its 200 the workspace is already out of every sweep and probe.
Nobody is told in Slack (see :mod:`bot.revocation`).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.revocation import retire, retire_teams
from bot.services import Services
from bot.store.installations import InstallationRows
from bot.store.teams import TeamRows

log = logging.getLogger(__name__)


def _where(body: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    """(enterprise_id, team_id, org-wide) of an event's install, from its envelope."""
    auths = body.get("authorizations") or [{}]
    first = auths[0] if isinstance(auths, list) and auths and isinstance(auths[0], dict) else {}
    org = bool(first.get("is_enterprise_install") or body.get("is_enterprise_install"))
    return body.get("enterprise_id") or None, body.get("team_id") or None, org


async def _retire_serving(
    services: Services, body: dict[str, Any], why: str, *, bot_users: list[str] | None = None
) -> None:
    """Retire the install serving the envelope's workspace (with ``bot_users``: only when its
    bot user is among them, as ``tokens_revoked`` names the bot users whose tokens went)."""
    if services.installs is None:  # single-workspace mode: nothing is stored per install
        return
    enterprise_id, team_id, org = _where(body)
    install = await InstallationRows(services.store).find(enterprise_id, team_id, is_enterprise_install=org)
    if install is None or (bot_users is not None and install.bot_user_id not in bot_users):
        log.info("%s for a workspace with no such live install; nothing to do", why)
        return
    await retire(services.store, services.installs, install, why=why)


async def app_uninstalled(ack: AsyncAck, body: dict[str, Any], services: Services) -> None:
    await _retire_serving(services, body, "app_uninstalled")
    await ack()


async def tokens_revoked(ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    """Bot tokens listed: the install is gone. User tokens only: the installer's token is dropped."""
    tokens = event.get("tokens") or {}
    if tokens.get("bot"):
        await _retire_serving(services, body, "tokens_revoked", bot_users=[str(u) for u in tokens["bot"]])
    elif tokens.get("oauth") and services.installs is not None:
        enterprise_id, team_id, org = _where(body)
        rows = InstallationRows(services.store)
        for user_id in tokens["oauth"]:
            await rows.forget_user(enterprise_id, None if org else team_id, str(user_id), now=services.now())
        services.installs.forget(enterprise_id, team_id)
    await ack()


async def team_access_revoked(ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    enterprise_id = body.get("enterprise_id") or None
    named = [str(t) for t in event.get("team_ids") or [] if t]
    if services.installs is not None and enterprise_id:  # only this org's own workspaces
        teams = await TeamRows(services.store).members(named, enterprise_id)
        if teams:
            await retire_teams(services.store, services.installs, teams, enterprise_id)
    await ack()


async def team_access_granted(ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], services: Services) -> None:
    """An org-wide install reaches these workspaces (again): each starts clean (``sync`` finds its links)."""
    enterprise_id = body.get("enterprise_id") or None
    org = await InstallationRows(services.store).get(enterprise_id, None, org=True) if enterprise_id else None
    teams = TeamRows(services.store)
    for team in [str(t) for t in event.get("team_ids") or [] if t] if services.installs and org else []:
        seen = await teams.get(team)
        if seen is None or seen[0] == enterprise_id:  # never another org's workspace
            await teams.installed(team, enterprise_id, org=False, now=services.now())
    await ack()


def register(app: AsyncApp) -> None:
    app.event("app_uninstalled")(app_uninstalled)
    app.event("tokens_revoked")(tokens_revoked)
    app.event("team_access_revoked")(team_access_revoked)
    app.event("team_access_granted")(team_access_granted)
