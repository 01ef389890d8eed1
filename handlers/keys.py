"""`/fblink keys add | list | remove`: Vonage API keys beyond the default (admins only).

The admin rule is declared on the subcommand (handlers.commands) and, for the modal,
enforced by :func:`handlers.common.admin_only`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot import blocks
from bot.services import Services
from bot.vonage import Credentials, VonageAuthError
from handlers.common import Body, Req, ack_errors, admin_only, dm, first_submission, user_error_text

KEY_RE = re.compile(r"[A-Za-z0-9]{4,40}")
CALLBACK_ID = "keys_add_modal"
USAGE = "Usage: `/fblink keys add | list | remove <api-key>`."
CHECK_IN_ACK = 2.0  # seconds of Vonage check inside the modal's ack (Slack waits 3)


def opens_modal(args: tuple[str, ...]) -> bool:
    return args[:1] == ("add",)


async def cmd_keys(req: Req) -> dict[str, Any]:
    services = req.services
    sub = req.args[0].lower() if req.args else "list"
    if sub == "remove":
        if len(req.args) != 2:
            return blocks.notice("Usage: `/fblink keys remove <api-key>`.")
        key = req.args[1]
        if key == services.settings.vonage_api_key:
            return blocks.notice(
                "That is the default key, set where fblink is installed: whoever runs fblink changes it there."
            )
        in_use = [
            lk.page_name
            for lk in await req.store.list_links(req.team_id)
            if lk.api_key == key and lk.status == "active"
        ]
        if in_use:
            return blocks.notice(
                f"Key `{blocks.escape(key)}` still has linked Pages "
                f"({', '.join(blocks.escape(n) for n in in_use[:10])}). Unlink them first."
            )
        removed = await req.store.remove_key(req.team_id, key)
        await req.store.audit(
            req.team_id,
            "key_remove",
            now=req.now,
            user_id=req.user_id,
            detail=f"key {key}",
            result="ok" if removed else "unknown key",
        )
        return blocks.notice(
            f":wastebasket: Removed key `{blocks.escape(key)}`." if removed else f"No added key `{blocks.escape(key)}`."
        )
    if sub == "list":
        rows = [f"`{blocks.escape(services.settings.vonage_api_key)}` (default, from the environment)"]
        rows += [
            f"`{blocks.escape(k['api_key'])}` added by <@{k['added_by']}> {blocks.slack_date(k['added_at'])}"
            for k in await req.store.list_keys(req.team_id)
            if k["api_key"] != services.settings.vonage_api_key
        ]
        return blocks.notice("*Vonage API keys*\n" + "\n".join(rows))
    return blocks.notice(f":thinking_face: I don't know `keys {blocks.escape(sub[:40])}`.\n{USAGE}")


def add_key_view() -> dict[str, Any]:
    return blocks.modal(
        CALLBACK_ID,
        "Add a Vonage key",
        [
            blocks.text_input("api_key", "API key", hint="From the Vonage dashboard's API settings"),
            blocks.text_input("api_secret", "API secret", hint="Stored encrypted; never shown again"),
        ],
        submit="Add",
    )


async def open_add_modal(req: Req) -> None:
    await (await req.services.slack_for(req.team_id)).views_open(trigger_id=req.trigger_id, view=add_key_view())


def _field(values: dict[str, Any], name: str) -> str:
    return str((values.get(name, {}).get(name) or {}).get("value") or "").strip()


async def submitted(ack: AsyncAck, body: Body, services: Services) -> None:
    """Check the form and, within the ack's time, the pair with Vonage, so a wrong secret keeps the
    modal open with the error under "API secret". When Vonage is slow the modal closes and the check
    finishes after the ack, answered by DM. The secret is never echoed."""
    values = body["view"].get("state", {}).get("values", {})
    api_key, secret = _field(values, "api_key"), _field(values, "api_secret")
    errors = {}
    if not KEY_RE.fullmatch(api_key):
        errors["api_key"] = "A Vonage API key is letters and digits, like a1b2c3d4."
    if not secret:
        errors["api_secret"] = "Enter the key's secret."
    if not errors:
        creds = Credentials(api_key, secret)
        try:
            await asyncio.wait_for(services.vonage.list_applications(creds), timeout=CHECK_IN_ACK)
        except VonageAuthError:
            errors["api_secret"] = (
                "Vonage did not accept this key and secret. Copy both again from the Vonage dashboard "
                "(API settings), and check that the account is active."
            )
        except Exception:
            pass  # slow or unavailable: checked again after the ack
        else:
            await ack()
            if await first_submission(services, body):
                await store_key(services, body["team"]["id"], body["user"]["id"], creds)
            return
    await ack_errors(ack, errors)
    if errors or not await first_submission(services, body):
        return
    services.spawn(add_key(services, body["team"]["id"], body["user"]["id"], Credentials(api_key, secret)))


async def add_key(services: Services, team_id: str, user_id: str, creds: Credentials) -> None:
    try:
        await services.vonage.list_applications(creds)
    except Exception as exc:
        await services.store.audit(
            team_id,
            "key_add",
            now=services.now(),
            user_id=user_id,
            detail=f"key {creds.api_key}",
            result=f"error: {type(exc).__name__}",
        )
        await dm(services, team_id, user_id, blocks.notice(user_error_text(exc) + " The key was not added."))
        return
    await store_key(services, team_id, user_id, creds)


async def store_key(services: Services, team_id: str, user_id: str, creds: Credentials) -> None:
    """Vonage accepted the pair: keep it (encrypted) and say how to use it."""
    await services.store.add_key(team_id, creds.api_key, creds.api_secret, by=user_id, now=services.now())
    await services.store.audit(team_id, "key_add", now=services.now(), user_id=user_id, detail=f"key {creds.api_key}")
    key = blocks.escape(creds.api_key)
    await dm(
        services,
        team_id,
        user_id,
        blocks.notice(f":key: Added Vonage API key `{key}`. Use it with `/fblink link <page> {key}`."),
    )


def register(app: AsyncApp) -> None:
    app.view(CALLBACK_ID)(admin_only(submitted))
