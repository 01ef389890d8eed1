"""A fake Vonage speaking the wire formats of the External Accounts and Application v2 specs.

Built from /work/shared/specs/vonage/{external-accounts,application.v2}.yml plus
Vonage's published error conventions. Where the specs are silent, the fake picks the
most plausible behaviour and says so here, so tests do not quietly depend on guesses:

* Errors are RFC 7807 problem JSON sent as ``application/problem+json`` (Vonage's
  API-errors page documents that header; the OpenAPI files just say application/json).
* 401 bodies follow each spec: the External Accounts ``401Response`` has only
  ``title``/``detail``; the Application API's ``BadCredentialsError`` adds ``type``
  and ``instance``. Only basic auth is accepted (the specs also allow a JWT bearer).
* The Application API names its validation list ``invalid_parameters``; External
  Accounts names it ``invalid_params``. The fake keeps each spelling.
* Creating an account this key already has -> 409 (the spec lists only 400/401/403).
* Linking an application to a Page that already has one -> 409, also when it is the
  same application (the spec: "reached limit of maximum number of linked applications").
* Unlinking an application that is not linked -> 409 "Unable to unlink application"
  (the spec's wording; it has no 404 there). An unknown Page -> 404 on every route.
* Unknown Page on GET/PATCH/DELETE -> 404 with a problem body (the spec: a bare 404).
* Accounts live per API key; the same Page under two keys is allowed here.
* The account list pages with ``page_number``/``page_size`` (default 20), ``_embedded``
  a bare array plus ``_links``, as the spec shows (``list_links = False`` drops them).
* A key refused by ``forbid_key`` gets the spec's 403Response (title only) on writes.
* ``fail_problem(match, status)`` answers 401/403/404/409/422/429 (Retry-After)/5xx
  with the body Vonage sends (see :mod:`bot.fakes.vonage_errors`).

State: ``accounts[api_key][page_id]``, ``applications[api_key][app_id]``. ``fail_after(...)``
applies a request, then answers an error (the write landed, the answer was lost).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import uuid
from typing import Any
from urllib.parse import unquote, urlencode

from bot.fakes.base import FakeServer, Fault, Request, Response
from bot.fakes.vonage_apps import APPS_PREFIX, ApplicationsMixin, int_param
from bot.fakes.vonage_errors import (
    CONFLICT_TYPE,
    FORBIDDEN_TYPE,
    HOSTILE_APP_NAMES,
    PROBLEM,
    UNAUTHORIZED_TYPE,
    AfterFault,
    _invalid,
    not_found,
    problem,
    problem_for,
    wrong_verb,
)

__all__ = ["HOSTILE_APP_NAMES", "PROBLEM", "FakeVonage", "problem", "problem_for"]

ACCOUNTS_PREFIX = "/beta/chatapp-accounts"
PROVIDERS = ("messenger", "viber_service_msg", "whatsapp")

_ACCOUNT_RE = re.compile(r"^/beta/chatapp-accounts/messenger/([^/]+)$")
_ACCOUNT_APPS_RE = re.compile(r"^/beta/chatapp-accounts/messenger/([^/]+)/applications$")
_ACCOUNT_APP_RE = re.compile(r"^/beta/chatapp-accounts/messenger/([^/]+)/applications/([^/]+)$")
_APP_RE = re.compile(r"^/v2/applications/([^/]+)$")


class FakeVonage(ApplicationsMixin, FakeServer):
    """External Accounts (Messenger) + Application API v2, per API key."""

    name = "fake-vonage"

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, str] = {}
        self.applications: dict[str, dict[str, dict[str, Any]]] = {}
        self.accounts: dict[str, dict[str, dict[str, Any]]] = {}
        self.rejected_tokens: set[str] = set()
        self.forbidden_keys: set[str] = set()
        self.after_faults: list[AfterFault] = []  # applied, then answered with an error
        self.list_links = True
        self.accounts_page_size_default = 20
        self.apps_page_size_default = 10

    def add_key(self, api_key: str, api_secret: str) -> None:
        with self.lock:
            self.keys[api_key] = api_secret
            self.applications.setdefault(api_key, {})
            self.accounts.setdefault(api_key, {})

    def add_account(
        self, api_key: str, page_id: str, access_token: str, name: str | None = None, applications: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Seed an account directly (no validation), e.g. one made in the dashboard."""
        acct = {"external_id": page_id, "name": name, "access_token": access_token, "applications": list(applications)}
        with self.lock:
            self.accounts.setdefault(api_key, {})[page_id] = acct
        return acct

    def reject_token(self, token: str) -> None:
        """Make Vonage refuse this Page access token (as it does for a dead one)."""
        with self.lock:
            self.rejected_tokens.add(token)

    def forbid_key(self, api_key: str) -> None:
        """This key may not manage External Accounts (e.g. the feature is not on its account)."""
        with self.lock:
            self.forbidden_keys.add(api_key)

    def fail_problem(
        self, match: str, status: int, *, times: int = 1, retry_after: int | None = None, detail: str | None = None
    ) -> Fault:
        """Answer matching requests with Vonage's real error body for ``status``."""
        response = problem_for(status, detail=detail, retry_after=retry_after)
        return self.fail(match, times=times, status=status, body=response.body, headers=response.headers)

    def fail_after(self, match: str, *, status: int = 502, times: int = 1) -> AfterFault:
        """Apply matching requests, then answer ``status``: the write landed, the answer didn't."""
        fault = AfterFault(match=match, times=times, status=status)
        with self.lock:
            self.after_faults.append(fault)
        return fault

    def reset_log(self) -> None:
        super().reset_log()
        with self.lock:
            self.after_faults.clear()

    def clear(self) -> None:
        """Forget all state, faults and requests, so one started server can serve many tests."""
        self.reset_log()
        with self.lock:
            self.keys.clear()
            self.applications.clear()
            self.accounts.clear()
            self.rejected_tokens.clear()
            self.forbidden_keys.clear()
            self.list_links = True

    # -- dispatch -------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self.lock:
            response = self._route(request)
            key = f"{request.method} {request.path}"
            for fault in self.after_faults:
                if fault.times > 0 and key.startswith(fault.match):
                    fault.times -= 1
                    return problem(fault.status, "Bad Gateway", "The upstream answered late.")
            return response

    def _route(self, req: Request) -> Response:
        path = req.path
        if path.startswith(APPS_PREFIX):
            api_key = self._auth(req)
            if api_key is None:
                return problem(
                    401,
                    "Invalid credentials supplied",
                    "You did not provide correct credentials.",
                    type=UNAUTHORIZED_TYPE,
                    instance=uuid.uuid4().hex,
                )
            accept = req.headers.get("accept", "*/*")
            if not any(t in accept for t in ("application/json", "*/*", "application/*")):
                return problem_for(406)
            if path.rstrip("/") == APPS_PREFIX:
                return self._list_apps(req, api_key) if req.method == "GET" else wrong_verb(req.method)
            m = _APP_RE.match(path)
            if m:
                return self._get_app(api_key, unquote(m.group(1))) if req.method == "GET" else wrong_verb(req.method)
            return not_found(path)

        if path.startswith(ACCOUNTS_PREFIX):
            api_key = self._auth(req)
            if api_key is None:
                return problem(401, "Unauthorised", "Request header 'Authorization' missing / Invalid Token")
            if api_key in self.forbidden_keys and req.method != "GET":
                return problem_for(403)
            mine = self.accounts.setdefault(api_key, {})
            if path.rstrip("/") == ACCOUNTS_PREFIX:
                return self._list_accounts(req, api_key) if req.method == "GET" else wrong_verb(req.method)
            if path.rstrip("/") == f"{ACCOUNTS_PREFIX}/messenger":
                return self._create_account(req, api_key) if req.method == "POST" else wrong_verb(req.method)
            m = _ACCOUNT_RE.match(path)
            if m:
                page_id = unquote(m.group(1))
                if page_id not in mine:
                    return not_found(path)
                if req.method == "GET":
                    return Response(200, self._account_json(api_key, mine[page_id]))
                if req.method == "PATCH":
                    return self._update_account(req, api_key, page_id)
                if req.method == "DELETE":
                    del mine[page_id]
                    return Response(204)
                return wrong_verb(req.method)
            m = _ACCOUNT_APPS_RE.match(path)
            if m:
                page_id = unquote(m.group(1))
                if req.method != "POST":
                    return wrong_verb(req.method)
                if page_id not in mine:
                    return not_found(path)
                return self._link_app(req, api_key, page_id)
            m = _ACCOUNT_APP_RE.match(path)
            if m:
                page_id, app_id = unquote(m.group(1)), unquote(m.group(2))
                if req.method != "DELETE":
                    return wrong_verb(req.method)
                if page_id not in mine:
                    return not_found(path)
                apps = mine[page_id]["applications"]
                if app_id not in apps:
                    return problem(409, "Application conflict", "Unable to unlink application", type=CONFLICT_TYPE)
                apps.remove(app_id)
                return Response(204)
            return not_found(path)

        return not_found(path)

    # -- helpers --------------------------------------------------------------
    def _auth(self, req: Request) -> str | None:
        header = req.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        api_key, sep, secret = decoded.partition(":")
        if not sep or self.keys.get(api_key) != secret:
            return None
        return api_key

    @staticmethod
    def _body(req: Request) -> dict[str, Any] | None:
        try:
            data = json.loads(req.body or b"null")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _account_json(self, api_key: str, acct: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "external_id": acct["external_id"],
            "api_key": api_key,
            "provider": "messenger",
            "access_token": acct["access_token"],
            "applications": list(acct["applications"]),
        }
        if acct.get("name") is not None:
            out["name"] = acct["name"]
        return out

    def _check_token(self, value: Any, params: list[dict[str, str]], *, required: bool) -> None:
        if value is None:
            if required:
                params.append({"name": "access_token", "reason": "Missing `access_token` field"})
        elif not isinstance(value, str) or not value:
            params.append({"name": "access_token", "reason": "`access_token` must be a non-empty string"})
        elif value in self.rejected_tokens:
            params.append({"name": "access_token", "reason": "The access token is invalid or has expired"})

    def _check_apps(self, api_key: str, value: Any, params: list[dict[str, str]]) -> Response | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            params.append({"name": "applications", "reason": "`applications` must be an array of strings"})
            return None
        if len(value) > 1:
            params.append({"name": "applications", "reason": "Only one application is allowed per account"})
            return None
        for app_id in value:
            if not self._messages_app(api_key, app_id):
                return problem(403, "Forbidden", "Cannot link application", type=FORBIDDEN_TYPE)
        return None

    def _messages_app(self, api_key: str, app_id: str) -> bool:
        app = self.applications.get(api_key, {}).get(app_id)
        return app is not None and "messages" in app["capabilities"]

    # -- external accounts ----------------------------------------------------
    def _create_account(self, req: Request, api_key: str) -> Response:
        body = self._body(req)
        if body is None:
            return _invalid([{"name": "body", "reason": "Request body must be a JSON object"}])
        params: list[dict[str, str]] = []
        external_id = body.get("external_id")
        if external_id is None:
            params.append({"name": "external_id", "reason": "Missing `external_id` field"})
        elif not isinstance(external_id, str) or not external_id:
            params.append({"name": "external_id", "reason": "`external_id` must be a non-empty string"})
        self._check_token(body.get("access_token"), params, required=True)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            params.append({"name": "name", "reason": "`name` must be a string"})
        forbidden = self._check_apps(api_key, body.get("applications"), params)
        if params or not isinstance(external_id, str):
            return _invalid(params)
        if forbidden is not None:
            return forbidden
        mine = self.accounts.setdefault(api_key, {})
        if external_id in mine:
            return problem(409, "Account conflict", f"Account '{external_id}' already exists", type=CONFLICT_TYPE)
        acct = {
            "external_id": external_id,
            "name": name,
            "access_token": body["access_token"],
            "applications": list(body.get("applications") or []),
        }
        mine[external_id] = acct
        return Response(201, self._account_json(api_key, acct))

    def _update_account(self, req: Request, api_key: str, page_id: str) -> Response:
        body = self._body(req)
        if body is None:
            return _invalid([{"name": "body", "reason": "Request body must be a JSON object"}])
        params: list[dict[str, str]] = []
        if "external_id" in body and body["external_id"] != page_id:
            params.append({"name": "external_id", "reason": "'external_id' parameter cannot be changed"})
        if "access_token" in body:
            self._check_token(body["access_token"], params, required=True)
        if "name" in body and body["name"] is not None and not isinstance(body["name"], str):
            params.append({"name": "name", "reason": "`name` must be a string"})
        forbidden = self._check_apps(api_key, body.get("applications"), params)
        if not params and not any(k in body for k in ("name", "access_token", "applications")):
            params.append({"name": "body", "reason": "Nothing to update"})
        if params:
            return _invalid(params)
        if forbidden is not None:
            return forbidden
        acct = self.accounts[api_key][page_id]
        for field_name in ("name", "access_token"):
            if field_name in body:
                acct[field_name] = body[field_name]
        if "applications" in body:
            acct["applications"] = list(body["applications"])
        return Response(200, self._account_json(api_key, acct))

    def _link_app(self, req: Request, api_key: str, page_id: str) -> Response:
        body = self._body(req)
        app_id = body.get("application") if body else None
        if not isinstance(app_id, str) or not app_id:
            return _invalid([{"name": "application", "reason": "Missing `application` field"}])
        if not self._messages_app(api_key, app_id):
            return problem(403, "Forbidden", "Cannot link application", type=FORBIDDEN_TYPE)
        acct = self.accounts[api_key][page_id]
        if acct["applications"]:
            return problem(409, "Application conflict", "Unable to link application", type=CONFLICT_TYPE)
        acct["applications"].append(app_id)
        return Response(200, self._account_json(api_key, acct))

    def _list_accounts(self, req: Request, api_key: str) -> Response:
        provider = req.query.get("provider")
        if provider is not None and provider not in PROVIDERS:
            return _invalid([{"name": "provider", "reason": f"must be one of: {', '.join(PROVIDERS)}"}])
        page_number = int_param(req.query.get("page_number"), 1)
        page_size = int_param(req.query.get("page_size"), self.accounts_page_size_default)
        bad = []
        if page_number is None or page_number < 1:
            bad.append({"name": "page_number", "reason": "must be greater than 0"})
        if page_size is None or not 1 <= page_size <= 100:
            bad.append({"name": "page_size", "reason": "must be between 1 and 100"})
        if bad:
            return _invalid(bad)
        assert page_number is not None and page_size is not None
        rows = [] if provider not in (None, "messenger") else list(self.accounts.get(api_key, {}).values())
        start = (page_number - 1) * page_size
        chunk = rows[start : start + page_size]
        last = max(1, math.ceil(len(rows) / page_size))
        body: dict[str, Any] = {
            "page_number": page_number,
            "page_size": page_size,
            "_embedded": [self._account_json(api_key, a) for a in chunk],
        }
        if self.list_links:
            extra = {"provider": provider} if provider else {}

            def href(n: int) -> dict[str, str]:
                # The spec's examples drop the provider filter from these links; keep it here.
                return {
                    "href": f"{self.url}{ACCOUNTS_PREFIX}?{urlencode({**extra, 'page_number': n, 'page_size': page_size})}"
                }

            links = {"self": href(page_number), "first": href(1), "last": href(last)}
            if page_number > 1:
                links["prev"] = href(page_number - 1)
            if page_number < last:
                links["next"] = href(page_number + 1)
            body["_links"] = links
        return Response(200, body)
