"""Helpers shared by the listener modules: the request object, after-ack work, answers, error wording."""

from __future__ import annotations

import html
import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import blocks
from bot.graph import GraphError
from bot.http import UpstreamError, UpstreamUnavailable
from bot.services import NoVonageKey, Services
from bot.store import Store
from bot.vonage import VonageAuthError, VonageConflict, VonageError, VonageForbidden, VonageInvalid, VonageNotFound

log = logging.getLogger(__name__)
MAX_ARG_TEXT = 500
ADMIN_ONLY = ":lock: Only fblink admins can do that. Ask one of them, or whoever runs fblink for your team."


async def admin_only_text(services: Services, team_id: str) -> str:
    """The refusal, naming this workspace's admins to ask (in words, never a setting's name)."""
    admins = (await services.admins(team_id))[:5]
    if services.settings.distributed:
        ask = [f"<@{a}>" for a in admins] + ["a Slack admin or owner of this workspace"]
        return (
            ":lock: Only fblink admins can do that. Ask "
            + ", ".join(ask[:-1])
            + (" or " if admins else "")
            + ask[-1]
            + "."
        )
    if not admins:
        return ":lock: Only fblink admins can do that, and none is set up yet: ask whoever runs fblink for your team."
    return ":lock: Only fblink admins can do that. Ask " + " or ".join(f"<@{a}>" for a in admins) + "."


Respond = Callable[..., Awaitable[Any]]
Body = dict[str, Any]


@dataclass
class Req:
    """One user action, whatever surface it came from (command, button, modal)."""

    services: Services
    team_id: str
    user_id: str
    channel_id: str | None
    respond: Respond
    trigger_id: str | None = None
    args: tuple[str, ...] = ()
    replaces: bool = False  # the next say() replaces the "working…" line the command's ack showed
    response_url: str | None = None  # the surface's, when it has one (a secret: never logged)
    answering_ack: bool = False  # the answer being built is the ack: the response_url's own message

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def now(self) -> int:
        return self.services.now()

    async def is_admin(self) -> bool:
        return await self.services.is_admin(self.team_id, self.user_id)

    async def say(self, msg: dict[str, Any]) -> None:
        """Answer the user: the first answer to a command replaces its "working…" line (one message per
        command); any other is a new ephemeral message, never replacing a message someone clicked."""
        replace, self.replaces = self.replaces, False
        await self.respond(**msg, replace_original=replace)

    @property
    def answer_url(self) -> str | None:
        """The response_url whose own message the answer being built will be (the ack, or the
        "working…" line the next say() replaces): through it, that answer can be replaced later."""
        return self.response_url if self.answering_ack or self.replaces else None


def url_responder(services: Services, response_url: str | None, team_id: str, user_id: str) -> Respond:
    """Answer through a response_url (with Slack's retry handlers), or by DM when there is none.

    The webhook client is built on first use: most commands are answered in the ack and never use it.
    """
    if not response_url:
        return dm_responder(services, team_id, user_id)

    async def respond(**msg: Any) -> None:
        resp = await _webhook(services, response_url).send(**msg)
        if resp.status_code >= 400:
            log.warning("response_url answered %s", resp.status_code)

    return respond


def _webhook(services: Services, response_url: str) -> AsyncWebhookClient:
    return AsyncWebhookClient(
        response_url,
        timeout=int(max(1, services.settings.fblink_http_timeout)),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(),
            AsyncServerErrorRetryHandler(),
        ],
    )


async def replace_message(
    services: Services, where: str | tuple[str, str] | None, msg: dict[str, Any], team_id: str = ""
) -> bool:
    """Replace a spent login prompt: through the response_url it belongs to, or, for one posted as
    a message of its own (``(channel, ts)``), with chat.update. A response_url lasts 30 minutes
    and 5 uses, so a refusal is expected: logged (never the URL) and False, not raised."""
    if not where:
        return False
    body = {k: v for k, v in msg.items() if k not in ("replace_original", "delete_original", "response_type")}
    if isinstance(where, tuple):
        try:
            await (await services.slack_for(team_id)).chat_update(channel=where[0], ts=where[1], **body)
        except Exception as exc:  # deleted, or the workspace is gone: the message stays as it was
            log.info("could not update a spent message: %s", type(exc).__name__)
            return False
        return True
    try:
        resp = await _webhook(services, where).send(**body, replace_original=True)
    except Exception as exc:  # unreachable, timed out: the message just stays as it was
        log.info("could not replace a spent message: %s", type(exc).__name__)
        return False
    if resp.status_code >= 400:
        log.info("could not replace a spent message: Slack answered %s", resp.status_code)
        return False
    return True


def action_req(services: Services, body: Body, respond: Respond | None) -> Req:
    """A click or a selection. Clicks on the App Home or in a modal have no response_url: answer by DM."""
    user_id = body["user"]["id"]
    team_id = body["team"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return Req(
        services=services,
        team_id=team_id,
        user_id=user_id,
        channel_id=channel,
        respond=respond
        if respond is not None and body.get("response_url")
        else dm_responder(services, team_id, user_id),
        trigger_id=body.get("trigger_id"),
        response_url=body.get("response_url") or None,
    )


ActionWork = Callable[[Req, Body], Coroutine[Any, Any, None]]


def on_action(app: AsyncApp, action_id: str, work: ActionWork) -> None:
    """Ack a button or select at once, then run ``work`` as a tracked task after the ack."""

    async def listener(ack: AsyncAck, body: Body, respond: AsyncRespond, services: Services) -> None:
        await ack()
        services.spawn(work(action_req(services, body, respond), body))

    app.action(action_id)(listener)


ViewListener = Callable[[AsyncAck, Body, Services], Awaitable[None]]


def admin_only(listener: ViewListener) -> ViewListener:
    """The one admin check for modals (errbot's ACL filter); commands declare ``admin`` instead."""

    async def checked(ack: AsyncAck, body: Body, services: Services) -> None:
        team_id = str((body.get("team") or {}).get("id", ""))
        if await services.is_admin(team_id, str((body.get("user") or {}).get("id", ""))):
            await listener(ack, body, services)
            return
        values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        if isinstance(values, dict) and values:
            await ack(response_action="errors", errors={next(iter(values)): await admin_only_text(services, team_id)})
        else:
            await ack()

    return checked


async def ack_errors(ack: AsyncAck, errors: dict[str, str]) -> None:
    """A modal's ack: close it, or show the field errors in it."""
    if errors:
        await ack(response_action="errors", errors=errors)
    else:
        await ack()


async def dm(services: Services, team_id: str, user_id: str, msg: dict[str, Any]) -> tuple[str, str] | None:
    """Tell a user in their DM with the bot: where the message is (channel, ts), or None. A Slack
    failure is logged, never raised over the real work."""
    msg = {k: v for k, v in msg.items() if k not in ("response_type", "replace_original", "delete_original")}
    try:
        resp = await (await services.slack_for(team_id)).chat_postMessage(channel=user_id, **msg)
    except Exception as exc:
        log.warning("could not message %s in Slack: %s", user_id, type(exc).__name__)
        return None
    return str(resp.get("channel") or user_id), str(resp.get("ts") or "")


def dm_responder(services: Services, team_id: str, user_id: str) -> Respond:
    """A respond() for surfaces without a response_url (modals, App Home, the OAuth callback)."""

    async def respond(**msg: Any) -> None:
        await dm(services, team_id, user_id, msg)

    return respond


async def tell_in_channel(services: Services, team_id: str, channel_id: str | None, user_id: str, text: str) -> None:
    """A short note, visible only to this person, in the channel they started from (none for a DM)."""
    if not channel_id or channel_id[:1] not in ("C", "G"):
        return
    try:
        slack = await services.slack_for(team_id)
        await slack.chat_postEphemeral(channel=channel_id, user=user_id, **blocks.notice(text))
    except Exception as exc:  # left the channel, archived: the DM has the answer
        log.info("no ephemeral note in %s: %s", channel_id, type(exc).__name__)


def where_you_acted(services: Services, team_id: str, user_id: str, channel_id: str | None) -> Respond:
    """For work started in a modal or a browser: the answer goes to the DM, and the same answer
    appears in the channel the person started from, visible only to them (a DM needs only one)."""
    direct = dm_responder(services, team_id, user_id)
    if not channel_id or channel_id[:1] not in ("C", "G"):
        return direct

    async def respond(**msg: Any) -> None:
        await direct(**msg)
        body = {k: v for k, v in msg.items() if k not in ("response_type", "replace_original", "delete_original")}
        try:
            await (await services.slack_for(team_id)).chat_postEphemeral(channel=channel_id, user=user_id, **body)
        except Exception as exc:  # not in the channel any more, archived: the DM has it
            log.info("no ephemeral answer in %s: %s", channel_id, type(exc).__name__)

    return respond


async def first_submission(services: Services, body: Body) -> bool:
    """A modal submission delivered twice (double click, Slack retry) is handled once. Keyed by the
    workspace Slack says sent it too: a view id and hash named by another workspace never count as this one's."""
    view, team = body.get("view") or {}, (body.get("team") or {}).get("id")
    return await services.store.first_time(f"view:{team}:{view.get('id')}:{view.get('hash')}", now=services.now())


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
    esc = blocks.escape
    if isinstance(exc, NoVonageKey):
        return f":key: {exc}"
    if isinstance(exc, UpstreamUnavailable):
        who = exc.upstream or "The service"
        return (
            f":hourglass: {who} is busy or unreachable right now, so nothing was changed. Try again in a few minutes."
        )
    if isinstance(exc, GraphError):
        if exc.token_dead:
            return ":warning: Your Facebook login has expired or was revoked. Run `/fblink login` to log in again."
        if exc.permission_error:
            return (
                ":no_entry: Facebook refused: fblink lacks a permission for this "
                f"({esc(exc.message or 'permission error')}). Run `/fblink login` and allow every permission."
            )
        return f":x: Facebook returned an error: {esc(exc.message or 'unknown error')}."
    if isinstance(exc, VonageAuthError):
        return (
            f":no_entry: Vonage rejected API key `{esc(exc.api_key or '?')}`. Check the key and secret "
            "(an admin can update them with `/fblink keys add`) and that the account is active."
        )
    if isinstance(exc, VonageForbidden):
        return (
            ":no_entry: Vonage refused: the application does not exist for this API key or is not a Messages "
            f"application. {esc(exc.detail or '')}".strip()
        )
    if isinstance(exc, VonageInvalid):
        fields = "; ".join(
            f"`{esc(str(p.get('name', '?')))}`: {esc(str(p.get('reason', '')))}" for p in exc.invalid_params
        )
        return f":x: Vonage rejected the request: {esc(exc.detail or exc.title or 'invalid request')}" + (
            f" ({fields})" if fields else ""
        )
    if isinstance(exc, VonageConflict):
        return f":warning: Vonage reports a conflict: {esc(exc.detail or exc.title or 'already exists')}"
    if isinstance(exc, VonageNotFound):
        return f":x: Vonage does not know this Page or application: {esc(exc.detail or exc.title or 'not found')}"
    if isinstance(exc, VonageError):
        return f":x: Vonage returned an error: {esc(exc.detail or exc.title or str(exc.status))}"
    if isinstance(exc, UpstreamError):
        return f":x: {esc(str(exc))}"
    log.exception("unexpected error", exc_info=exc)
    return f":x: {what} failed unexpectedly. The error was logged; try again, and tell an admin if it persists."
