"""Slack's OAuth v2 for the fake Slack: installs, token rotation, ``auth.test`` and revocation.

Written from Slack's docs (``oauth.v2.access``, "Using token rotation", "Installing org-wide
apps"), not from fblink's code:

- the authorize page (``GET /oauth/v2/authorize``) sends the browser back to the app's
  ``redirect_uri`` with a ``code`` and the app's ``state``, as a person clicking *Allow*
  does; the workspace (or Enterprise Grid org) that installs is whatever the test set up
  with :meth:`SlackOAuth.install_as`;
- ``oauth.v2.access`` takes the client credentials as form fields or HTTP Basic; a ``code``
  is single-use and expires (10 minutes); ``grant_type=refresh_token`` spends a refresh
  token once (a second use is ``invalid_refresh_token``);
- a workspace install answers ``team: {id, name}``, ``enterprise`` (or null) and
  ``is_enterprise_install: false``; an org-wide install ``team: null``, ``enterprise`` and
  ``is_enterprise_install: true``;
- with token rotation on, access tokens (``xoxe.xoxb-…``) expire after ``expires_in``
  (43,200 s) and come with a refresh token (``xoxe-1-…``);
- ``auth.test`` answers for any issued token; a revoked token answers ``token_revoked``,
  an expired one ``token_expired``, an unknown one ``invalid_auth``.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from bot.fakes.base import HOLD_MAX, Request, Response
from bot.fakes.slack_limits import error

CODE_TTL = 600  # seconds an authorization code can be exchanged
EXPIRES_IN = 43_200  # seconds a rotating access token lives (12 hours)


@dataclass(frozen=True)
class Installer:
    """Who clicks *Allow*, and for which workspace or org."""

    team_id: str | None = "T0001"
    team_name: str | None = "Payload Inc"
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    org_install: bool = False  # org-wide (Enterprise Grid): team is null
    user_id: str = "U0INSTALL"
    scope: str = "commands,chat:write,users:read"
    user_scope: str = ""  # user scopes the app asked for ("" = bot only)

    @property
    def key(self) -> str:
        """The installation's identity: the org for an org-wide install, else the workspace."""
        return f"{self.enterprise_id or '-'}:{'' if self.org_install else self.team_id}"


@dataclass
class Token:
    """An access token Slack issued, and what auth.test says about it."""

    value: str
    kind: str  # "bot" or "user"
    installer: Installer
    user_id: str  # the bot user for a bot token, the installer for a user token
    bot_id: str | None
    scope: str
    expires_at: float | None
    revoked: bool = False


@dataclass
class Grant:
    """An authorization code, as the redirect hands it to the app."""

    installer: Installer
    redirect_uri: str | None
    expires_at: float
    used: bool = False


@dataclass
class Refresh:
    """A refresh token: spent on its first use."""

    kind: str
    installer: Installer
    used: bool = False


@dataclass
class SlackOAuth:
    """The OAuth side of one Slack app (one client id), shared by the fake Slack's routes."""

    client_id: str = "1111.2222"
    client_secret: str = "fake-client-secret"
    app_id: str = "A0FBLINK"
    rotation: bool = False
    expires_in: int = EXPIRES_IN
    clock: Callable[[], float] = time.time
    next_installer: Installer = field(default_factory=Installer)
    tokens: dict[str, Token] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refreshes: dict[str, Refresh] = field(default_factory=dict)
    exchanges: list[dict[str, str]] = field(default_factory=list)  # every oauth.v2.access call, secrets removed
    hold_refresh: threading.Event | None = None  # set: refreshes are answered only once it is set
    lock: threading.RLock = field(default_factory=threading.RLock)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what a test sets up and inspects ----------------------------------------------
    def install_as(self, installer: Installer) -> None:
        """The next person to click *Allow* on the authorize page installs for ``installer``."""
        with self.lock:
            self.next_installer = installer

    def grant(self, installer: Installer | None = None, *, redirect_uri: str | None = None) -> str:
        """A fresh code, as Slack puts on the redirect after *Allow*."""
        code = f"{int(self.clock())}.{next(self._serial)}.{secrets.token_hex(16)}"
        with self.lock:
            self.grants[code] = Grant(installer or self.next_installer, redirect_uri, self.clock() + CODE_TTL)
        return code

    def revoke(self, token: str | None = None, *, team_id: str | None = None, enterprise_id: str | None = None) -> int:
        """Revoke one token, or every token of a workspace / org (an uninstall); how many."""
        n = 0
        with self.lock:
            for t in self.tokens.values():
                hit = t.value == token or (
                    token is None
                    and (team_id is None or t.installer.team_id == team_id)
                    and (enterprise_id is None or t.installer.enterprise_id == enterprise_id)
                )
                if hit and not t.revoked:
                    t.revoked, n = True, n + 1
        return n

    def expire(self, token: str) -> None:
        """The token's 12 hours are over."""
        with self.lock:
            self.tokens[token].expires_at = self.clock() - 1

    def refresh_calls(self) -> list[dict[str, str]]:
        with self.lock:
            return [e for e in self.exchanges if e.get("grant_type") == "refresh_token"]

    def live_tokens(self, kind: str = "bot") -> list[Token]:
        with self.lock:
            return [t for t in self.tokens.values() if t.kind == kind and self.problem(t.value) is None]

    # -- token checks (every Web API method) ---------------------------------------------
    def problem(self, token: str) -> str | None:
        """None when ``token`` is a live token this app issued, else Slack's error for it."""
        with self.lock:
            t = self.tokens.get(token)
            if t is None:
                return "invalid_auth"
            if t.revoked:
                return "token_revoked"
            if t.expires_at is not None and t.expires_at <= self.clock():
                return "token_expired"
        return None

    def team_of(self, token: str) -> str | None:
        """The workspace an issued token speaks for (None for an org-wide one or an unknown token)."""
        with self.lock:
            t = self.tokens.get(token)
            return None if t is None or t.installer.org_install else t.installer.team_id

    def issued(self, token: str) -> bool:
        with self.lock:
            return token in self.tokens

    def auth_test(self, token: str) -> dict[str, Any]:
        why = self.problem(token)
        if why:
            return error(why)
        with self.lock:
            t = self.tokens[token]
        who = t.installer
        org = who.org_install
        host = f"{(who.enterprise_name or 'org').lower().replace(' ', '-')}.enterprise" if org else "payload-inc"
        answer: dict[str, Any] = {
            "ok": True,
            "url": f"https://{host}.slack.com/",
            "team": who.enterprise_name if org else who.team_name,
            "user": "fblink" if t.kind == "bot" else "installer",
            # An org-wide token belongs to no workspace: its team_id is the org's.
            "team_id": who.enterprise_id if org else who.team_id,
            "user_id": t.user_id,
            "is_enterprise_install": org,
        }
        if who.enterprise_id:
            answer["enterprise_id"] = who.enterprise_id
        if t.bot_id:
            answer["bot_id"] = t.bot_id
        if t.expires_at is not None:
            answer["expires_in"] = max(0, int(t.expires_at - self.clock()))
        return answer

    def check(self, token: str, method: str) -> Response | None:
        """For the fake Slack's other methods: Slack's error for a token that is not live, or the
        answer to ``auth.test`` about one; None lets the method run."""
        why = self.problem(token)
        if why:
            return Response(200, error(why))
        if method == "auth.revoke":  # the calling token revokes itself
            return Response(200, {"ok": True, "revoked": self.revoke(token) > 0})
        return Response(200, self.auth_test(token)) if method == "auth.test" else None

    def serve(self, request: Request, changed: threading.Condition) -> Response:
        """The authorize page and ``oauth.v2.access``; waiters on ``changed`` see the result (a held
        refresh waits outside that lock)."""
        if request.path == "/oauth/v2/authorize":
            return self.authorize_page(request)
        answer = self.access(request)
        with changed:
            changed.notify_all()
        return Response(200, answer)

    # -- the authorize page ---------------------------------------------------------------
    def authorize_page(self, request: Request) -> Response:
        """``GET /oauth/v2/authorize``: *Allow* at once, and back to the app with code and state."""
        q = request.query
        if q.get("client_id") != self.client_id:
            return Response(400, "invalid_client_id")
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri:
            return Response(400, "missing redirect_uri")
        code = self.grant(redirect_uri=redirect_uri)
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return Response(302, "", {"Location": redirect_uri + sep + urlencode(params)})

    # -- oauth.v2.access ---------------------------------------------------------------
    def access(self, request: Request) -> dict[str, Any]:
        p = dict(request.params)
        basic = request.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return error("invalid_client_id")
            p.setdefault("client_id", cid)
            p.setdefault("client_secret", secret)
        with self.lock:
            self.exchanges.append(
                {k: str(v) for k, v in p.items() if k in ("client_id", "grant_type", "redirect_uri")}
                | {"kind": "refresh" if p.get("grant_type") == "refresh_token" else "code"}
            )
        hold = self.hold_refresh
        if hold is not None and p.get("grant_type") == "refresh_token":
            hold.wait(HOLD_MAX)  # a test holds the answer (outside every lock) while it looks at the callers
        with self.lock:
            if p.get("client_id") != self.client_id:
                return error("invalid_client_id")
            if p.get("client_secret") != self.client_secret:
                return error("bad_client_secret")
            grant_type = p.get("grant_type") or "authorization_code"
            if grant_type == "refresh_token":
                return self._refresh(str(p.get("refresh_token") or ""))
            if grant_type != "authorization_code":
                return error("invalid_grant_type")
            return self._exchange(str(p.get("code") or ""), p.get("redirect_uri"))

    def _exchange(self, code: str, redirect_uri: str | None) -> dict[str, Any]:
        g = self.grants.get(code)
        if g is None or g.used or g.expires_at <= self.clock():
            return error("invalid_code")
        if g.redirect_uri is not None and redirect_uri is not None and redirect_uri != g.redirect_uri:
            return error("bad_redirect_uri")
        g.used = True
        who = g.installer
        bot = self._issue("bot", who)
        answer = self._shape(who, bot)
        authed: dict[str, Any] = {"id": who.user_id}
        if who.user_scope:
            user = self._issue("user", who)
            authed.update({"scope": user.scope, "access_token": user.value, "token_type": "user"})
            authed.update(self._rotation(user))
        answer["authed_user"] = authed
        return answer

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        r = self.refreshes.get(refresh_token)
        if r is None or r.used:
            return error("invalid_refresh_token")
        r.used = True
        token = self._issue(r.kind, r.installer)
        if r.kind == "user":
            return {
                "ok": True,
                "app_id": self.app_id,
                "user_id": r.installer.user_id,
                "scope": token.scope,
                "token_type": "user",
                "access_token": token.value,
                **self._rotation(token),
                **self._where(r.installer),
            }
        return self._shape(r.installer, token)

    def _where(self, who: Installer) -> dict[str, Any]:
        return {
            "team": None if who.org_install else {"id": who.team_id, "name": who.team_name},
            "enterprise": {"id": who.enterprise_id, "name": who.enterprise_name} if who.enterprise_id else None,
            "is_enterprise_install": who.org_install,
        }

    def _shape(self, who: Installer, bot: Token) -> dict[str, Any]:
        return {
            "ok": True,
            "app_id": self.app_id,
            "scope": bot.scope,
            "token_type": "bot",
            "access_token": bot.value,
            "bot_user_id": bot.user_id,
            **self._rotation(bot),
            **self._where(who),
        }

    def _rotation(self, token: Token) -> dict[str, Any]:
        if token.expires_at is None:
            return {}
        refresh = f"xoxe-1-{secrets.token_hex(24)}"
        self.refreshes[refresh] = Refresh(token.kind, token.installer)
        return {"expires_in": self.expires_in, "refresh_token": refresh}

    def _issue(self, kind: str, who: Installer) -> Token:
        suffix = (who.enterprise_id if who.org_install else who.team_id) or "X"
        prefix = "xoxb" if kind == "bot" else "xoxp"
        value = f"{prefix}-{suffix}-{next(self._serial)}-{secrets.token_hex(12)}"
        if self.rotation:
            value = "xoxe." + value
        token = Token(
            value=value,
            kind=kind,
            installer=who,
            user_id=f"UB{suffix}" if kind == "bot" else who.user_id,
            bot_id=f"BB{suffix}" if kind == "bot" else None,
            scope=who.scope if kind == "bot" else who.user_scope,
            expires_at=self.clock() + self.expires_in if self.rotation else None,
        )
        self.tokens[value] = token
        return token
