"""Issue 17, items 5 and 6: one key policy for every path (handlers/key_policy.py).

fblink admins link with any configured key; everyone else with the default key only. Each
path is tried the way an attacker would: the command with a key, a crafted Replace button, a
crafted key-select payload for the link modal, and a modal submission naming the key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in, text_of

DAY = 86400
PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]
APP1 = "aaaaaaaa-0000-4000-8000-000000000001"
SECRET_APP = "bbbbbbbb-0000-4000-8000-00000000000b"
OTHER = "second99"


@pytest.fixture
def world(bot, graph, vonage):  # type: ignore[no-untyped-def]
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    bot.store.add_key(TEAM, OTHER, "s2-secret", by="UADMIN", now=START)
    vonage.add_key(OTHER, "s2-secret")
    vonage.add_application(OTHER, SECRET_APP, "Agency Secret Bot")
    for user in ("U1", "UADMIN"):
        log_in(bot, graph, user=user, fb_user=f"FB-{user}", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.slack.messages.clear()
    return bot


def _key_select(user: str, key: str, view_id: str) -> dict[str, Any]:
    """The block_actions Slack sends when the link modal's key select changes (crafted: any key)."""
    option = {"text": {"type": "plain_text", "text": key}, "value": key}
    return {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "trigger_id": f"t.{view_id}",
        "container": {"type": "view", "view_id": view_id},
        "view": {
            "id": view_id,
            "type": "modal",
            "callback_id": "link_modal",
            "hash": "h1",
            "private_metadata": "{}",
            "state": {"values": {"key": {"link_modal_key": {"type": "static_select", "selected_option": option}}}},
        },
        "actions": [
            {
                "action_id": "link_modal_key",
                "block_id": "key",
                "type": "static_select",
                "selected_option": option,
                "action_ts": "1.0",
            }
        ],
    }


def _reloaded(bot, view_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    (update,) = bot.slack.wait_for(
        lambda: [v for v in bot.slack.views if v["method"] == "views.update" and v["view_id"] == view_id]
    )
    return update["view"]


def _block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def test_the_key_select_reload_shows_a_non_admin_no_admin_only_keys_applications(world):
    world.slack.views.clear()
    assert world.interact(_key_select("U1", OTHER, "VM1")).status_code == 200
    view = _reloaded(world, "VM1")
    assert "Agency Secret Bot" not in text_of(view) and OTHER not in text_of(view)
    assert [o["value"] for o in _block(view, "app")["element"]["options"]] == [APP1]
    key = _block(view, "key")["element"]
    assert [o["value"] for o in key["options"]] == [VONAGE_KEY] and key["initial_option"]["value"] == VONAGE_KEY
    # an admin's reload of the same key shows its applications
    world.interact(_key_select("UADMIN", OTHER, "VM2"))
    view = _reloaded(world, "VM2")
    assert [o["value"] for o in _block(view, "app")["element"]["options"]] == [SECRET_APP]


def test_the_command_refuses_a_non_admin_an_added_key(world, vonage):
    world.command(f"link 101 {OTHER}", user="U1")
    msg = text_of(world.slack.wait_response("only fblink admins can use"))
    assert VONAGE_KEY not in msg  # no key disclosed
    assert "101" not in vonage.accounts.get(OTHER, {}) and world.store.get_link(TEAM, "101") is None
    world.command(f"link 101 {OTHER}", user="UADMIN")
    world.slack.wait_response("Linked *Acme Coffee*")
    assert "101" in vonage.accounts[OTHER] and world.store.get_link(TEAM, "101").api_key == OTHER


def test_a_crafted_replace_button_cannot_use_an_added_key(world, vonage):
    value = json.dumps({"p": "101", "k": OTHER, "a": SECRET_APP, "c": ""})
    world.click("link_replace", value, user="U1")
    world.slack.wait_response("only fblink admins can use")
    assert "101" not in vonage.accounts.get(OTHER, {})
    assert world.store.get_link(TEAM, "101") is None
    assert not vonage.calls("POST", "/beta/chatapp-accounts/messenger")


def test_the_modal_refuses_a_non_admin_an_added_key(world, vonage):
    world.command("pages", user="U1")
    world.slack.wait_response("Acme Coffee")  # the Pages the modal checks against are fetched
    values = {
        "page": {"page": {"type": "static_select", "selected_option": {"value": "101"}}},
        "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": OTHER}}},
    }
    r = world.submit("link_modal", values, user="U1")
    assert r.status_code == 200 and r.json()["errors"] == {"key": "Choose a configured Vonage API key."}
    assert world.store.get_link(TEAM, "101") is None and "101" not in vonage.accounts.get(OTHER, {})
