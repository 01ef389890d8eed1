"""Issue 21 item 17: a person with 150 Pages can pick any of them in the link modal (a type-ahead
select, answered through Slack's block_suggestion), and the same for applications."""

from __future__ import annotations

import json

from bot.fakes import slack_payloads as sp
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in

DAY = 86400
PAGES = [{"id": str(1000 + n), "name": f"Shop {n}", "category": "Shop", "tasks": ["MESSAGING"]} for n in range(1, 151)]


def element(view: dict, block_id: str) -> dict:
    return next(b["element"] for b in view["blocks"] if b.get("block_id") == block_id)


def suggestion(bot, view: dict, action_id: str, block_id: str, typed: str, user: str = "U1") -> list[dict]:
    """What Slack sends as the person types in an external select, and fblink's options back."""
    payload = {
        "type": "block_suggestion",
        "user": sp.user_object(user, "ada", TEAM),
        "container": {"type": "view", "view_id": view["id"]},
        "api_app_id": sp.APP_ID,
        "token": sp.TOKEN,
        "action_id": action_id,
        "block_id": block_id,
        "value": typed,
        "team": sp.team_object(TEAM, "payload-inc", None, None),
        "view": sp.view_object(view_id=view["id"], callback_id="link_modal", blocks=view["blocks"]),
    }
    r = bot.interact(payload)
    assert r.status_code == 200, r.text
    return r.json()["options"]


def test_150_pages_are_all_reachable_by_typing(bot, graph, vonage):
    for n in range(1, 131):  # 130 applications too
        vonage.add_application(VONAGE_KEY, f"aaaaaaaa-0000-4000-8000-{n:012d}", f"Bot {n}")
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.slack.wait_message("Connected to Facebook")
    bot.command("link")
    update = bot.slack.wait_for(lambda: next((v for v in bot.slack.views if v["method"] == "views.update"), None))
    view = {**update["view"], "id": update["view_id"]}
    page_select = element(view, "page")
    assert page_select["type"] == "external_select"  # a static select would silently keep 100 of 150
    assert element(view, "app")["type"] == "external_select"

    options = suggestion(bot, view, "page", "page", "")
    assert len(options) == 100  # Slack's limit per answer: typing narrows it
    options = suggestion(bot, view, "page", "page", "shop 15")
    labels = [o["text"]["text"] for o in options]
    assert labels[:2] == ["Shop 15 (1015)", "Shop 150 (1150)"]
    assert all(label.startswith("Shop 15") for label in labels)

    apps = suggestion(bot, view, "app", "app", "bot 12")
    assert "Bot 125 (aaaaaaaa)" in [o["text"]["text"] for o in apps]

    # the 150th Page, picked from the type-ahead, links like any other
    chosen = next(o for o in options if o["value"] == "1150")
    bot.submit(
        "link_modal",
        {
            "page": {"page": {"type": "external_select", "selected_option": chosen}},
            "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": VONAGE_KEY}}},
        },
        private_metadata=json.dumps({"channel": "C1"}),
    )
    bot.slack.wait_message("Linked *Shop 150*")
    assert bot.store.get_link(TEAM, "1150") is not None
    assert "1150" in vonage.accounts[VONAGE_KEY]


def test_the_type_ahead_offers_only_the_persons_own_pages(bot, graph):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.command("link")
    update = bot.slack.wait_for(lambda: next((v for v in bot.slack.views if v["method"] == "views.update"), None))
    view = {**update["view"], "id": update["view_id"]}
    assert suggestion(bot, view, "page", "page", "shop", user="U2") == []  # someone else's list is not shown
