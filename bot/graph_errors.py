"""Graph's error object as exceptions, and which Graph errors are worth retrying.

Graph answers most errors with HTTP 400 and ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``; rate limits and "try again" codes among them are
transient. Split from :mod:`bot.graph` to keep modules small; import from either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from bot.http import UpstreamError, json_or_none

UPSTREAM = "Facebook"

# Graph error codes worth retrying: 1 unknown, 2 service, 4/17/32/613 rate limits,
# 341 application limit reached.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})


class GraphError(UpstreamError):
    """Graph refused a request; the fields mirror Graph's error object."""

    upstream = UPSTREAM

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        type: str | None = None,
        fbtrace_id: str | None = None,
        status: int | None = None,
    ) -> None:
        label = f"Facebook error {code}" if code is not None else "Facebook error"
        if subcode is not None:
            label += f"/{subcode}"
        super().__init__(f"{label}: {message}", status=status)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.type = type
        self.fbtrace_id = fbtrace_id

    @property
    def token_dead(self) -> bool:
        """The token can never work again: the user has to log in anew."""
        return self.code in (190, 102)

    @property
    def permission_error(self) -> bool:
        """The token works but lacks a permission (or a Page role)."""
        return self.code == 10 or (self.code is not None and 200 <= self.code <= 299)


class GraphAppError(GraphError):
    """Graph refused the *app's* credentials (app id/secret), not the user's token.

    Raised by ``debug_token`` (a dead input token answers HTTP 200 there, so any
    error is about the app token) and by the OAuth exchanges for a wrong client
    id/secret. It is an operator problem, so ``token_dead`` is always False.
    """

    @property
    def token_dead(self) -> bool:
        return False


def _error_object(body: Any) -> dict[str, Any] | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_transient(response: httpx.Response) -> bool:
    """Retry 429, 5xx, unparseable bodies and Graph's 'try again later' codes."""
    if response.status_code == 429 or response.status_code >= 500:
        return True
    body = json_or_none(response)
    if body is None:
        # A 2xx we cannot parse is a broken reply; a non-2xx one is a plain error page.
        return response.is_success
    error = _error_object(body)
    if error is None:
        return False
    if error.get("is_transient") is True:
        return True
    return _int_or_none(error.get("code")) in TRANSIENT_CODES


def _is_transient_oauth(response: httpx.Response) -> bool:
    """Like :func:`is_transient`, but code 1 on the OAuth endpoint means a wrong
    client secret ("Error validating client secret."), which retrying cannot fix."""
    error = _error_object(json_or_none(response))
    if error is not None and _int_or_none(error.get("code")) == 1 and error.get("is_transient") is not True:
        return response.status_code >= 500
    return is_transient(response)


def graph_error(response: httpx.Response, error_class: Callable[..., GraphError] = GraphError) -> GraphError:
    """Turn an error response into a GraphError (code None when there is no error object)."""
    error = _error_object(json_or_none(response))
    if error is None:
        return error_class(f"unexpected HTTP {response.status_code} reply", status=response.status_code)
    return error_class(
        str(error.get("message") or "no message"),
        code=_int_or_none(error.get("code")),
        subcode=_int_or_none(error.get("error_subcode")),
        type=error.get("type"),
        fbtrace_id=error.get("fbtrace_id"),
        status=response.status_code,
    )


def _oauth_error_class(*args: Any, **kwargs: Any) -> GraphError:
    """Code 1 (bad client secret) and 101 (bad app id) are the app's fault, not the user's."""
    if kwargs.get("code") in (1, 101):
        return GraphAppError(*args, **kwargs)
    return GraphError(*args, **kwargs)
