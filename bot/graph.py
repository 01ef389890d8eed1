"""Facebook Graph API client: login, token exchange, token health and the user's Pages.

Every call goes through :func:`bot.http.send`, so timeouts and retries follow the
shared policy. Graph answers most errors with HTTP 400 and an error object; the
rate-limit and "try again" codes among them are retried like a 5xx, everything
else becomes a :class:`GraphError` the caller can reason about (dead token,
missing permission, ...).

Tokens and the app secret never appear in log lines or exception messages.
Note that httpx itself logs request URLs (logger ``httpx``, level INFO), and
Graph URLs carry ``access_token`` -- keep that logger at WARNING.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from bot.graph_errors import (
    TRANSIENT_CODES,
    UPSTREAM,
    GraphAppError,
    GraphError,
    _error_object,
    _int_or_none,
    _is_transient_oauth,
    _oauth_error_class,
    graph_error,
    is_transient,
)
from bot.http import RetryPolicy, json_or_none, send

__all__ = [
    "TRANSIENT_CODES",
    "GraphAppError",
    "GraphClient",
    "GraphError",
    "LongLivedToken",
    "Page",
    "TokenInfo",
    "graph_error",
    "is_transient",
]

log = logging.getLogger(__name__)

REQUIRED_SCOPES: tuple[str, ...] = (
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "business_management",
)

# Safety net against a paging loop (a `next` that never goes away), per edge.
MAX_PAGES_REQUESTS = 50
PAGE_FIELDS = "id,name,category,tasks,access_token"
PAGE_LIMIT = "100"


@dataclass(frozen=True)
class TokenInfo:
    """What ``/debug_token`` says about a token."""

    is_valid: bool
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: int | None  # None: never expires
    data_access_expires_at: int | None
    error_code: int | None = None
    error_subcode: int | None = None

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in REQUIRED_SCOPES if s not in self.scopes)


@dataclass(frozen=True)
class Page:
    """A Facebook Page the user can manage, with its Page access token."""

    id: str
    name: str
    category: str
    tasks: tuple[str, ...]
    access_token: str = field(repr=False)
    business_id: str | None = None  # the Business Portfolio the Page was found through
    business_name: str | None = None

    @property
    def no_token_reason(self) -> str | None:
        """Why fblink cannot link this Page, when Graph handed out no Page token for it."""
        if self.access_token:
            return None
        if self.business_name is not None:
            return (
                f"Facebook gives no Page token: you have no task on this Page in the business "
                f"portfolio {self.business_name}. Ask a portfolio admin to give you a task on it."
            )
        return "Facebook gives no Page token: you have no task on this Page."


@dataclass(frozen=True)
class LongLivedToken:
    access_token: str = field(repr=False)
    expires_in: int | None


class GraphClient:
    """Async client for the few Graph endpoints fblink needs."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        graph_url: str,
        login_url: str,
        api_version: str,
        app_id: str,
        app_secret: str,
        redirect_uri: str,
        login_config_id: str | None = None,
        policy: RetryPolicy = RetryPolicy(),
        on_attempt: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self._http = http
        self._graph_url = graph_url.rstrip("/")
        self._login_url = login_url.rstrip("/")
        self._version = api_version
        self._app_id = app_id
        self._app_secret = app_secret
        self._redirect_uri = redirect_uri
        self._login_config_id = login_config_id
        self._policy = policy
        self._on_attempt = on_attempt

    def __repr__(self) -> str:  # never show the secret
        return f"GraphClient(graph_url={self._graph_url!r}, api_version={self._version!r}, app_id={self._app_id!r})"

    # -- helpers --------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self._graph_url}/{self._version}/{path.lstrip('/')}"

    def appsecret_proof(self, token: str) -> str:
        """Proves to Graph that a call with ``token`` comes from our server."""
        return hmac.new(self._app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()

    def _user_params(self, token: str) -> dict[str, str]:
        return {"access_token": token, "appsecret_proof": self.appsecret_proof(token)}

    async def _get(
        self,
        url: str,
        params: dict[str, str] | None = None,
        *,
        transient: Callable[[httpx.Response], bool] = is_transient,
        error_class: Callable[..., GraphError] = GraphError,
    ) -> dict[str, Any]:
        """GET and return the JSON object, or raise GraphError / UpstreamUnavailable."""
        response = await send(
            self._http,
            self._policy,
            UPSTREAM,
            "GET",
            url,
            params=params,
            is_transient=transient,
            on_attempt=self._on_attempt,
        )
        body = json_or_none(response)
        if not response.is_success or _error_object(body) is not None:
            raise graph_error(response, error_class)
        if not isinstance(body, dict):
            raise GraphError("reply is not a JSON object", status=response.status_code)
        return body

    # -- login ----------------------------------------------------------------
    def login_dialog_url(self, state: str, *, rerequest: bool = False) -> str:
        """Where to send the user to log in (and grant our permissions)."""
        params = {
            "client_id": self._app_id,
            "redirect_uri": self._redirect_uri,
            "response_type": "code",
            "state": state,
        }
        if self._login_config_id:
            # Facebook Login for Business: the configuration carries the permissions.
            params["config_id"] = self._login_config_id
        else:
            params["scope"] = ",".join(REQUIRED_SCOPES)
        if rerequest:
            # Ask again for permissions the user declined earlier.
            params["auth_type"] = "rerequest"
        return f"{self._login_url}/{self._version}/dialog/oauth?{urlencode(params)}"

    async def exchange_code(self, code: str) -> str:
        """Swap the login redirect's one-time code for a short-lived user token."""
        body = await self._get(
            self._url("oauth/access_token"),
            {
                "client_id": self._app_id,
                "redirect_uri": self._redirect_uri,
                "client_secret": self._app_secret,
                "code": code,
            },
            transient=_is_transient_oauth,
            error_class=_oauth_error_class,
        )
        return _require_str(body, "access_token")

    async def long_lived(self, short_token: str) -> LongLivedToken:
        """Trade a short-lived user token (~1 h) for a long-lived one (~60 days)."""
        body = await self._get(
            self._url("oauth/access_token"),
            {
                "grant_type": "fb_exchange_token",
                "client_id": self._app_id,
                "client_secret": self._app_secret,
                "fb_exchange_token": short_token,
            },
            transient=_is_transient_oauth,
            error_class=_oauth_error_class,
        )
        return LongLivedToken(
            access_token=_require_str(body, "access_token"), expires_in=_int_or_none(body.get("expires_in"))
        )

    # -- token health ---------------------------------------------------------
    async def debug_token(self, token: str) -> TokenInfo:
        """Ask Graph whether ``token`` still works and what it may do.

        A dead token is not an error here: Graph answers 200 with ``is_valid: false``.
        An error response means our app credentials were refused (GraphAppError).
        """
        body = await self._get(
            self._url("debug_token"),
            {"input_token": token, "access_token": f"{self._app_id}|{self._app_secret}"},
            error_class=GraphAppError,
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise GraphError("debug_token reply has no data")
        raw_error = data.get("error")
        error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        user_id = data.get("user_id")
        return TokenInfo(
            is_valid=bool(data.get("is_valid")),
            user_id=str(user_id) if user_id is not None else None,
            scopes=tuple(str(s) for s in data.get("scopes") or ()),
            expires_at=_int_or_none(data.get("expires_at")) or None,  # 0 means never
            data_access_expires_at=_int_or_none(data.get("data_access_expires_at")) or None,
            error_code=_int_or_none(error.get("code")),
            error_subcode=_int_or_none(error.get("subcode")),
        )

    # -- user data ------------------------------------------------------------
    async def me(self, token: str) -> dict[str, str]:
        """The token owner's id and name."""
        body = await self._get(self._url("me"), {"fields": "id,name", **self._user_params(token)})
        return {"id": str(body.get("id", "")), "name": str(body.get("name", ""))}

    async def pages(self, token: str, scopes: Iterable[str] | None = None) -> list[Page]:
        """Every Page the user can reach: ``/me/accounts``, then (with ``business_management``)
        the owned and client Pages of each Business Portfolio, without duplicates.

        A Page seen through both keeps its ``/me/accounts`` token and records its business.
        Business Pages without a Page token are kept (see ``Page.no_token_reason``).
        ``scopes`` are the granted permissions; None means unknown, so businesses are tried
        and a permission error skips them.
        """
        result: dict[str, Page] = {}
        for item in await self._edge(token, "me/accounts", PAGE_FIELDS):
            page = _page(item)
            result.setdefault(page.id, page)
        if scopes is not None and "business_management" not in set(scopes):
            return list(result.values())
        try:
            businesses = await self._edge(token, "me/businesses", "id,name")
        except GraphError as exc:
            if exc.token_dead or not exc.permission_error:
                raise
            log.info("Facebook /me/businesses refused (code %s): listing personal Pages only", exc.code)
            return list(result.values())
        for business in businesses:
            await self._business_pages(token, business, result)
        return list(result.values())

    async def _business_pages(self, token: str, business: dict[str, Any], result: dict[str, Page]) -> None:
        """Merge one business's owned and client Pages into ``result``."""
        business_id, business_name = str(business.get("id", "")), str(business.get("name", ""))
        for edge in ("owned_pages", "client_pages"):
            try:
                items = await self._edge(token, f"{business_id}/{edge}", PAGE_FIELDS)
            except GraphError as exc:
                if exc.token_dead:
                    raise
                # One portfolio we may not read must not hide every other Page.
                log.warning("Facebook /%s of a business refused (code %s): skipped", edge, exc.code)
                continue
            for item in items:
                page = _page(item)
                seen = result.get(page.id)
                if seen is None or (not seen.access_token and page.access_token):
                    result[page.id] = replace(page, business_id=business_id, business_name=business_name)
                elif seen.business_id is None:
                    result[page.id] = replace(seen, business_id=business_id, business_name=business_name)

    async def _edge(self, token: str, path: str, fields: str) -> list[dict[str, Any]]:
        """Every item of a cursor-paged edge, following ``paging.next`` to its end."""
        url = self._url(path)
        params: dict[str, str] | None = {"fields": fields, "limit": PAGE_LIMIT, **self._user_params(token)}
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES_REQUESTS):
            body = await self._get(url, params)
            items.extend(item for item in body.get("data") or () if isinstance(item, dict))
            next_url = _next_url(body)
            if next_url is None:
                return items
            self._check_same_origin(next_url)
            # `next` carries the cursor, token, limit and fields; httpx's params= would
            # *replace* that query, so merge the proof into the URL and send no params.
            url, params = self._with_proof(next_url, token), None
        log.warning("Facebook /%s: stopped after %d requests (%d items)", path, MAX_PAGES_REQUESTS, len(items))
        return items

    def _with_proof(self, url: str, token: str) -> str:
        """``url`` with ``appsecret_proof`` added when Graph left it out (it usually does)."""
        parsed = httpx.URL(url)
        if "appsecret_proof" in parsed.params:
            return url
        return str(parsed.copy_merge_params({"appsecret_proof": self.appsecret_proof(token)}))

    def _check_same_origin(self, url: str) -> None:
        """`next` URLs carry the token: only ever send them back to Graph itself."""
        ours, theirs = urlsplit(self._graph_url), urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise GraphError("paging.next points outside the Graph API")


def _require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise GraphError(f"reply has no {key}")
    return value


def _page(item: dict[str, Any]) -> Page:
    return Page(
        id=str(item.get("id", "")),
        name=str(item.get("name", "")),
        category=str(item.get("category", "")),
        tasks=tuple(str(t) for t in item.get("tasks") or ()),
        access_token=str(item.get("access_token", "")),
    )


def _next_url(body: dict[str, Any]) -> str | None:
    paging = body.get("paging")
    nxt = paging.get("next") if isinstance(paging, dict) else None
    return nxt if isinstance(nxt, str) and nxt else None
