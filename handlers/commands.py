"""The `/fblink` subcommands, declared once, and the one dispatcher both transports use.

Over HTTP, bot/web.py hands every `/fblink` request to :func:`handle_command` right after
the signature check; over Socket Mode the Bolt listener below does. Quick subcommands are
answered inside the ack; slow ones are acknowledged with their "working" line and finished
after the ack as tracked tasks (``Services.spawn``) that answer through response_url.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import blocks
from bot.services import Services
from handlers import admins, keys, link_modal, links, login, org, pages, remind, status
from handlers.common import Body, Req, admin_only_text, url_responder, user_error_text
from handlers.lookups import RERUN
from handlers.registry import Parsed, Subcommand, parse
from handlers.session import login_prompt

log = logging.getLogger(__name__)
COMMAND = "/fblink"


async def _help(req: Req) -> dict[str, Any]:
    return HELP_MESSAGE


SUBCOMMANDS: dict[str, Subcommand] = {
    s.name: s
    for s in (
        Subcommand(
            "login", (("login", "Log in with Facebook so fblink can see the Pages you manage"),), answer=login.cmd_login
        ),
        Subcommand("logout", (("logout", "Forget your Facebook login and Page tokens"),), answer=login.cmd_logout),
        Subcommand(
            "whoami",
            (("whoami", "Which Facebook account is connected to you, and until when"),),
            answer=login.cmd_whoami,
        ),
        Subcommand(
            "pages",
            (("pages", "List the Facebook Pages you manage and their link status"),),
            run_after=pages.cmd_pages,
            working=":mag: Fetching your Facebook Pages…",
            needs_login=True,
        ),
        Subcommand(
            "link",
            (
                ("link <page> [api-key]", "Link a Page to a Vonage account (no arguments: open a form)"),
                ("link <page> app <application>", "Link a Page to a Vonage application"),
            ),
            run_after=links.cmd_link,
            working=":link: Linking…",
            needs_login=True,
            opens_modal=lambda args: not args,
            open_modal=link_modal.open_link_modal,
        ),
        Subcommand(
            "unlink",
            (("unlink <page> [app <application>]", "Unlink an application, or remove the Page from Vonage"),),
            run_after=links.cmd_unlink,
            working=":scissors: Unlinking…",
        ),
        Subcommand(
            "relink",
            (("relink <page>", "Refresh a Page's token at Vonage; starts a new 90-day period"),),
            run_after=links.cmd_relink,
            working=":arrows_counterclockwise: Re-linking…",
        ),
        Subcommand(
            "status", (("status", "Every link in this workspace, soonest expiry first"),), answer=status.cmd_status
        ),
        Subcommand(
            "org",
            (("org", "Every link in every workspace of your Enterprise Grid org (org admins)"),),
            run_after=org.cmd_org,
            working=":office: Reading your org's workspaces…",
        ),
        Subcommand(
            "remind",
            (("remind [<page>] #channel | <page> off", "Where expiry reminders go; mute a Page"),),
            answer=remind.cmd_remind,
        ),
        Subcommand(
            "sync",
            (("sync", "Reconcile with Vonage: import dashboard links, mark deleted ones"),),
            run_after=links.cmd_sync,
            working=":arrows_clockwise: Syncing with Vonage…",
        ),
        Subcommand(
            "keys",
            (("keys add | list | remove <api-key>", "Manage Vonage API keys (admins)"),),
            answer=keys.cmd_keys,
            opens_modal=keys.opens_modal,
            open_modal=keys.open_add_modal,
            admin=True,
        ),
        Subcommand(
            "admins",
            (("admins [add | remove @person]", "Who the fblink admins are; add or remove one (admins)"),),
            answer=admins.cmd_admins,
            admin=True,
        ),
        Subcommand(
            "history", (("history <page>", "The last changes made to a Page's link"),), answer=status.cmd_history
        ),
        Subcommand("help", (("help", "This message"),), answer=_help),
    )
}


def help_message() -> dict[str, Any]:
    lines = [f"`{COMMAND} {usage}` — {text}" for sub in SUBCOMMANDS.values() for usage, text in sub.usage]
    text = "*fblink* links your Facebook Pages to Vonage and reminds you before the links expire.\n" + "\n".join(lines)
    return blocks.message("fblink commands", [blocks.section(text)])


HELP_MESSAGE = help_message()


def subcommand_of(parsed: Parsed) -> Subcommand:
    """Unknown subcommands get the help."""
    return SUBCOMMANDS.get(parsed.name) or SUBCOMMANDS["help"]


def unknown_message(name: str) -> dict[str, Any]:
    """Say which word was not understood, then the help."""
    said = f":thinking_face: I don't know `{blocks.escape(name[:40])}`. These are the commands:"
    return {**HELP_MESSAGE, "text": said, "blocks": [blocks.section(said), *HELP_MESSAGE["blocks"]]}


def metric_label(fields: Mapping[str, Any]) -> str:
    """A bounded label for metrics: the subcommand's name, or help."""
    return subcommand_of(parse(str(fields.get("text") or ""))).name


async def handle_command(services: Services, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ack body of one `/fblink` request (``{}`` for an empty ack); slow work is spawned."""
    parsed = parse(str(fields.get("text") or ""))
    sub = subcommand_of(parsed)
    if sub.name == "help":
        if parsed.name != "help":
            return unknown_message(parsed.name)
        return HELP_MESSAGE  # static: no request object, no database
    user_id = str(fields.get("user_id") or "")
    req = Req(
        services=services,
        team_id=str(fields.get("team_id") or ""),
        user_id=user_id,
        channel_id=fields.get("channel_id") or None,
        respond=url_responder(services, fields.get("response_url"), str(fields.get("team_id") or ""), user_id),
        trigger_id=fields.get("trigger_id") or None,
        args=parsed.args,
        response_url=fields.get("response_url") or None,
        answering_ack=True,
    )
    if sub.admin and not await req.is_admin():
        return blocks.notice(await admin_only_text(services, req.team_id))
    if sub.needs_login and await services.store.get_login(req.team_id, user_id) is None:
        return await login_prompt(req, text="You are not logged in to Facebook yet. Log in first, then run it again.")
    if sub.open_modal is not None and sub.opens_modal(parsed.args):
        req.answering_ack = False  # the modal is the answer; what the task says is a message of its own
        services.spawn(_after_ack(req, sub, sub.open_modal))
        return {}  # the modal is the answer
    if sub.answer is not None:
        try:
            return await sub.answer(req)
        except Exception as exc:
            return blocks.notice(user_error_text(exc, what=f"{COMMAND} {sub.name}"))
    assert sub.run_after is not None
    req.replaces = bool(fields.get("response_url"))  # the answer takes the "working" line's place
    req.answering_ack = False
    services.spawn(_after_ack(req, sub, sub.run_after))
    return blocks.notice(sub.working)


async def _after_ack(req: Req, sub: Subcommand, run: Any) -> None:
    trigger = req.trigger_id or ""
    if trigger and not await req.store.first_time(f"cmd:{trigger}", now=req.now):
        log.info("duplicate delivery of %s %s ignored", COMMAND, sub.name)
        return
    try:
        await run(req)
    except Exception as exc:
        await req.say(blocks.notice(user_error_text(exc, what=f"{COMMAND} {sub.name}")))


async def command_listener(ack: AsyncAck, body: dict[str, Any], services: Services) -> None:
    """Socket Mode (and any request Bolt routes): the same dispatch as the HTTP fast path."""
    await ack(**await handle_command(services, body))


async def rerun_listener(ack: AsyncAck, body: Body, services: Services) -> None:
    """A "Did you mean" button: run the command it names as the person who clicked, with every
    check a typed command gets (the button's text is never trusted more than typed text)."""
    await ack()
    try:
        text = str(json.loads(body["actions"][0]["value"])["t"])[:500]
    except (ValueError, KeyError, IndexError, TypeError):
        return
    fields = {
        "text": text,
        "team_id": (body.get("team") or {}).get("id", ""),
        "user_id": (body.get("user") or {}).get("id", ""),
        "channel_id": (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id"),
        "response_url": body.get("response_url"),
        "trigger_id": body.get("trigger_id"),
    }
    answer = await handle_command(services, fields)
    if answer:  # replaces the "Did you mean" message: one message per command
        respond = url_responder(services, fields["response_url"], str(fields["team_id"]), str(fields["user_id"]))
        await respond(**answer, replace_original=True)


def register(app: AsyncApp) -> None:
    app.command(COMMAND)(command_listener)
    app.action(re.compile(rf"^{RERUN}_\d+$"))(rerun_listener)
