"""`/fblink keys add | list | remove`: Vonage API keys beyond the default (admins only)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot import blocks
from bot.vonage import Credentials
from handlers.common import Req, ack_errors, dm, first_submission, services_of, user_error_text

KEY_RE = re.compile(r"[A-Za-z0-9]{4,40}")
ADMIN_ONLY = ":lock: Only fblink admins (FBLINK_ADMINS) can manage Vonage API keys."


async def cmd_keys_quick(req: Req) -> dict[str, Any]:
    services = req.services
    if not services.is_admin(req.user_id):
        return blocks.notice(ADMIN_ONLY)
    sub = req.args[0].lower() if req.args else "list"
    if sub == "add":
        return {"_defer": True}  # the modal opens after the ack
    if sub == "remove":
        if len(req.args) != 2:
            return blocks.notice("Usage: `/fblink keys remove <api-key>`.")
        key = req.args[1]
        if key == services.settings.vonage_api_key:
            return blocks.notice("That is the default key from VONAGE_API_KEY; change it in the configuration instead.")
        in_use = [lk.page_name for lk in req.store.list_links(req.team_id) if lk.api_key == key and lk.status == "active"]
        if in_use:
            return blocks.notice(
                f"Key `{blocks.escape(key)}` still has linked Pages ({', '.join(blocks.escape(n) for n in in_use[:10])}). "
                "Unlink them first."
            )
        removed = req.store.remove_key(req.team_id, key)
        req.store.audit(req.team_id, "key_remove", now=req.now, user_id=req.user_id, detail=f"key {key}",
                        result="ok" if removed else "unknown key")
        return blocks.notice(f":wastebasket: Removed key `{blocks.escape(key)}`." if removed
                             else f"No added key `{blocks.escape(key)}`.")
    if sub == "list":
        rows = [f"`{blocks.escape(services.settings.vonage_api_key)}` (default, from the environment)"]
        rows += [
            f"`{blocks.escape(k['api_key'])}` added by <@{k['added_by']}> {blocks.slack_date(k['added_at'])}"
            for k in req.store.list_keys(req.team_id) if k["api_key"] != services.settings.vonage_api_key
        ]
        return blocks.notice("*Vonage API keys*\n" + "\n".join(rows))
    return blocks.notice("Usage: `/fblink keys add | list | remove <api-key>`.")


def add_key_view() -> dict[str, Any]:
    def text_input(block_id: str, label: str, hint: str) -> dict[str, Any]:
        return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label},
                "hint": {"type": "plain_text", "text": hint},
                "element": {"type": "plain_text_input", "action_id": block_id, "max_length": 100}}

    return {
        "type": "modal", "callback_id": "keys_add_modal",
        "title": {"type": "plain_text", "text": "Add a Vonage key"},
        "submit": {"type": "plain_text", "text": "Add"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            text_input("api_key", "API key", "From the Vonage dashboard's API settings"),
            text_input("api_secret", "API secret", "Stored encrypted; never shown again"),
        ],
    }


async def open_add_modal(req: Req) -> None:
    if not req.services.is_admin(req.user_id):
        return
    await req.services.slack.views_open(trigger_id=req.trigger_id, view=add_key_view())


def _field(values: dict[str, Any], name: str) -> str:
    return str((values.get(name, {}).get(name) or {}).get("value") or "").strip()


async def add_key_ack(ack, body, context):  # type: ignore[no-untyped-def]
    services = services_of(context)
    if not services.is_admin(body["user"]["id"]):
        await ack(response_action="errors", errors={"api_key": "Only fblink admins can add keys."})
        return
    values = body["view"].get("state", {}).get("values", {})
    errors = {}
    if not KEY_RE.fullmatch(_field(values, "api_key")):
        errors["api_key"] = "A Vonage API key is letters and digits, like a1b2c3d4."
    if not _field(values, "api_secret"):
        errors["api_secret"] = "Enter the key's secret."
    await ack_errors(ack, errors)


async def add_key_submit(body, context):  # type: ignore[no-untyped-def]
    """Check the pair with Vonage before storing it; answer by DM. The secret is never echoed."""
    services = services_of(context)
    team_id, user_id = body["team"]["id"], body["user"]["id"]
    values = body["view"].get("state", {}).get("values", {})
    api_key, secret = _field(values, "api_key"), _field(values, "api_secret")
    if not services.is_admin(user_id) or not KEY_RE.fullmatch(api_key) or not secret:
        return
    if not first_submission(services, body["view"]):
        return
    try:
        await services.vonage.list_applications(Credentials(api_key, secret))
    except Exception as exc:
        services.store.audit(team_id, "key_add", now=services.now(), user_id=user_id, detail=f"key {api_key}",
                             result=f"error: {type(exc).__name__}")
        await dm(services, user_id, blocks.notice(user_error_text(exc) + " The key was not added."))
        return
    services.store.add_key(team_id, api_key, secret, by=user_id, now=services.now())
    services.store.audit(team_id, "key_add", now=services.now(), user_id=user_id, detail=f"key {api_key}")
    await dm(services, user_id, blocks.notice(
        f":key: Added Vonage API key `{blocks.escape(api_key)}`. Use it with `/fblink link <page> {blocks.escape(api_key)}`."))


def register(app: AsyncApp) -> None:
    app.view("keys_add_modal")(ack=add_key_ack, lazy=[add_key_submit])
