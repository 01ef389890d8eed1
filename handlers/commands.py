"""The `/fblink` router: parse the text, answer quick subcommands in the ack,
acknowledge slow ones at once and finish them in a lazy listener."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from handlers import keys, links, login, pages, remind
from handlers.common import Req, services_of, split_args, user_error_text

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

Quick = Callable[[Req], Awaitable[dict[str, Any]]]
Slow = Callable[[Req], Awaitable[None]]

# Answered inside the ack: only the database is touched.
QUICK: dict[str, Quick] = {
    "login": login.cmd_login,
    "logout": login.cmd_logout,
    "status": links.cmd_status,
    "history": links.cmd_history,
    "remind": remind.cmd_remind,
    "keys": keys.cmd_keys_quick,
}

# Acknowledged with a "working" line, then run after the ack (they call Graph or Vonage).
SLOW: dict[str, tuple[str, Slow]] = {
    "pages": (":mag: Fetching your Facebook Pages…", pages.cmd_pages),
    "link": (":link: Linking…", links.cmd_link),
    "unlink": (":scissors: Unlinking…", links.cmd_unlink),
    "relink": (":arrows_counterclockwise: Re-linking…", links.cmd_relink),
    "sync": (":arrows_clockwise: Syncing with Vonage…", links.cmd_sync),
}

@functools.lru_cache(maxsize=1024)
def parse(text: str) -> tuple[str, tuple[str, ...]]:
    """`/fblink` text -> (subcommand, arguments). Pure, so cached: a request parses it up to three times."""
    words = split_args(text)
    if not words:
        return "help", ()
    return words[0].lower(), tuple(words[1:])


def needs_bolt(name: str, args: tuple[str, ...]) -> bool:
    """Slow subcommands and modals need Bolt's lazy listeners (and the trigger_id); the rest is one ack."""
    return name in SLOW or (name == "keys" and args[:1] == ("add",))


async def _no_respond(**msg: Any) -> None:
    log.warning("a quick subcommand tried to answer after its ack; ignored")


async def quick_answer(services: "Services", body: dict[str, Any], respond: Any = _no_respond) -> dict[str, Any]:
    """The whole answer of a quick subcommand (help included): database work only, no upstream call."""
    name, args = parse(str(body.get("text", "")))
    req = Req(services=services, team_id=str(body.get("team_id", "")), user_id=str(body.get("user_id", "")),
              channel_id=body.get("channel_id"), respond=respond, trigger_id=body.get("trigger_id"), args=args)
    if name not in QUICK:
        return blocks.help_message()
    try:
        return await QUICK[name](req)
    except Exception as exc:
        return blocks.notice(user_error_text(exc, what=f"/fblink {name}"))


def _req(body: dict[str, Any], context: Any, respond: Any, args: tuple[str, ...]) -> Req:
    return Req(
        services=services_of(context),
        team_id=body.get("team_id", ""),
        user_id=body.get("user_id", ""),
        channel_id=body.get("channel_id"),
        respond=respond,
        trigger_id=body.get("trigger_id"),
        args=args,
    )


async def ack_command(ack, body, context, respond):  # type: ignore[no-untyped-def]
    """Runs before the HTTP answer: must be fast (database only). Over HTTP, bot/web.py answers
    the quick subcommands itself; this listener serves Socket Mode and the slow subcommands."""
    name, args = parse(body.get("text", ""))
    if name in SLOW:
        if name == "link" and not args:
            await ack()  # the modal is the answer
            return
        await ack(**blocks.notice(SLOW[name][0]))
        return
    payload = await quick_answer(services_of(context), body, respond)
    if payload.get("_defer"):
        await ack()  # keys add: the modal is the answer
    else:
        await ack(**payload)


async def run_command(body, context, respond):  # type: ignore[no-untyped-def]
    """Lazy listener: the slow half of a subcommand, after Slack has its ack."""
    name, args = parse(body.get("text", ""))
    req = _req(body, context, respond, args)
    services = req.services
    if name == "keys" and args[:1] == ("add",):
        await keys.open_add_modal(req)
        return
    if name not in SLOW:
        return
    trigger = body.get("trigger_id") or ""
    if trigger and not services.store.first_time(f"cmd:{trigger}", now=services.now()):
        log.info("duplicate delivery of /fblink %s ignored", name)
        return
    try:
        await SLOW[name][1](req)
    except Exception as exc:
        await respond(**blocks.notice(user_error_text(exc, what=f"/fblink {name}")), replace_original=False)


async def needs_lazy(body: dict[str, Any]) -> bool:
    """Only slow subcommands pay for Bolt's lazy-listener request copy."""
    return needs_bolt(*parse(body.get("text", "")))


def register(app: AsyncApp) -> None:
    # Bolt runs the first listener whose matchers pass.
    app.command("/fblink", matchers=[needs_lazy])(ack=ack_command, lazy=[run_command])
    app.command("/fblink")(ack_command)
