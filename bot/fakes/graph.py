"""A fake Facebook Graph API speaking Graph's wire formats.

Covers what fblink uses: the OAuth code exchange, ``fb_exchange_token``,
``/debug_token``, ``/me``, ``/me/accounts`` and the Business Portfolio edges
(``/me/businesses``, ``/{business-id}/owned_pages`` and ``/client_pages``), all with
Graph's cursor paging (see :mod:`bot.fakes.graph_data`). Tokens can be
killed to play out a password change or a lost Page role. Errors look like
Graph's: mostly HTTP 400 with ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``.

    graph = FakeGraph().start()
    graph.add_user("1001", "Ada", pages=[{"id": "p1", "name": "Shop", "category": "Retail", "tasks": ["MANAGE"]}])
    code = graph.issue_code("1001")
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any

from bot.fakes.base import Request, Response
from bot.fakes.graph_data import (
    UNSUPPORTED_GET,
    FakeCode,
    FakeToken,
    FakeUser,
    category_list,
    granular_scopes,
    page_of,
    page_spec,
    select,
    split_fields,
)
from bot.fakes.graph_tokens import TokenAuthority, _Problem

__all__ = ["LONG_LIVED", "REQUIRED_SCOPES", "SHORT_LIVED", "FakeCode", "FakeGraph", "FakeToken", "FakeUser"]

REQUIRED_SCOPES = ("pages_show_list", "pages_messaging", "pages_manage_metadata", "business_management")
SHORT_LIVED = 3600
LONG_LIVED = 60 * 24 * 3600  # 5184000
CODE_LIFETIME = 600
DATA_ACCESS_DAYS = 90
# What /me/accounts returns when no `fields` are asked for.
PAGE_FIELDS = ("access_token", "category", "category_list", "name", "id", "tasks")
NODE_FIELDS = ("id", "name")  # default fields of Business nodes and the business Page edges


class FakeGraph(TokenAuthority):
    name = "fake-graph"

    def __init__(
        self,
        app_id: str = "123",
        app_secret: str = "s3cr3t",
        api_version: str = "v25.0",
        *,
        redirect_uri: str | None = None,
        application: str = "fblink test",
        require_appsecret_proof: bool = True,
    ) -> None:
        super().__init__(app_id, app_secret, require_appsecret_proof=require_appsecret_proof)
        self.api_version = api_version
        self.redirect_uri = redirect_uri  # None: accept any redirect_uri
        self.application = application
        self.users: dict[str, FakeUser] = {}
        self.codes: dict[str, FakeCode] = {}

    # -- test helpers -------------------------------------------------------
    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        pages: Iterable[dict[str, Any]] = (),
        declined: Iterable[str] = frozenset(),
        data_access_expires_at: int | None = None,
        businesses: Iterable[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Register a Facebook user, the Pages they have a role on (``/me/accounts``), and the
        Business Portfolios they belong to, each with ``owned_pages`` and ``client_pages``.

        A business Page whose ``tasks`` are empty is one the user can see but holds no task
        on: Graph lists it without an ``access_token``.
        """
        page_list = [page_spec(p) for p in pages]
        business_list = [
            {
                "id": str(b["id"]),
                "name": b["name"],
                "owned_pages": [page_spec(p) for p in b.get("owned_pages", ())],
                "client_pages": [page_spec(p) for p in b.get("client_pages", ())],
            }
            for b in businesses
        ]
        with self.lock:
            self.users[user_id] = FakeUser(
                user_id, name, page_list, frozenset(declined), data_access_expires_at, business_list
            )
            for page in page_list:
                self._page_token(user_id, page["id"])
        return {"id": user_id, "name": name, "pages": page_list, "businesses": business_list}

    def issue_code(self, user_id: str) -> str:
        """A one-time OAuth code, as the login dialog would put on the redirect."""
        code = "AQfake" + secrets.token_hex(16)
        with self.lock:
            self.codes[code] = FakeCode(user_id, self._now())
        return code

    def user_token(self, user_id: str) -> str:
        """A live long-lived user token (minted if needed), e.g. to seed storage."""
        with self.lock:
            for token in self.tokens.values():
                long_lived = token.expires_at - token.issued_at == LONG_LIVED
                if (
                    token.kind == "USER"
                    and token.user_id == user_id
                    and long_lived
                    and self._dead_subcode(token) is None
                ):
                    return token.value
            return self._mint("USER", user_id, lifetime=LONG_LIVED).value

    def page_token(self, user_id: str, page_id: str) -> str:
        """The live Page token /me/accounts would hand out for this user and Page."""
        with self.lock:
            return self._page_token(user_id, page_id).value

    def kill_token(self, user_id: str, subcode: int = 460) -> None:
        """Every token of the user (and their Page tokens) dies, as on a password change.

        Tokens minted later (after a new login) work again.
        """
        with self.lock:
            for token in self.tokens.values():
                if token.user_id == user_id and token.dead_subcode is None:
                    token.dead_subcode = subcode

    def remove_permissions(self, user_id: str, *scopes: str) -> None:
        """The user removes permissions from the app in Facebook's settings: every token of theirs,
        Page tokens included, stops carrying them (debug_token's ``scopes`` shrink)."""
        with self.lock:
            user = self.users[user_id]
            user.declined = user.declined | frozenset(scopes)

    def kill_page_token(self, page_id: str, subcode: int = 460) -> None:
        """Every current token of this Page dies; /me/accounts hands out fresh ones."""
        with self.lock:
            for token in self.tokens.values():
                if token.page_id == page_id and token.dead_subcode is None:
                    token.dead_subcode = subcode

    def reset(self) -> None:
        """Forget users, tokens, codes, requests and faults (to reuse one server across tests)."""
        with self.lock:
            self.reset_log()
            self.users.clear()
            self.tokens.clear()
            self.codes.clear()
            self.clock = time.time

    # -- routing ------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        prefix = f"/{self.api_version}/"
        if not request.path.startswith(prefix):
            return self._error(404, f"Unknown path components: {request.path}", 100)
        route = request.path[len(prefix) :].rstrip("/")
        params = request.params
        try:
            with self.lock:
                if route == "oauth/access_token" and request.method in ("GET", "POST"):
                    return self._oauth_access_token(params)
                if route == "debug_token" and request.method == "GET":
                    return self._debug_token(params)
                if route == "me" and request.method == "GET":
                    return self._me(params)
                if route == "me/accounts" and request.method == "GET":
                    return self._accounts(request, params)
                if route == "me/businesses" and request.method == "GET":
                    return self._businesses(request, params)
                edge = route.rpartition("/")
                if edge[2] in ("owned_pages", "client_pages") and edge[0] and request.method == "GET":
                    return self._business_pages(request, params, edge[0], edge[2])
        except _Problem as problem:
            return problem.response
        return self._error(400, f"Unknown path components: /{route}", 2500)

    # -- OAuth --------------------------------------------------------------
    def _oauth_access_token(self, params: dict[str, str]) -> Response:
        if params.get("client_id") != self.app_id:
            return self._error(400, "Error validating application. Invalid application ID.", 101)
        if params.get("client_secret") != self.app_secret:
            return self._error(400, "Error validating client secret.", 1)
        if params.get("grant_type") == "fb_exchange_token":
            return self._exchange_token(params)
        if "code" not in params:
            return self._error(400, "Missing authorization code", 1)
        if "redirect_uri" not in params:
            return self._error(400, "Missing redirect_uri parameter.", 191)
        code = self.codes.get(params["code"])
        if code is None:
            return self._error(400, "Invalid verification code format.", 100)
        if code.used:
            return self._error(400, "This authorization code has been used.", 100, subcode=36009)
        if self._now() - code.issued_at > CODE_LIFETIME:
            return self._error(400, "This authorization code has expired.", 100, subcode=36007)
        if self.redirect_uri is not None and params["redirect_uri"] != self.redirect_uri:
            return self._error(
                400,
                "Error validating verification code. Please make sure your redirect_uri is identical "
                "to the one you used in the OAuth dialog request",
                100,
                subcode=36008,
            )
        code.used = True
        token = self._mint("USER", code.user_id, lifetime=SHORT_LIVED)
        return Response(200, {"access_token": token.value, "token_type": "bearer", "expires_in": SHORT_LIVED})

    def _exchange_token(self, params: dict[str, str]) -> Response:
        short = self._live_token(params.get("fb_exchange_token"))
        if short.kind != "USER":
            return self._error(400, "Invalid OAuth access token.", 190)
        token = self._mint("USER", short.user_id, lifetime=LONG_LIVED)
        return Response(200, {"access_token": token.value, "token_type": "bearer", "expires_in": LONG_LIVED})

    # -- debug_token ----------------------------------------------------------
    def _debug_token(self, params: dict[str, str]) -> Response:
        if params.get("access_token") != f"{self.app_id}|{self.app_secret}":
            return self._error(400, "Invalid OAuth access token signature.", 190)
        if not params.get("input_token"):
            return self._error(400, "(#100) The parameter input_token is required", 100)
        token = self.tokens.get(params["input_token"])
        if token is None:
            return Response(
                200,
                {
                    "data": {
                        "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
                        "is_valid": False,
                        "scopes": [],
                    }
                },
            )
        user = self.users[token.user_id]
        data: dict[str, Any] = {
            "app_id": self.app_id,
            "type": token.kind,
            "application": self.application,
            "data_access_expires_at": self._data_access_expires_at(user),
            "expires_at": token.expires_at,
            "is_valid": True,
            "issued_at": token.issued_at,
            "scopes": self._granted(user),
            "granular_scopes": granular_scopes(self._granted(user), user),
            "user_id": user.id,
        }
        if token.kind == "PAGE":
            data["profile_id"] = token.page_id
        subcode = self._dead_subcode(token)
        if subcode is not None:
            data["is_valid"] = False
            data["error"] = {"code": 190, "message": self._dead_message(subcode), "subcode": subcode}
        return Response(200, {"data": data})

    # -- user endpoints -------------------------------------------------------
    def _me(self, params: dict[str, str]) -> Response:
        token = self._authorize(params)
        if token.kind == "PAGE":
            page = self._find_page(token.user_id, token.page_id or "")
            node = {"id": page["id"], "name": page["name"]}
        else:
            user = self.users[token.user_id]
            node = {"id": user.id, "name": user.name}
        fields = split_fields(params.get("fields")) or ["id", "name"]
        return Response(200, {k: node[k] for k in fields if k in node})

    def _accounts(self, request: Request, params: dict[str, str]) -> Response:
        token = self._authorize(params)
        if token.kind == "PAGE":
            return self._error(400, "(#100) Tried accessing nonexisting field (accounts) on node type (Page)", 100)
        user = self.users[token.user_id]
        fields = split_fields(params.get("fields")) or list(PAGE_FIELDS)
        # Without pages_show_list the edge is simply empty.
        pages = user.pages if "pages_show_list" in self._granted(user) else []
        return page_of(request, self.url, pages, lambda p: select(self._page_node(user.id, p), fields), self._bad_param)

    def _businesses(self, request: Request, params: dict[str, str]) -> Response:
        token = self._authorize(params)
        if token.kind == "PAGE":
            return self._error(400, "(#100) Tried accessing nonexisting field (businesses) on node type (Page)", 100)
        user = self.users[token.user_id]
        if "business_management" not in self._granted(user):
            return self._error(403, "(#200) Requires business_management permission to manage the object", 200)
        fields = split_fields(params.get("fields")) or list(NODE_FIELDS)
        return page_of(request, self.url, user.businesses, lambda b: select(b, fields), self._bad_param)

    def _business_pages(self, request: Request, params: dict[str, str], business_id: str, edge: str) -> Response:
        token = self._authorize(params)
        user = self.users[token.user_id]
        business = next((b for b in user.businesses if b["id"] == business_id), None)
        if token.kind == "PAGE" or business is None or "business_management" not in self._granted(user):
            return self._error(
                400, UNSUPPORTED_GET.format(id=business_id), 100, subcode=33, type="GraphMethodException"
            )
        fields = split_fields(params.get("fields")) or list(NODE_FIELDS)
        pages = business[edge]
        return page_of(request, self.url, pages, lambda p: select(self._page_node(user.id, p), fields), self._bad_param)

    def _page_node(self, user_id: str, page: dict[str, Any]) -> dict[str, Any]:
        """Every field Graph has for a Page the user reaches; no token without a task on it."""
        node = {**page, "category_list": category_list(page["category"])}
        if page["tasks"]:
            node["access_token"] = self._page_token(user_id, page["id"]).value
        return node

    def _bad_param(self, message: str) -> Response:
        return self._error(400, message, 100)

    # -- tokens ---------------------------------------------------------------
    def _page_token(self, user_id: str, page_id: str) -> FakeToken:
        for token in self.tokens.values():
            alive = self._dead_subcode(token) is None
            if token.kind == "PAGE" and token.user_id == user_id and token.page_id == page_id and alive:
                return token
        return self._mint("PAGE", user_id, lifetime=0, page_id=page_id)  # Page tokens never expire

    def _find_page(self, user_id: str, page_id: str) -> dict[str, Any]:
        user = self.users[user_id]
        every = [*user.pages, *(p for b in user.businesses for p in (*b["owned_pages"], *b["client_pages"]))]
        for page in every:
            if page["id"] == page_id:
                return dict(page)
        raise _Problem(self._error(400, f"(#100) Unknown Page {page_id}", 100))

    # -- small things -------------------------------------------------------
    def _granted(self, user: FakeUser) -> list[str]:
        return ["public_profile", *(s for s in REQUIRED_SCOPES if s not in user.declined)]

    def _data_access_expires_at(self, user: FakeUser) -> int:
        if user.data_access_expires_at is not None:
            return user.data_access_expires_at
        return self._now() + DATA_ACCESS_DAYS * 24 * 3600
