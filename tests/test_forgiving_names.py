"""Issue 21 items 2, 3, 9 and 11: names matched the way people type them, "Did you mean" with
buttons, a plain `#channel` resolved through conversations.list, wrong arguments explained, and a
history that reads like one."""

from __future__ import annotations

import json

import pytest

from handlers.names import find, normalize
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, log_in, text_of

DAY = 86400
ACME = {"id": "101", "name": "Acme Coffee & Tea ☕", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}
ACME_BAKERY = {"id": "102", "name": "Acme Bakery", "category": "Bakery", "tasks": ["MESSAGING"]}
SHOP = {"id": "103", "name": "Торговый дом «Ромашка»", "category": "Retail", "tasks": ["MESSAGING"]}
CAFE = {"id": "104", "name": "Café Ünïcödé 🍰", "category": "Bakery", "tasks": ["MESSAGING"]}
PAGES = [ACME, ACME_BAKERY, SHOP, CAFE]
APP1 = "aaaaaaaa-0000-4000-8000-000000000001"
APP2 = "aaaaaaaa-0000-4000-8000-000000000002"


def test_normalize_ignores_case_accents_emoji_and_punctuation():
    assert normalize("Acme Coffee & Tea ☕") == "acme coffee tea"
    assert normalize("Café Ünïcödé 🍰") == "cafe unicode"
    assert normalize("Торговый ДОМ «Ромашка»") == normalize("торговый дом ромашка")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("acme coffee & tea", "101"),  # without the emoji
        ("ACME COFFEE", "101"),  # a unique prefix
        ("acme tea", "101"),  # words, in order
        ("cafe unicode", "104"),  # without the accents
        ("торговый дом", "103"),  # another script, another case
        ("101", "101"),  # an id
    ],
)
def test_find_matches_the_way_people_type(typed, expected):
    found = find(PAGES, typed, ident=lambda p: p["id"], name=lambda p: p["name"])
    assert found.item is not None and found.item["id"] == expected


def test_ids_stay_exact_and_several_matches_are_candidates():
    assert find(PAGES, "10", ident=lambda p: p["id"], name=lambda p: p["name"]).item is None
    several = find(PAGES, "acme", ident=lambda p: p["id"], name=lambda p: p["name"])
    assert several.item is None and {p["id"] for p in several.candidates} == {"101", "102"}


def said(bot, contains: str) -> dict:
    """The response_url answer containing this text (non-ASCII compared as itself, not as \\u escapes)."""
    return bot.slack.wait_for(lambda: next((r for r in bot.slack.responses if contains in text_of(r)), None))


@pytest.fixture
def world(bot, graph, vonage):
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    vonage.add_application(VONAGE_KEY, APP2, "Sales Bot")
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.slack.wait_message("Connected to Facebook")
    return bot


def test_link_by_a_loose_name_and_a_cyrillic_name(world, vonage):
    bot = world
    bot.command("link acme coffee & tea")  # the emoji left out
    said(bot, "Linked *Acme Coffee &amp; Tea ☕*")
    bot.command("link Торговый дом")
    said(bot, "Linked *Торговый дом «Ромашка»*")
    assert set(vonage.accounts[VONAGE_KEY]) == {"101", "103"}


def test_several_matches_answer_did_you_mean_and_a_button_runs_the_command(world, vonage):
    bot = world
    bot.command("link acme", response="r1")
    offer = bot.slack.wait_response("Did you mean")
    assert "More than one Page you manage matches “acme”" in text_of(offer)
    choices = {b["text"]["text"]: b for b in buttons(offer)}
    assert set(choices) == {"Acme Coffee & Tea ☕", "Acme Bakery"}
    assert vonage.calls("POST") == []  # nothing linked on a guess
    chosen = choices["Acme Bakery"]
    assert json.loads(chosen["value"]) == {"t": "link 102"}
    bot.click(chosen["action_id"], chosen["value"], response="r2")
    bot.slack.wait_response("Linked *Acme Bakery*")
    assert set(vonage.accounts[VONAGE_KEY]) == {"102"}


def test_nothing_matches_offers_the_nearest_names(world):
    bot = world
    bot.command("link acme cofee")  # a typo
    offer = bot.slack.wait_response("Did you mean")
    assert "No Page you manage is called “acme cofee”" in text_of(offer)
    assert "Acme Coffee & Tea ☕" in [b["text"]["text"] for b in buttons(offer)]


def test_an_unknown_application_lists_the_keys_applications(world, vonage):
    bot = world
    bot.command("link 101 app Supprt")
    offer = bot.slack.wait_response("Did you mean")
    assert "no application called “Supprt”" in text_of(offer)
    labels = [b["text"]["text"] for b in buttons(offer)]
    assert labels == ["Support Bot", "Sales Bot"]
    assert vonage.calls("POST") == []
    bot.command("link 101 app support")  # a prefix of one application is enough
    bot.slack.wait_response("application *Support Bot*")
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP1]


def test_history_by_loose_name_reads_like_a_history(world, vonage):
    bot = world
    bot.command("link acme coffee app Support Bot")
    bot.slack.wait_response("Linked *Acme Coffee")
    history = bot.command("history Acme Coffee & Tea").json()  # the emoji left out
    blob = text_of(history)
    assert "History of Acme Coffee &amp; Tea ☕" in blob
    assert "<@U1> linked it to application *Support Bot*" in blob
    assert " ·  · " not in blob and "· ok" not in blob  # no empty fields, no bare result codes


def test_remind_takes_a_plain_channel_name(world):
    bot = world
    bot.slack.add_channel("C0MKT00002", "marketing")
    bot.slack.add_channel("C0SECRET01", "secret-plans", private=True, member=False)
    bot.command("link 101")
    bot.slack.wait_response("Linked")
    ok = bot.command("remind acme coffee #marketing").json()
    assert "now go to <#C0MKT00002>" in text_of(ok)
    assert bot.store.get_link(TEAM, "101").reminder_channel == "C0MKT00002"
    nowhere = text_of(bot.command("remind acme coffee #secret-plans").json())
    assert "can't find a channel called `#secret-plans`" in nowhere and "/invite @fblink" in nowhere
    assert "Usage:" in nowhere  # what was wrong, then the usage
    assert bot.store.get_link(TEAM, "101").reminder_channel == "C0MKT00002"


def test_remind_with_a_wrong_word_says_what_was_wrong(world):
    bot = world
    bot.command("link 101")
    bot.slack.wait_response("Linked")
    blob = text_of(bot.command("remind acme coffee tomorrow").json())
    assert "not `tomorrow`" in blob and "Usage:" in blob


def test_unknown_subcommand_says_which_word_before_the_help(bot):
    blob = text_of(bot.command("frobnicate now").json())
    assert "I don't know `frobnicate`" in blob and "/fblink login" in blob
    assert "I don't know" not in text_of(bot.command("help").json())


def test_the_demo_escapes_command_text_as_slack_does():
    from bot.demo.escape import escape_command_text

    channels, people = {"marketing": "C0MKT00002"}, {"priya": "UPAGEADM"}
    assert escape_command_text("remind Acme #marketing", channels, people) == "remind Acme <#C0MKT00002|marketing>"
    assert escape_command_text("remind #nowhere", channels, people) == "remind #nowhere"  # unknown: stays plain
    assert escape_command_text("ask @priya", channels, people) == "ask <@UPAGEADM|priya>"
    assert escape_command_text("Coffee & Tea <b>", channels, people) == "Coffee &amp; Tea &lt;b&gt;"
    assert escape_command_text("see https://x.test/a?b=1&c=2", channels, people) == "see <https://x.test/a?b=1&amp;c=2>"


def test_an_admin_may_type_a_key_in_another_case_others_may_not(world, vonage):
    bot = world
    bot.command("link 102 ABCD1234", user="U1")  # U1 is no admin: keys stay exact for them
    bot.slack.wait_response("Unknown Vonage API key")
    assert "102" not in vonage.accounts[VONAGE_KEY]


def test_an_admin_key_typed_in_capitals_is_found(bot, graph, vonage):
    log_in(
        bot, graph, user="UADMIN", fb_user="FBA", name="Avery", pages=PAGES, data_access_expires_at=START + 200 * DAY
    )
    bot.command("link 102 ABCD1234", user="UADMIN")
    said(bot, "Linked *Acme Bakery*")
    assert "102" in vonage.accounts[VONAGE_KEY]
