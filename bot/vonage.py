"""Vonage client: External Accounts (Facebook Messenger) and the Application API v2.

Talks to ``{base}/beta/chatapp-accounts/...`` and ``{base}/v2/applications`` with
basic auth (API key + secret), through :func:`bot.http.send` so Vonage gets the same
retry and time budget as Graph. Errors come back as RFC 7807 problem JSON and are
mapped to small exception classes by status, so handlers can tell the user *why*
("this Page already has an application") instead of "something failed".

Secrets: the API secret travels only in the Authorization header, and Vonage echoes
the Page access token back in account bodies; neither is kept on the returned
objects, and both are scrubbed from every error message and log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from bot.http import RetryPolicy, send
from bot.vonage_models import (
    _BY_STATUS,
    UPSTREAM,
    Application,
    Credentials,
    ExternalAccount,
    VonageAuthError,
    VonageConflict,
    VonageError,
    VonageForbidden,
    VonageInvalid,
    VonageNotFound,
    _account,
    _application,
    _embedded_accounts,
    _expects_json_transient,
    _has_next,
    _json,
    _scrub,
)

__all__ = [
    "Application",
    "Credentials",
    "ExternalAccount",
    "VonageAuthError",
    "VonageClient",
    "VonageConflict",
    "VonageError",
    "VonageForbidden",
    "VonageInvalid",
    "VonageNotFound",
]

log = logging.getLogger(__name__)

ACCOUNTS_PATH = "/beta/chatapp-accounts"
MESSENGER_PATH = f"{ACCOUNTS_PATH}/messenger"
APPLICATIONS_PATH = "/v2/applications"
MAX_PAGES = 500  # a bound on every pagination loop, in case an upstream keeps saying "next"


# -- client -------------------------------------------------------------------
class VonageClient:
    """Async Vonage client; one per process, credentials passed per call (keys vary by team)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        policy: RetryPolicy = RetryPolicy(),
        on_attempt: Callable[[str, int | None], None] | None = None,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._policy = policy
        self._on_attempt = on_attempt

    # -- plumbing -----------------------------------------------------------
    async def _call(
        self,
        creds: Credentials,
        method: str,
        path: str,
        *,
        op: str,
        expect_json: bool = True,
        secrets: tuple[str | None, ...] = (),
        **kwargs: Any,
    ) -> tuple[httpx.Response, int]:
        """One logical call (with retries); returns the final response and the attempt count.

        Non-2xx become :class:`VonageError` subclasses. The attempt count lets
        non-idempotent callers recognise "my earlier attempt probably landed".
        """
        attempts = 0

        def count(upstream: str, status: int | None) -> None:
            nonlocal attempts
            attempts += 1
            if self._on_attempt:
                self._on_attempt(upstream, status)

        response = await send(
            self._http,
            self._policy,
            UPSTREAM,
            method,
            f"{self._base}{path}",
            is_transient=_expects_json_transient if expect_json else None,
            on_attempt=count,
            auth=creds.auth(),
            headers={"Accept": "application/json"},
            **kwargs,
        )
        if response.status_code >= 300:
            error = self._error(response, creds, op, (creds.api_secret, *secrets))
            error.attempts = attempts
            raise error
        return response, attempts

    @staticmethod
    def _error(response: httpx.Response, creds: Credentials, op: str, secrets: tuple[str | None, ...]) -> VonageError:
        status = response.status_code
        body = _json(response)
        problem = body if isinstance(body, dict) else {}
        try:
            generic = HTTPStatus(status).phrase
        except ValueError:
            generic = f"HTTP {status}"
        title = _scrub(problem.get("title"), secrets) or generic
        detail = _scrub(problem.get("detail"), secrets)
        raw_params = problem.get("invalid_params") or problem.get("invalid_parameters") or []
        params: list[dict[str, str]] = []
        if isinstance(raw_params, list):
            for p in raw_params:
                if isinstance(p, dict):
                    params.append(
                        {"name": _scrub(p.get("name"), secrets) or "", "reason": _scrub(p.get("reason"), secrets) or ""}
                    )
        message = f"{UPSTREAM} {op} failed: HTTP {status} {title}"
        if detail:
            message += f": {detail}"
        if params:
            message += " (" + "; ".join(f"{p['name']}: {p['reason']}" for p in params) + ")"
        cls = _BY_STATUS.get(status, VonageError)
        log.info("%s %s key=%s -> HTTP %d %s", UPSTREAM, op, creds.api_key, status, title)
        return cls(
            message,
            status=status,
            type_=_scrub(problem.get("type"), secrets),
            title=title,
            detail=detail,
            invalid_params=params,
            api_key=creds.api_key,
            instance=_scrub(problem.get("instance"), secrets),
        )

    @staticmethod
    def _object(response: httpx.Response, op: str) -> dict[str, Any]:
        body = _json(response)
        if not isinstance(body, dict):
            raise VonageError(
                f"{UPSTREAM} {op}: expected a JSON object, got {type(body).__name__}",
                status=response.status_code,
                title="Unexpected response",
            )
        return body

    @staticmethod
    def _page_path(page_id: str) -> str:
        if not page_id:
            raise ValueError("page_id must not be empty")
        return f"{MESSENGER_PATH}/{quote(page_id, safe='')}"

    # -- external accounts --------------------------------------------------
    async def link_account(
        self,
        creds: Credentials,
        *,
        page_id: str,
        access_token: str,
        name: str | None = None,
        application_id: str | None = None,
    ) -> ExternalAccount:
        """Create the Messenger account for a Page (optionally with its one application).

        POST is not idempotent: if a retried attempt meets 409, the first attempt most
        likely landed, so the account is fetched and returned when it carries our token.
        """
        if not page_id or not access_token:
            raise ValueError("page_id and access_token are required")
        body: dict[str, Any] = {"external_id": page_id, "access_token": access_token}
        if name is not None:
            body["name"] = name
        if application_id is not None:
            body["applications"] = [application_id]
        try:
            response, _ = await self._call(
                creds, "POST", MESSENGER_PATH, op="link_account", secrets=(access_token,), json=body
            )
        except VonageConflict as exc:
            if exc.attempts > 1:
                existing = await self._get_raw(creds, page_id)
                if existing is not None and existing.get("access_token") == access_token:
                    log.info("%s link_account page=%s: retried POST had landed", UPSTREAM, page_id)
                    return _account(existing)
            raise
        return _account(self._object(response, "link_account"))

    async def update_account(
        self, creds: Credentials, page_id: str, *, access_token: str | None = None, name: str | None = None
    ) -> ExternalAccount:
        """Replace the Page token (after a refresh) and/or the account name."""
        body: dict[str, Any] = {}
        if access_token is not None:
            body["access_token"] = access_token
        if name is not None:
            body["name"] = name
        if not body:
            raise ValueError("update_account needs access_token and/or name")
        response, _ = await self._call(
            creds, "PATCH", self._page_path(page_id), op="update_account", secrets=(access_token,), json=body
        )
        return _account(self._object(response, "update_account"))

    async def _get_raw(self, creds: Credentials, page_id: str) -> dict[str, Any] | None:
        try:
            response, _ = await self._call(creds, "GET", self._page_path(page_id), op="get_account")
        except VonageNotFound:
            return None
        return self._object(response, "get_account")

    async def get_account(self, creds: Credentials, page_id: str) -> ExternalAccount | None:
        """The account for a Page under this key, or None if Vonage has none."""
        raw = await self._get_raw(creds, page_id)
        return _account(raw) if raw is not None else None

    async def unlink_account(self, creds: Credentials, page_id: str) -> None:
        """Delete the Page's account. 404 raises :class:`VonageNotFound` (caller decides),
        except after a retry, where it means our earlier attempt already deleted it."""
        try:
            await self._call(creds, "DELETE", self._page_path(page_id), op="unlink_account", expect_json=False)
        except VonageNotFound as exc:
            if exc.attempts > 1:
                return
            raise

    async def list_accounts(self, creds: Credentials, *, page_size: int = 20) -> list[ExternalAccount]:
        """Every Messenger account of this key, across all pages.

        Pages are requested by ``page_number`` (the spec's parameter) rather than by
        following ``_links.next`` verbatim: the spec's example links drop the provider
        filter, and a computed URL never sends our credentials to another host.
        ``_links.next`` (or, without ``_links``, a full page) says whether to go on.
        """
        seen: dict[str, ExternalAccount] = {}
        for page_number in range(1, MAX_PAGES + 1):
            response, _ = await self._call(
                creds,
                "GET",
                ACCOUNTS_PATH,
                op="list_accounts",
                params={"provider": "messenger", "page_number": page_number, "page_size": page_size},
            )
            body = self._object(response, "list_accounts")
            items = _embedded_accounts(body)
            for item in items:
                if (
                    isinstance(item, dict)
                    and item.get("provider", "messenger") == "messenger"
                    and item.get("external_id")
                ):
                    acct = _account(item)
                    seen.setdefault(acct.external_id, acct)
            more = _has_next(body)
            if not items or more is False or (more is None and len(items) < page_size):
                return list(seen.values())
        log.warning("%s list_accounts key=%s: stopped after %d pages", UPSTREAM, creds.api_key, MAX_PAGES)
        return list(seen.values())

    # -- applications on an account -------------------------------------------
    async def link_application(self, creds: Credentials, page_id: str, application_id: str) -> ExternalAccount:
        """Point the Page at an application. 409 if it already has one (even the same one).

        After a retried attempt, a 409 is checked against the account: if it now carries
        exactly this application, our earlier attempt landed and that is success.
        """
        if not application_id:
            raise ValueError("application_id must not be empty")
        try:
            response, _ = await self._call(
                creds,
                "POST",
                f"{self._page_path(page_id)}/applications",
                op="link_application",
                json={"application": application_id},
            )
        except VonageConflict as exc:
            if exc.attempts > 1:
                existing = await self.get_account(creds, page_id)
                if existing is not None and existing.applications == (application_id,):
                    return existing
            raise
        return _account(self._object(response, "link_application"))

    async def unlink_application(self, creds: Credentials, page_id: str, application_id: str) -> None:
        """Detach the application. Vonage answers 409 (not 404) when it is not linked."""
        if not application_id:
            raise ValueError("application_id must not be empty")
        path = f"{self._page_path(page_id)}/applications/{quote(application_id, safe='')}"
        try:
            await self._call(creds, "DELETE", path, op="unlink_application", expect_json=False)
        except VonageConflict as exc:
            if exc.attempts > 1:
                existing = await self.get_account(creds, page_id)
                if existing is not None and application_id not in existing.applications:
                    return
            raise

    # -- applications ---------------------------------------------------------
    async def list_applications(self, creds: Credentials, *, page_size: int = 100) -> list[Application]:
        """Every application of this key (``page``/``page_size`` 1..100, until ``total_pages``)."""
        seen: dict[str, Application] = {}
        for page in range(1, MAX_PAGES + 1):
            response, _ = await self._call(
                creds,
                "GET",
                APPLICATIONS_PATH,
                op="list_applications",
                params={"page_size": page_size, "page": page},
            )
            body = self._object(response, "list_applications")
            embedded = body.get("_embedded")
            items = embedded.get("applications") if isinstance(embedded, dict) else None
            items = items if isinstance(items, list) else []
            for item in items:
                app = _application(item)
                if app is not None:
                    seen.setdefault(app.id, app)
            total_pages = body.get("total_pages")
            if not items:
                break
            if isinstance(total_pages, int):
                if page >= total_pages:
                    break
            else:
                more = _has_next(body)
                if more is False or (more is None and len(items) < page_size):
                    break
        else:
            log.warning("%s list_applications key=%s: stopped after %d pages", UPSTREAM, creds.api_key, MAX_PAGES)
        return list(seen.values())
