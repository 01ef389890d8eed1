"""`/fblink keys add | list | remove`: Vonage API keys beyond the default (admins only).

The admin rule is declared on the subcommand (handlers.commands) and, for the modal and its
button, enforced by :func:`handlers.common.admin_only`. In distributed mode there is no key from
the environment: the installer is asked for the workspace's first key right after the install
(:func:`welcome_installer`), and that first key is the workspace's default.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.oauth.installation_store import Installation

from bot import blocks
from bot.services import Services
from bot.vonage import Credentials, VonageAuthError
from handlers.common import Body, Req, ack_errors, admin_only, admin_only_text, dm, first_submission, user_error_text

KEY_RE = re.compile(r"[A-Za-z0-9]{4,40}")
CALLBACK_ID = "keys_add_modal"
USAGE = "Usage: `/fblink keys add | list | remove <api-key>`."
CHECK_IN_ACK = 2.0  # seconds of Vonage check inside the modal's ack (Slack waits 3)
OPEN_ACTION = "keys_add_open"  # the button in the installer's welcome DM


def opens_modal(args: tuple[str, ...]) -> bool:
    return args[:1] == ("add",)


async def cmd_keys(req: Req) -> dict[str, Any]:
    services = req.services
    sub = req.args[0].lower() if req.args else "list"
    if sub == "remove":
        if len(req.args) != 2:
            return blocks.notice("Usage: `/fblink keys remove <api-key>`.")
        key = req.args[1]
        if not services.settings.distributed and key == services.settings.vonage_api_key:
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
        return blocks.notice("*Vonage API keys*\n" + "\n".join(await key_rows(req)))
    return blocks.notice(f":thinking_face: I don't know `keys {blocks.escape(sub[:40])}`.\n{USAGE}")


async def key_rows(req: Req) -> list[str]:
    """One line per key: the environment's default first (one workspace), or the workspace's first added."""
    env_key = None if req.services.settings.distributed else req.services.settings.vonage_api_key
    rows = [f"`{blocks.escape(env_key)}` (default, from the environment)"] if env_key else []
    default = None if env_key else await req.store.default_key(req.team_id)
    for k in await req.store.list_keys(req.team_id):
        if k["api_key"] == env_key:
            continue
        mark = " (default)" if k["api_key"] == default else ""
        rows.append(
            f"`{blocks.escape(k['api_key'])}`{mark} added by <@{k['added_by']}> {blocks.slack_date(k['added_at'])}"
        )
    if not rows:
        rows.append("None yet. Add this workspace's first key with `/fblink keys add`: it becomes the default.")
    return rows


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


async def welcome_installer(services: Services, installation: Installation) -> None:
    """Right after an install: record the installer as the workspace's first fblink admin and ask
    them, in a DM, for the workspace's Vonage key (the button opens the add-key modal)."""
    team_id, user_id = installation.team_id, installation.user_id
    if not team_id or not user_id:  # an org-wide install: each workspace's Slack admins add their keys
        return
    await services.store.add_team_admin(team_id, user_id, by="install", now=services.now())
    services.forget_role(team_id, user_id)
    if await services.store.default_key(team_id) is not None:
        return  # a reinstall: the workspace has its keys already
    text = (
        ":wave: fblink is installed. Add this workspace's Vonage API key so people can link their Pages "
        "(it becomes the default key; more can be added later with `/fblink keys add`)."
    )
    button = blocks.button("Add a Vonage key", OPEN_ACTION, "add", style="primary")
    await dm(services, team_id, user_id, blocks.message(text, [blocks.section(text), blocks.actions(button)]))


async def open_from_button(ack: AsyncAck, body: Body, services: Services) -> None:
    """The welcome DM's button: the add-key modal for an admin, the refusal for anyone else."""
    await ack()
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    if await services.is_admin(team_id, user_id):
        await (await services.slack_for(team_id)).views_open(trigger_id=body["trigger_id"], view=add_key_view())
    else:
        await dm(services, team_id, user_id, blocks.notice(await admin_only_text(services, team_id)))


def register(app: AsyncApp) -> None:
    app.view(CALLBACK_ID)(admin_only(submitted))
    app.action(OPEN_ACTION)(open_from_button)
