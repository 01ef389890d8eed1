"""Helpers shared by the listener modules: request context, argument parsing, error wording."""

from __future__ import annotations

import html
import logging
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot import blocks
from bot.graph import GraphError
from bot.http import UpstreamError, UpstreamUnavailable
from bot.vonage import VonageAuthError, VonageConflict, VonageError, VonageForbidden, VonageInvalid, VonageNotFound

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)
MAX_ARG_TEXT = 500

Respond = Callable[..., Awaitable[Any]]


@dataclass
class Req:
    """One user action, whatever surface it came from (command, button, modal)."""

    services: "Services"
    team_id: str
    user_id: str
    channel_id: str | None
    respond: Respond
    trigger_id: str | None = None
    args: tuple[str, ...] = ()

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.services.store

    @property
    def now(self) -> int:
        return self.services.now()


def services_of(context: Any) -> "Services":
    return context["services"]


async def ack_only(ack):  # type: ignore[no-untyped-def]
    """The ack of a listener whose work runs in a lazy listener."""
    await ack()


async def ack_errors(ack, errors: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """A modal's ack: close it, or show the field errors in it."""
    if errors:
        await ack(response_action="errors", errors=errors)
    else:
        await ack()


async def dm(services: "Services", user_id: str, msg: dict[str, Any]) -> None:
    """Tell a user in their DM with the bot; a Slack failure is logged, never raised over the real work."""
    msg = {k: v for k, v in msg.items() if k not in ("response_type", "replace_original")}
    try:
        await services.slack.chat_postMessage(channel=user_id, **msg)
    except Exception as exc:
        log.warning("could not message %s in Slack: %s", user_id, type(exc).__name__)


def dm_responder(services: "Services", user_id: str) -> Respond:
    """A respond() for surfaces without a response_url (modals, App Home, the OAuth callback)."""

    async def respond(**msg: Any) -> None:
        await dm(services, user_id, msg)

    return respond


def first_submission(services: "Services", view: dict[str, Any]) -> bool:
    """A modal submission delivered twice (double click, Slack retry) is handled once."""
    return services.store.first_time(f"view:{view.get('id')}:{view.get('hash')}", now=services.now())


def split_args(text: str) -> list[str]:
    """Words of a command, honouring quotes; Slack's &amp; &lt; &gt; turned back into characters."""
    text = html.unescape((text or "")[:MAX_ARG_TEXT]).strip()
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes: fall back to plain words
        return text.split()


CHANNEL_RE = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def parse_channel(word: str) -> str | None:
    """`<#C0123|general>` (escaped mention) or a bare channel id -> the id."""
    m = CHANNEL_RE.fullmatch(word.strip())
    if m:
        return m.group(1)
    if re.fullmatch(r"[CG][A-Z0-9]{6,}", word.strip()):
        return word.strip()
    return None


def user_error_text(exc: Exception, *, what: str = "That") -> str:
    """Say what happened and what to do, for any upstream failure."""
    if isinstance(exc, UpstreamUnavailable):
        who = exc.upstream or "The service"
        return f":hourglass: {who} is busy or unreachable right now, so nothing was changed. Try again in a few minutes."
    if isinstance(exc, GraphError):
        if exc.token_dead:
            return ":warning: Your Facebook login has expired or was revoked. Run `/fblink login` to log in again."
        if exc.permission_error:
            return (
                ":no_entry: Facebook refused: fblink lacks a permission for this "
                f"({blocks.escape(exc.message or 'permission error')}). Run `/fblink login` and allow every permission."
            )
        return f":x: Facebook returned an error: {blocks.escape(exc.message or 'unknown error')}."
    if isinstance(exc, VonageAuthError):
        return (
            f":no_entry: Vonage rejected API key `{blocks.escape(exc.api_key or '?')}`. Check the key and secret "
            "(an admin can update them with `/fblink keys add`) and that the account is active."
        )
    if isinstance(exc, VonageForbidden):
        return (
            ":no_entry: Vonage refused: the application does not exist for this API key or is not a Messages "
            f"application. {blocks.escape(exc.detail or '')}".strip()
        )
    if isinstance(exc, VonageInvalid):
        fields = "; ".join(
            f"`{blocks.escape(str(p.get('name', '?')))}`: {blocks.escape(str(p.get('reason', '')))}"
            for p in exc.invalid_params
        )
        return f":x: Vonage rejected the request: {blocks.escape(exc.detail or exc.title or 'invalid request')}" + (
            f" ({fields})" if fields else ""
        )
    if isinstance(exc, VonageConflict):
        return f":warning: Vonage reports a conflict: {blocks.escape(exc.detail or exc.title or 'already exists')}"
    if isinstance(exc, VonageNotFound):
        return f":x: Vonage does not know this Page or application: {blocks.escape(exc.detail or exc.title or 'not found')}"
    if isinstance(exc, VonageError):
        return f":x: Vonage returned an error: {blocks.escape(exc.detail or exc.title or str(exc.status))}"
    if isinstance(exc, UpstreamError):
        return f":x: {blocks.escape(str(exc))}"
    log.exception("unexpected error", exc_info=exc)
    return f":x: {what} failed unexpectedly. The error was logged; try again, and tell an admin if it persists."
