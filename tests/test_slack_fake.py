"""The fake Slack answers as Slack documents it, and keeps the conversation a demo renders.

These pin the fake's wire behaviour (shapes, limits, triggers, hashes, response_url semantics), so a
test that passes against it exercises fblink against what Slack really does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.fakes.slack import FakeSlack

TOKEN = "xoxb-test-token"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    f = FakeSlack(bot_token=TOKEN).start()
    yield f
    f.stop()


def api(fake: FakeSlack, method: str, **params: Any) -> dict[str, Any]:
    r = httpx.post(f"{fake.url}/api/{method}", json=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title: str = "Link a Page", blocks: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": [section("x")] * blocks, **extra}


# -- chat ------------------------------------------------------------------------------------


def test_post_message_answers_with_slacks_message_object(fake):
    v0 = fake.version
    out = api(fake, "chat.postMessage", channel="C1", text="hi", blocks=[section("hi")])
    assert out["ok"] and out["channel"] == "C1"
    msg = out["message"]
    assert {"type", "subtype", "text", "user", "bot_id", "app_id", "ts", "blocks", "team", "bot_profile"} <= set(msg)
    assert msg["ts"] == out["ts"] and msg["bot_profile"]["app_id"] == msg["app_id"]
    assert [m.text for m in fake.history("C1")] == ["hi"] and fake.version > v0


def test_post_to_a_user_lands_in_their_dm(fake):
    out = api(fake, "chat.postMessage", channel="U7", text="psst")
    assert out["channel"] == "D7" and fake.history("D7")[0].text == "psst"


def test_update_replaces_in_place_and_delete_removes(fake):
    ts = api(fake, "chat.postMessage", channel="C1", text="one")["ts"]
    api(fake, "chat.postMessage", channel="C1", text="two")
    out = api(fake, "chat.update", channel="C1", ts=ts, text="one, edited")
    assert out["ok"] and out["ts"] == ts and out["message"]["edited"]
    assert [m.text for m in fake.history("C1")] == ["one, edited", "two"]
    assert api(fake, "chat.delete", channel="C1", ts=ts) == {"ok": True, "channel": "C1", "ts": ts}
    assert [m.text for m in fake.history("C1")] == ["two"]
    assert api(fake, "chat.update", channel="C1", ts=ts, text="x")["error"] == "message_not_found"


def test_ephemeral_is_seen_by_one_user_and_cannot_be_updated(fake):
    out = api(fake, "chat.postEphemeral", channel="C1", user="U1", text="only you")
    assert out["ok"] and set(out) == {"ok", "message_ts"}
    assert [m.text for m in fake.history("C1", "U1")] == ["only you"]
    assert fake.history("C1", "U2") == [] and fake.history("C1") == []
    assert api(fake, "chat.update", channel="C1", ts=out["message_ts"], text="x")["error"] == "message_not_found"


@pytest.mark.parametrize(
    "blocks,pointer",
    [
        ([section("x")] * 51, "/blocks"),
        ([section("x" * 3001)], "/blocks/0/text/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Go"},
                            "action_id": "a",
                            "value": "v" * 2001,
                        }
                    ],
                }
            ],
            "/blocks/0/elements/0/value",
        ),
        (
            [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "x"},
                    "accessory": {
                        "type": "static_select",
                        "action_id": "s",
                        "options": [
                            {"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(101)
                        ],
                    },
                }
            ],
            "/blocks/0/accessory/options",
        ),
    ],
)
def test_over_limit_blocks_are_invalid_blocks(fake, blocks, pointer):
    out = api(fake, "chat.postMessage", channel="C1", text="t", blocks=blocks)
    assert out["ok"] is False and out["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}]" in m for m in out["response_metadata"]["messages"]), out
    assert fake.history("C1") == []


def test_limits_at_the_edge_are_accepted(fake):
    assert api(fake, "chat.postMessage", channel="C1", text="t", blocks=[section("x" * 3000)] * 50)["ok"]


def test_errors_auth_and_rate_limit(fake):
    r = httpx.post(f"{fake.url}/api/chat.postMessage", json={"channel": "C1", "text": "x"}, timeout=5)
    assert r.json()["error"] == "not_authed"
    r = httpx.post(f"{fake.url}/api/chat.postMessage", data={"channel": "C1", "text": "x", "token": "xoxb-bad"})
    assert r.json() == {"ok": False, "error": "invalid_auth", "response_metadata": {"messages": []}}
    assert api(fake, "chat.postMessage", channel="C1")["error"] == "no_text"
    fake.rate_limit = 1.0
    assert api(fake, "chat.postMessage", channel="C2", text="1")["ok"]
    r = httpx.post(
        f"{fake.url}/api/chat.postMessage",
        json={"channel": "C2", "text": "2"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and r.json()["error"] == "ratelimited"
    assert api(fake, "chat.postMessage", channel="C3", text="other channel")["ok"]


# -- views -----------------------------------------------------------------------------------


def test_views_open_needs_a_fresh_single_use_trigger(fake):
    assert api(fake, "views.open", trigger_id="never-issued", view=modal())["error"] == "invalid_trigger_id"
    fake.issue_trigger("t1", "U1")
    out = api(fake, "views.open", trigger_id="t1", view=modal(external_id="ext-1", private_metadata="{}"))
    view = out["view"]
    for key in (
        "id",
        "team_id",
        "type",
        "blocks",
        "private_metadata",
        "callback_id",
        "state",
        "hash",
        "title",
        "close",
        "submit",
        "clear_on_close",
        "notify_on_close",
        "root_view_id",
        "previous_view_id",
        "app_id",
        "external_id",
        "app_installed_team_id",
        "bot_id",
    ):
        assert key in view, key
    assert view["root_view_id"] == view["id"] and view["previous_view_id"] is None
    assert fake.modal_of("U1")["id"] == view["id"]
    assert api(fake, "views.open", trigger_id="t1", view=modal())["error"] == "invalid_trigger_id"  # used once
    fake.state.trigger_ttl = 0.05
    fake.issue_trigger("t2", "U1")
    time.sleep(0.1)
    assert api(fake, "views.open", trigger_id="t2", view=modal())["error"] == "expired_trigger_id"


@pytest.mark.parametrize(
    "view",
    [
        modal(title="x" * 25),
        modal(blocks=101),
        modal(private_metadata="m" * 3001),
        {"type": "modal", "blocks": []},
        {"type": "popup", "blocks": []},
    ],
)
def test_invalid_views_are_invalid_arguments(fake, view):
    fake.issue_trigger("t", "U1")
    out = api(fake, "views.open", trigger_id="t", view=view)
    assert out["error"] == "invalid_arguments" and out["response_metadata"]["messages"]
    assert fake.modal_of("U1") is None


def test_views_update_checks_the_hash_and_finds_by_external_id(fake):
    fake.issue_trigger("t", "U1")
    view = api(fake, "views.open", trigger_id="t", view=modal(external_id="ext-9"))["view"]
    assert api(fake, "views.update", view_id=view["id"], hash="stale", view=modal("B"))["error"] == "hash_conflict"
    new = api(fake, "views.update", view_id=view["id"], hash=view["hash"], view=modal("B", external_id="ext-9"))["view"]
    assert new["id"] == view["id"] and new["hash"] != view["hash"] and new["title"]["text"] == "B"
    by_ext = api(fake, "views.update", external_id="ext-9", view=modal("C", external_id="ext-9"))["view"]
    assert by_ext["id"] == view["id"] and fake.modal_of("U1")["title"]["text"] == "C"
    assert api(fake, "views.update", view_id="VNOPE", view=modal())["error"] == "not_found"


def test_views_push_stacks_up_to_three(fake):
    ids = []
    for n in range(3):
        fake.issue_trigger(f"t{n}", "U1")
        ids.append(api(fake, "views.push" if n else "views.open", trigger_id=f"t{n}", view=modal(str(n)))["view"])
    assert ids[2]["previous_view_id"] == ids[1]["id"] and ids[2]["root_view_id"] == ids[0]["id"]
    assert fake.modal_of("U1")["title"]["text"] == "2"
    fake.issue_trigger("t9", "U1")
    assert api(fake, "views.push", trigger_id="t9", view=modal())["error"] == "push_limit_reached"


def test_views_publish_keeps_one_home_per_user(fake):
    home = {"type": "home", "blocks": [section("hello")]}
    first = api(fake, "views.publish", user_id="U1", view=home)["view"]
    second = api(fake, "views.publish", user_id="U1", view=home, hash=first["hash"])["view"]
    assert second["id"] == first["id"] and fake.home_of("U1")["hash"] == second["hash"]
    assert api(fake, "views.publish", user_id="U1", view=home, hash=first["hash"])["error"] == "hash_conflict"
    assert fake.home_of("U2") is None
    assert api(fake, "views.publish", user_id="U2", view=modal())["error"] == "invalid_arguments"


# -- response_url and acks -----------------------------------------------------------------------


def respond(fake: FakeSlack, url: str, **body: Any) -> httpx.Response:
    return httpx.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=5)


def test_response_url_ephemeral_in_channel_replace_and_delete(fake):
    url = fake.response_url("cmd", "C1", "U1")
    assert respond(fake, url, text="just you").status_code == 200
    assert [m.text for m in fake.history("C1", "U1")] == ["just you"] and fake.history("C1", "U2") == []
    respond(fake, url, text="everyone", response_type="in_channel")
    assert [m.text for m in fake.history("C1", "U2")] == ["everyone"]
    respond(fake, url, text="everyone, replaced", replace_original=True, response_type="in_channel")
    assert [m.text for m in fake.history("C1", "U2")] == ["everyone, replaced"]
    respond(fake, url, delete_original=True)
    assert [m.text for m in fake.history("C1", "U1")] == ["just you"]
    respond(fake, url, text="fifth use")
    r = respond(fake, url, text="sixth use")
    assert (r.status_code, r.text) == (404, "used_url") and len(fake.responses) == 5


def test_response_url_of_a_click_acts_on_the_clicked_message(fake):
    ts = api(fake, "chat.postMessage", channel="C1", text="Pick one")["ts"]
    url = fake.response_url("click", "C1", "U1", message_ts=ts)
    respond(fake, url, text="Picked", replace_original=True)
    assert [(m.ts, m.text) for m in fake.history("C1")] == [(ts, "Picked")]
    respond(fake, fake.response_url("click2", "C1", "U1", message_ts=ts), delete_original=True)
    assert fake.history("C1") == []


def test_record_ack_shows_the_command_answer(fake):
    fake.record_user_message("C1", "U1", "/fblink status")
    assert fake.record_ack("C1", "U1", {"text": "2 links"}).ephemeral_to == "U1"
    assert fake.record_ack("C1", "U1", {"response_type": "in_channel", "text": "shared"}).ephemeral_to is None
    assert fake.record_ack("C1", "U1", None) is None  # an empty ack (a modal opened) shows nothing
    assert [m.text for m in fake.history("C1", "U2")] == ["/fblink status", "shared"]
    assert len(fake.history("C1", "U1")) == 3


def test_block_kit_is_checked_with_slack_sdks_models():
    """Beyond the hand-written limits, every block goes through slack_sdk's validated models."""
    from bot import blocks
    from bot.fakes.slack_limits import check_blocks, check_view

    assert check_blocks([blocks.section("ok", accessory=blocks.button("Re-link", "a", "1"))], 50) == []
    long_label = {"type": "button", "text": {"type": "plain_text", "text": "y" * 80}, "action_id": "a"}
    assert check_blocks([{"type": "actions", "elements": [long_label]}], 50)
    empty_menu = {"type": "static_select", "action_id": "p", "options": []}
    assert check_blocks(
        [{"type": "input", "block_id": "p", "label": {"type": "plain_text", "text": "P"}, "element": empty_menu}], 100
    )
    assert check_view(blocks.modal("c", "Link a Page", [blocks.section("x")], submit="Link")) == []


def test_conversations_history_pages_newest_first_with_metadata_and_slacks_errors(fake):
    meta = {"event_type": "fblink_reminder", "event_payload": {"reminder_ids": "7,8"}}
    first = api(fake, "chat.postMessage", channel="CHIST", text="reminder", metadata=meta)
    assert first["ok"] and "metadata" not in first["message"]
    for i in range(4):
        api(fake, "chat.postMessage", channel="CHIST", text=f"later {i}")
    api(fake, "chat.postEphemeral", channel="CHIST", user="U1", text="only U1")  # never in history
    plain = api(fake, "conversations.history", channel="CHIST", limit=10)
    assert [m["text"] for m in plain["messages"]] == ["later 3", "later 2", "later 1", "later 0", "reminder"]
    assert all("metadata" not in m for m in plain["messages"]) and plain["has_more"] is False
    assert plain["response_metadata"]["next_cursor"] == ""

    seen, cursor = [], ""
    while True:  # two at a time, by cursor, with every message's metadata
        page = api(fake, "conversations.history", channel="CHIST", limit=2, cursor=cursor, include_all_metadata=True)
        seen += page["messages"]
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
    assert len(seen) == 5 and seen[-1]["ts"] == first["ts"] and seen[-1]["metadata"] == meta
    assert seen[-1]["bot_id"] == "B0BOT" and seen[-1]["subtype"] == "bot_message"
    after = api(fake, "conversations.history", channel="CHIST", oldest=first["ts"])  # exclusive unless inclusive
    assert first["ts"] not in [m["ts"] for m in after["messages"]] and len(after["messages"]) == 4
    both = api(fake, "conversations.history", channel="CHIST", oldest=first["ts"], inclusive=True)
    assert len(both["messages"]) == 5

    assert api(fake, "conversations.history", channel="CNOWHERE")["error"] == "channel_not_found"
    fake.history_errors["CHIST"] = "not_in_channel"
    assert api(fake, "conversations.history", channel="CHIST") == {
        "ok": False,
        "error": "not_in_channel",
        "response_metadata": {"messages": []},
    }
    fake.history_errors["CHIST"] = "ratelimited"
    r = httpx.post(
        f"{fake.url}/api/conversations.history", json={"channel": "CHIST"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 429 and r.headers["Retry-After"] == "30" and r.json()["error"] == "ratelimited"
    bad = api(
        fake, "chat.postMessage", channel="CHIST", text="x", metadata={"event_type": "bad type!", "event_payload": {}}
    )
    assert bad["error"] == "invalid_metadata_schema"
