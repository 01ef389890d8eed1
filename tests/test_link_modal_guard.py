"""Issue 9, item 15: the link modal never opens with an empty Page select (Slack rejects it)."""

from __future__ import annotations

from tests.flows import log_in, text_of


def test_no_linkable_page_gets_a_reason_not_an_empty_modal(bot, graph):
    log_in(bot, graph, pages=[{"id": "501", "name": "Read Only Fans", "tasks": ["ANALYZE"]}])
    assert bot.command("link").status_code == 200
    answer = bot.slack.wait_response("None of your Facebook Pages can be linked")
    assert "MESSAGING or MANAGE" in text_of(answer)
    assert not [v for v in bot.slack.views if v["method"] == "views.open"]


def test_no_pages_at_all_says_so(bot, graph):
    log_in(bot, graph, pages=[])
    bot.command("link")
    bot.slack.wait_response("Facebook lists no Pages for your login")
    assert not [v for v in bot.slack.views if v["method"] == "views.open"]


def test_a_linkable_page_opens_the_modal_with_options(bot, graph):
    log_in(bot, graph, pages=[{"id": "502", "name": "Acme", "tasks": ["MANAGE"]}])
    bot.command("link")
    (opened,) = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.open"])
    page_block = next(b for b in opened["view"]["blocks"] if b.get("block_id") == "page")
    assert [o["value"] for o in page_block["element"]["options"]] == ["502"]
