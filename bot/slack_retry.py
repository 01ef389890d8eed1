"""Slack's 429s: retried in the call only when the Retry-After is short.

slack_sdk's rate-limit handler sleeps whatever Retry-After Slack sends, inside the call: a
worker told to wait a minute would hold its claims (and a web process its request) for that
minute. Here only a wait of up to ``LONG_WAIT`` is retried in place; a longer one ends the
call with Slack's 429, and the sweep records it for every process (``bot.store.pace``) and
hands the claim back for a later sweep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

LONG_WAIT = 10.0  # seconds: a longer Retry-After is not waited for in the call


def retry_after(headers: Mapping[str, Any]) -> float | None:
    """Slack's Retry-After (seconds), from headers in any letter case; None when absent or odd."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            first = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(first))
            except (TypeError, ValueError):
                return None
    return None


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, for Retry-Afters of at most ``longest`` seconds only."""

    def __init__(self, *, max_retry_count: int, longest: float = LONG_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.longest = longest

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after(response.headers)
        return wait is None or wait <= self.longest
