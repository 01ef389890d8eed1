"""When fblink is gone from a workspace: uninstalled, its token revoked, or its org's access taken away.

One path for all of them, whether Slack said so with an event (handlers/lifecycle.py) or answered
a call with ``invalid_auth`` / ``account_inactive`` / ``token_revoked`` (:class:`Revocation`, on
every per-install client): the install is marked gone with its tokens deleted, the workspace's
secrets (Vonage keys, Facebook logins) deleted, its links taken out of the sweep and the probes,
and the install dropped from this process's authorize cache (other processes re-check within
``bot.authorize.RECHECK`` seconds). Nobody is told in Slack: they removed fblink. After
``FBLINK_RETENTION_DAYS`` every row of the workspace is deleted (:func:`prune_gone`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.clock import DAY
from bot.store import Store
from bot.store.installations import SlackInstall
from bot.store.teams import TeamRows

log = logging.getLogger(__name__)

# Slack's answers meaning the token will never work again (token_expired is rotation's business).
DEAD = frozenset({"invalid_auth", "account_inactive", "token_revoked"})
PRUNE_BATCHES = 100  # x 20 workspaces per daily run at most


class Forgets(Protocol):
    """The authorize cache (:class:`bot.authorize.CachedAuthorize`)."""

    def forget(self, enterprise_id: str | None = None, team_id: str | None = None) -> None: ...


def _forget(installs: Forgets | None, enterprise_id: str | None, teams: Sequence[str], *, org: bool) -> None:
    if installs is None:
        return
    for team in teams:
        installs.forget(team_id=team)
    if org and enterprise_id:
        installs.forget(enterprise_id=enterprise_id)


async def retire(store: Store, installs: Forgets | None, install: SlackInstall, *, why: str) -> list[str]:
    """The install is gone: marked, tokens and its workspaces' secrets deleted, links out of the
    sweep, cache entries dropped. Safe to repeat (a second call finds it gone and does nothing)."""
    if install.id is None:
        return []
    teams = await TeamRows(store).retire_install(install.id, now=store.clock.now())
    _forget(
        installs,
        install.enterprise_id,
        [*(teams or []), *([install.team_id] if install.team_id else [])],
        org=install.is_enterprise_install,
    )
    if teams is not None:
        log.warning("install %s is gone (%s): %d workspace(s) retired", install.id, why, len(teams))
    return teams or []


async def retire_teams(
    store: Store, installs: Forgets | None, team_ids: Sequence[str], enterprise_id: str | None
) -> None:
    """An org-wide install lost these workspaces (``team_access_revoked``); the install itself stays."""
    await TeamRows(store).retire(team_ids, enterprise_id, now=store.clock.now())
    _forget(installs, enterprise_id, team_ids, org=False)
    log.warning("org %s lost %d workspace(s)", enterprise_id, len(team_ids))


class Revocation(AsyncRetryHandler):
    """A retry handler that never retries: on a per-install client, it reads every answer and
    retires the install when Slack says its token is dead. The caller still gets Slack's error."""

    def __init__(self, store: Store, installs: Forgets | None, install: SlackInstall) -> None:
        super().__init__(max_retry_count=1 << 30)  # consulted on every answer; never asks for a retry
        self.store, self.installs, self.install = store, installs, install

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body = response.body if response is not None else None
        if isinstance(body, dict) and body.get("ok") is False and body.get("error") in DEAD:
            await retire(self.store, self.installs, self.install, why=str(body["error"]))
        return False


async def prune_gone(store: Store, *, now: int, retention_days: int) -> int:
    """Retention for gone workspaces: every row of one gone for ``retention_days``; how many."""
    before, total = now - retention_days * DAY, 0
    for _ in range(PRUNE_BATCHES):
        n = await TeamRows(store).prune_gone(before=before)
        total += n
        if not n:
            break
    return total
