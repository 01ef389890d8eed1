"""`/fblink pages` end to end: business Pages name their portfolio, token-less Pages cannot be linked."""

from __future__ import annotations

from bot.fakes.graph_data import hostile_pages
from tests.flows import buttons, log_in, text_of

MESSAGING = ["MANAGE", "MESSAGING"]


def test_pages_show_business_and_no_token_reason(bot, graph):  # type: ignore[no-untyped-def]
    personal = hostile_pages(2, prefix="1")
    log_in(
        bot,
        graph,
        pages=personal,
        businesses=[
            {
                "id": "77",
                "name": "Acme & Sons <Group>",
                "owned_pages": [
                    {"id": "31", "name": "Aardvark seen, no task", "category": "Retail", "tasks": []},
                    {"id": "32", "name": "Aardvark messaging", "category": "Retail", "tasks": MESSAGING},
                ],
                "client_pages": [{**personal[0], "tasks": MESSAGING}],
            }
        ],
    )
    bot.command("pages")
    resp = bot.slack.wait_response("Aardvark")
    blob = text_of(resp)

    assert "(4)" in blob
    assert "Acme &amp; Sons &lt;Group&gt;" in blob and "<Group>" not in blob
    assert "cannot be linked" in blob and "no task on this Page" in blob
    page_ids = [b["value"] for b in buttons(resp) if b["action_id"] in ("page_link", "page_link_app")]
    assert "31" not in page_ids and "32" in page_ids and personal[0]["id"] in page_ids
    stored = {p.page_id: p for p in bot.store.get_pages("T0001", "U1")}
    assert not stored["31"].can_link and stored["31"].no_token_reason
    assert stored["32"].can_link and stored["32"].business_name == "Acme & Sons <Group>"
    assert stored[personal[0]["id"]].business_name == "Acme & Sons <Group>"  # seen through both
    assert stored[personal[0]["id"]].token == graph.page_token("FB1", personal[0]["id"])
    assert stored[personal[1]["id"]].business_name is None


def test_pages_beyond_the_first_graph_page_are_listed_not_a_dead_login(bot, graph):  # type: ignore[no-untyped-def]
    log_in(bot, graph, pages=hostile_pages(101))
    bot.command("pages")
    resp = bot.slack.wait_response("(101)")
    assert "expired" not in text_of(resp)
    assert len(bot.store.get_pages("T0001", "U1")) == 101
