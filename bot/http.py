"""One timeout and retry policy for every outbound HTTP call (Graph, Vonage).

Transient failures -- connection errors, timeouts, 429 and 5xx, and whatever an
upstream's ``is_transient`` hook flags (Graph's rate-limit codes answer 4xx) --
are retried with capped exponential backoff and jitter via ``stamina``.
``Retry-After`` is honoured. Anything else is returned to the caller, which
maps it to its own error type. The whole retry loop is bounded in time so a
Slack user always hears back.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import stamina

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try an upstream before giving up."""

    attempts: int = 4
    total_timeout: float = 20.0
    wait_initial: float = 0.3
    wait_max: float = 5.0
    wait_jitter: float = 0.3
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_retry_after: float = 10.0

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


class UpstreamError(Exception):
    """An upstream (Slack, Facebook, Vonage) failed in a way the user must hear about."""

    upstream: str = "upstream"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UpstreamUnavailable(UpstreamError):
    """Still failing after every retry: busy, down or unreachable."""

    def __init__(self, upstream: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.upstream = upstream


class _Transient(Exception):
    """Internal: a response worth retrying."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def default_is_transient(response: httpx.Response) -> bool:
    return response.status_code == 429 or response.status_code >= 500


async def send(
    client: httpx.AsyncClient,
    policy: RetryPolicy,
    upstream: str,
    method: str,
    url: str,
    *,
    is_transient: Callable[[httpx.Response], bool] | None = None,
    on_attempt: Callable[[str, int | None], None] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request with the shared policy; return the first non-transient response.

    Raises :class:`UpstreamUnavailable` once the retries or the time budget run out.
    ``on_attempt(upstream, status_or_None)`` is called after every attempt (metrics).
    """
    transient = is_transient or default_is_transient
    kwargs.setdefault("timeout", policy.timeout())

    def backoff(exc: Exception) -> bool | float:
        if isinstance(exc, _Transient):
            if exc.retry_after is not None:
                return min(exc.retry_after, policy.max_retry_after)
            return True
        return isinstance(exc, httpx.TransportError)

    last_status: int | None = None
    try:
        async for attempt in stamina.retry_context(
            on=backoff,
            attempts=policy.attempts,
            timeout=policy.total_timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                try:
                    response = await client.request(method, url, **kwargs)
                except httpx.TransportError as exc:
                    last_status = None
                    if on_attempt:
                        on_attempt(upstream, None)
                    log.warning("%s %s: %s (attempt %d)", upstream, method, type(exc).__name__, attempt.num)
                    raise
                last_status = response.status_code
                if on_attempt:
                    on_attempt(upstream, response.status_code)
                if transient(response):
                    log.warning("%s %s: HTTP %d (attempt %d)", upstream, method, response.status_code, attempt.num)
                    raise _Transient(response, parse_retry_after(response.headers.get("retry-after")))
                return response
    except _Transient as exc:
        raise UpstreamUnavailable(
            upstream, f"{upstream} kept answering HTTP {exc.response.status_code}", status=exc.response.status_code
        ) from None
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(upstream, f"{upstream} could not be reached ({type(exc).__name__})") from None
    raise UpstreamUnavailable(upstream, f"{upstream} failed", status=last_status)  # pragma: no cover


def json_or_none(response: httpx.Response) -> Any:
    """The JSON body, or None when it is not JSON (a proxy's HTML error page, say)."""
    try:
        return response.json()
    except ValueError:
        return None
