"""Distributed mode's authorize: each workspace's install, read without a round trip per request.

Bolt's default authorize reads the store and calls ``auth.test`` on every request (300–500 ms,
bolt-python#122). :class:`CachedAuthorize` reads the install once per (enterprise, team) per
``ttl`` seconds and never calls Slack, except through :func:`~bot.installations.fresh_bot_token`
when a rotating token is due. The same object serves Bolt, the `/fblink` command guard, and
:meth:`bot.services.Services.slack_for` (handlers and the worker), so every process refreshes a
token through one path.

Grid: links and reminders know only their team, so a lookup without ``enterprise_id`` finds the
workspace's org in ``slack_teams`` (:mod:`bot.store.teams`), written at install time and on the
first request from each workspace of an org-wide install.

Refresh ahead: an entry past its TTL is still served, for up to one more TTL, while one
background read per workspace replaces it, so a steady stream of requests never waits on the
database for a workspace it has seen (TTLs get ±10% jitter, so entries loaded together do not
all come due together). Never past a token's refresh point, and never once marked gone.

Uninstalls across processes: the process that learns of one drops its entries at once
(:meth:`CachedAuthorize.forget`); every other process reads what was marked gone lately once
every ``RECHECK`` seconds (one query for the whole cache, not one per entry: a per-entry read
put a database round trip on the ack path of every workspace every few seconds) and drops it,
so no process serves a gone install for more than ``RECHECK`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext

from bot.installations import REFRESH_WINDOW, Refresher, fresh_bot_token, wall_now
from bot.store import Store
from bot.store.installations import SlackInstall
from bot.store.teams import TeamRows

CACHE_TTL = 60.0  # seconds an install is trusted without reading it again
RECHECK = 5.0  # seconds between two reads of what was marked gone lately (one read for the whole cache)
GONE_WINDOW = 300  # app-clock seconds looked back by each of those reads: wider than RECHECK and any skew
CACHE_MAX = 20_000  # (enterprise, team) pairs kept at most
JITTER = 0.1  # a TTL is ttl x (1 ± JITTER)

CacheKey = tuple[str, str, bool]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    until: float  # monotonic: served as is until then
    stale_until: float  # then served while a background read replaces it, until this at the latest
    install: SlackInstall


class CachedAuthorize(AsyncAuthorize):
    """Bolt's authorize from fblink's installs, cached per (enterprise, team) for a short TTL.

    A cached token is never used past its refresh window: the entry ends then, and the next
    request goes through :func:`fresh_bot_token`. Negative answers are not cached, so a
    workspace is served from the first request after its install, in every process.
    ``hits`` and ``misses`` count lookups (a stale entry served is a hit); ``refreshes`` counts
    the background reads.
    """

    def __init__(
        self,
        store: Store,
        refresh: Refresher,
        *,
        ttl: float = CACHE_TTL,
        recheck: float = RECHECK,
        window: int = REFRESH_WINDOW,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.refresh, self.ttl, self.window, self.monotonic = store, refresh, ttl, window, monotonic
        self.recheck = recheck
        self.teams = TeamRows(store)
        self._cache: dict[CacheKey, _Entry] = {}
        self._orgs: dict[str, tuple[str, str | None]] = {}  # team -> (enterprise, name) this process recorded
        self._swept = monotonic()  # when the cache last dropped what other processes marked gone
        self._refreshing: dict[CacheKey, asyncio.Task[None]] = {}
        self.hits = 0
        self.misses = 0
        self.refreshes = 0

    async def install_for(
        self,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
        *,
        request: bool = False,
    ) -> SlackInstall | None:
        """The install serving this workspace (cached), or None. Without ``enterprise_id`` (the
        sweep, links) the workspace's org comes from ``slack_teams``; an install or workspace
        marked gone is never served, except that a signed ``request`` from a workspace an
        org-wide install lost proves the org reaches it again (the app was added back)."""
        key = (enterprise_id or "", team_id or "", bool(is_enterprise_install))
        now = self.monotonic()
        if now - self._swept >= self.recheck:
            await self._drop_gone(now)
        entry = self._cache.get(key)
        if entry is not None and entry.stale_until > now:
            self.hits += 1
            if entry.until <= now and key not in self._refreshing:
                self._refresh_ahead(key, enterprise_id, team_id, is_enterprise_install)
            return entry.install
        self.misses += 1
        return await self._load(key, enterprise_id, team_id, is_enterprise_install, request=request)

    def _refresh_ahead(
        self, key: CacheKey, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> None:
        async def read() -> None:
            try:
                self.refreshes += 1
                await self._load(key, enterprise_id, team_id, is_enterprise_install, request=False)
            except Exception as exc:  # the stale entry serves on until it ends; then a request reads
                log.warning(
                    "reading the install of team %s ahead of its expiry failed: %s", team_id, type(exc).__name__
                )
            finally:
                if self._refreshing.get(key) is asyncio.current_task():  # not a later read of the same key
                    del self._refreshing[key]

        self._refreshing[key] = asyncio.get_running_loop().create_task(read())

    async def _load(
        self,
        key: CacheKey,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None,
        *,
        request: bool,
    ) -> SlackInstall | None:
        """Read the install from the database (refreshing a due token) and cache it, or drop it."""
        now = self.monotonic()
        gone = False
        if team_id:
            seen = await self.teams.get(team_id)
            gone = seen is not None and seen[1] is not None
            if gone and not request:  # fblink is gone from this workspace
                self._cache.pop(key, None)
                return None
            if enterprise_id and seen is not None and seen[0] != enterprise_id:
                return None  # a workspace of another org (or none) is never served by this org's install
            if enterprise_id is None and seen is not None:
                enterprise_id = seen[0]
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
        if team_id and gone:
            if not install.is_enterprise_install:
                return None
            await self.teams.installed(team_id, install.enterprise_id, org=False, now=self.store.clock.now())
        ttl = self.ttl * random.uniform(1 - JITTER, 1 + JITTER)
        until, stale_until = now + ttl, now + 2 * ttl
        if install.bot_token_expires_at is not None:  # not past the point where it is due for refresh
            left = now + max(0, install.bot_token_expires_at - self.window - wall_now())
            until, stale_until = min(until, left), min(stale_until, left)
        if len(self._cache) >= CACHE_MAX and key not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = _Entry(until, stale_until, install)
        return install

    async def aclose(self) -> None:
        """Stop the background reads still running (at shutdown)."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drop_gone(self, now: float) -> None:
        """Every ``recheck`` seconds, one read of the installs and workspaces marked gone lately (by
        any process), and their entries dropped: no process serves a gone install for longer, and
        a cache of thousands of workspaces costs one query per period, not one per entry."""
        self._swept = now
        installs, teams = await self.teams.gone_since(self.store.clock.now() - GONE_WINDOW)
        if installs or teams:
            for key, entry in list(self._cache.items()):
                if entry.install.id in installs or key[1] in teams:
                    del self._cache[key]

    async def note(self, enterprise_id: str | None, team_id: str | None, name: str | None = None) -> None:
        """A request came from ``team_id`` of Grid org ``enterprise_id``: record the pair once, so
        the team alone finds the install later (a write only when this process has not yet)."""
        if not team_id or not enterprise_id:
            return
        known = self._orgs.get(team_id)
        if known is not None and known[0] == enterprise_id and (name is None or known[1] == name):
            return
        await self.teams.note(team_id, enterprise_id, name, now=self.store.clock.now())
        if len(self._orgs) >= CACHE_MAX:
            self._orgs.pop(next(iter(self._orgs)))
        self._orgs[team_id] = (enterprise_id, name or (known[1] if known and known[0] == enterprise_id else None))

    def forget(self, enterprise_id: str | None = None, team_id: str | None = None) -> None:
        """Drop cached installs of an org or workspace (after an uninstall or a reinstall); all without ids."""
        for key in [*self._cache, *self._refreshing]:
            if (enterprise_id is None or key[0] == enterprise_id) and (team_id is None or key[1] == team_id):
                self._cache.pop(key, None)
                if (task := self._refreshing.pop(key, None)) is not None:
                    task.cancel()  # a read begun before the uninstall must not put the install back

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
        install = await self.install_for(enterprise_id, team_id, context.is_enterprise_install, request=True)
        if install is None:
            return None
        await self.note(enterprise_id, team_id)
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
