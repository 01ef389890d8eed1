"""Vonage's values and errors: credentials, accounts, applications, problem-JSON errors, and
the parsing of Vonage's bodies into them. Split from the client to keep each module small."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.http import UpstreamError, default_is_transient

UPSTREAM = "Vonage"
REDACTED = "[redacted]"
MIN_SCRUB_LEN = 6  # shorter "secrets" would mangle ordinary words; real ones are far longer


@dataclass(frozen=True)
class Credentials:
    """One Vonage API key and its secret; the secret never shows in a repr."""

    api_key: str
    api_secret: str = field(repr=False)

    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.api_key, self.api_secret)


# -- errors -------------------------------------------------------------------
class VonageError(UpstreamError):
    """Vonage refused a request; carries the problem JSON so callers can explain it."""

    upstream = UPSTREAM

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type_: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        invalid_params: list[dict[str, str]] | None = None,
        api_key: str | None = None,
        instance: str | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.type = type_
        self.title = title
        self.detail = detail
        self.invalid_params: list[dict[str, str]] = list(invalid_params or [])
        self.api_key = api_key
        self.instance = instance
        self.attempts = 1  # how many HTTP attempts the call took (set by the client)


class VonageAuthError(VonageError):
    """401: the key/secret pair is wrong (or the key was deleted)."""


class VonageForbidden(VonageError):
    """403: e.g. the application is not a messages application, or not this key's."""


class VonageNotFound(VonageError):
    """404: no such account (or route) for this key."""


class VonageConflict(VonageError):
    """409: e.g. the Page already has an application, or the account already exists."""


class VonageInvalid(VonageError):
    """400/422: Vonage rejected the parameters; see ``invalid_params``."""


_BY_STATUS: dict[int, type[VonageError]] = {
    400: VonageInvalid,
    401: VonageAuthError,
    403: VonageForbidden,
    404: VonageNotFound,
    409: VonageConflict,
    422: VonageInvalid,
}


# -- results ------------------------------------------------------------------
@dataclass(frozen=True)
class ExternalAccount:
    """A Messenger external account. The echoed access token is deliberately dropped."""

    external_id: str
    name: str | None
    applications: tuple[str, ...]
    api_key: str | None = None

    @property
    def application(self) -> str | None:
        """Vonage allows one application per Page; this is it, if any."""
        return self.applications[0] if self.applications else None


@dataclass(frozen=True)
class Application:
    """A Vonage application; only messages-capable ones can own a Page."""

    id: str
    name: str
    capabilities: frozenset[str]

    @property
    def messages_capable(self) -> bool:
        return "messages" in self.capabilities


# -- parsing helpers ----------------------------------------------------------
_NO_JSON = object()


def _json(response: httpx.Response) -> Any:
    """The JSON body, or ``_NO_JSON`` (distinct from a JSON ``null``)."""
    try:
        return response.json()
    except ValueError:
        return _NO_JSON


def _expects_json_transient(response: httpx.Response) -> bool:
    """Default rule plus: a 2xx that should carry JSON but doesn't (a proxy page, a cut body)."""
    if default_is_transient(response):
        return True
    return 200 <= response.status_code < 300 and _json(response) is _NO_JSON


def _scrub(text: Any, secrets: Iterable[str | None]) -> str | None:
    if text is None:
        return None
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= MIN_SCRUB_LEN and secret in out:
            out = out.replace(secret, REDACTED)
    return out


def _account(data: Any) -> ExternalAccount:
    if not isinstance(data, dict) or not data.get("external_id"):
        raise VonageError(f"{UPSTREAM} sent an account without an external_id", title="Unexpected response")
    apps = data.get("applications") or []
    name = data.get("name")
    api_key = data.get("api_key")
    return ExternalAccount(
        external_id=str(data["external_id"]),
        name=str(name) if name is not None else None,
        applications=tuple(str(a) for a in apps) if isinstance(apps, list) else (),
        api_key=str(api_key) if api_key is not None else None,
    )


def _application(data: Any) -> Application | None:
    if not isinstance(data, dict) or not data.get("id"):
        return None
    caps = data.get("capabilities")
    return Application(
        id=str(data["id"]),
        name=str(data.get("name") or ""),
        capabilities=frozenset(caps) if isinstance(caps, dict) else frozenset(),
    )


def _embedded_accounts(body: dict[str, Any]) -> list[Any]:
    """The spec has ``_embedded`` as a bare array; tolerate ``{"accounts": [...]}`` too."""
    embedded = body.get("_embedded")
    if isinstance(embedded, list):
        return embedded
    if isinstance(embedded, dict):
        out: list[Any] = []
        for value in embedded.values():
            if isinstance(value, list):
                out.extend(value)
        return out
    return []


def _has_next(body: dict[str, Any]) -> bool | None:
    """True/False from ``_links.next``; None when the body has no ``_links`` at all."""
    links = body.get("_links")
    if not isinstance(links, dict):
        return None
    nxt = links.get("next")
    return isinstance(nxt, dict) and bool(nxt.get("href"))
