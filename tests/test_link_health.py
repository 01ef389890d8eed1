"""Issue 21 item 1 and 5: a login without the Messenger permissions links nothing, says why wherever
the login or its links are shown, and offers one click that asks Facebook again; buttons that would
be refused are not offered."""

from __future__ import annotations

import html

from bot.fakes.slack_payloads import HOSTILE
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, confirm_login, log_in, query, text_of

DAY = 86400
PAGES = [
    {"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "102", "name": "Bolt Hardware", "category": "Shop", "tasks": ["MESSAGING"]},
]


def grant_url(payload: dict) -> str:
    (url,) = [b["url"] for b in buttons(payload) if b.get("text", {}).get("text") == "Grant the missing permissions"]
    return str(url)


def test_declined_messaging_refuses_the_link_and_offers_a_rerequest(bot, graph, vonage):
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES, declined={"pages_messaging"})
    page = log_in(bot, graph, user="U1")
    # the callback page says what is missing and names the Slack user by name, not only by id
    assert "Connected, but permissions are missing" in page.text
    assert "pages_messaging" in page.text and "cannot be linked" in page.text
    assert f"for Slack user {html.escape(HOSTILE['real_name'], quote=True)}," in page.text
    assert "You&#x27;re connected" not in page.text and "You're connected" not in page.text
    bot.slack.wait_message("Connected to Facebook")

    bot.command("link acme coffee")
    refusal = bot.slack.wait_response("did not link")
    blob = text_of(refusal)
    assert "*Acme Coffee*" in blob and "`pages_messaging`" in blob and "Messenger traffic" in blob
    assert "Linked" not in blob
    assert vonage.calls("POST") == [] and vonage.calls("PATCH") == []
    assert bot.store.get_link(TEAM, "101") is None
    # one click: fblink's confirmation page, then Facebook's dialog asking again for what was declined
    dialog = confirm_login(bot, grant_url(refusal))
    assert query(dialog)["auth_type"] == "rerequest"


def test_whoami_pages_and_home_show_the_missing_permission(bot, graph):
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES, declined={"pages_messaging", "business_management"})
    log_in(bot, graph, user="U1")
    who = bot.command("whoami").json()
    blob = text_of(who)
    assert "did not grant" in blob and "`pages_messaging`" in blob and "`business_management`" in blob
    assert any(b.get("text", {}).get("text") == "Grant the missing permissions" for b in buttons(who))

    bot.command("pages")
    listing = bot.slack.wait_response("Your Facebook Pages")
    blob = text_of(listing)
    assert "`pages_messaging`" in blob and "cannot be linked or re-linked" in blob
    ids = {b.get("action_id") for b in buttons(listing)}
    assert "page_link" not in ids and "page_relink" not in ids  # they would be refused: not offered
    assert "login_open" in ids

    bot.open_home("U1")
    (pub,) = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.publish"])
    home = text_of(pub["view"])
    assert "connected to Facebook as *Ada Lovelace*" in home and "`pages_messaging`" in home


def test_a_link_whose_linker_later_lost_a_permission_shows_as_broken(bot, graph, vonage):
    log_in(bot, graph, user="U1", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.command("link 101")
    bot.slack.wait_response("Linked *Acme Coffee*")
    assert ":large_green_circle:" in text_of(bot.command("status").json())

    # Ada logs in again and this time unticks pages_messaging in the Facebook dialog
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES, declined={"pages_messaging"})
    log_in(bot, graph, user="U1")
    status = bot.command("status").json()
    blob = text_of(status)
    assert ":boom: *broken*" in blob and "no longer grants `pages_messaging`" in blob
    assert ":large_green_circle:" not in blob
    relink = [b for b in buttons(status) if b.get("action_id") == "status_relink"] or [
        blk["accessory"] for blk in status["blocks"] if blk.get("accessory", {}).get("action_id") == "status_relink"
    ]
    assert relink and relink[0].get("style") == "danger"  # the stronger style on a broken row

    # and a re-link with that login is refused with the reason, not performed
    bot.command("relink acme")
    bot.slack.wait_response("did not re-link")
    assert vonage.calls("PATCH") == []


def test_status_offers_relink_only_to_people_who_manage_the_page(bot, graph):
    log_in(bot, graph, user="U1", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.command("link 101")
    bot.slack.wait_response("Linked *Acme Coffee*")

    def relink_buttons(user: str) -> list[dict]:
        msg = bot.command("status", user=user).json()
        return [b["accessory"] for b in msg["blocks"] if b.get("accessory", {}).get("action_id") == "status_relink"]

    assert relink_buttons("U1")  # Ada manages Acme Coffee
    assert relink_buttons("U2") == []  # someone who manages no Page is not offered a button to be refused


def test_pages_hides_unlink_from_someone_who_did_not_link(bot, graph):
    log_in(bot, graph, user="U1", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.command("link 101")
    bot.slack.wait_response("Linked *Acme Coffee*")
    log_in(bot, graph, user="U2", fb_user="FB2", name="Grace Hopper", pages=PAGES)
    bot.slack.responses.clear()
    bot.command("pages", user="U2")
    grace = bot.slack.wait_response("Your Facebook Pages")
    ids = [b.get("action_id") for b in buttons(grace)]
    assert "page_unlink" not in ids  # Grace did not link it and is no admin
    assert ids.count("page_relink") == 1 and ids.count("page_link") == 1  # one Link button on the unlinked Page
    assert "page_link_app" in ids  # the linked Page's application can be changed
    bot.slack.responses.clear()
    bot.command("pages", user="U1")
    ada = bot.slack.wait_response("Your Facebook Pages")
    assert "page_unlink" in [b.get("action_id") for b in buttons(ada)]
    # the server still refuses an Unlink click from Grace
    bot.click("page_unlink", "101", user="U2", response="r2", message_ts="1700000000.000200")
    bot.slack.wait_response("Only <@U1> or an fblink admin can unlink")
    assert bot.store.get_link(TEAM, "101").status == "active"
    assert VONAGE_KEY


def test_app_home_says_who_you_are_and_offers_log_in_link_and_refresh(bot, graph):
    bot.open_home("U1")
    (first,) = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.publish"])
    assert "not connected to Facebook yet" in text_of(first["view"])
    ids = [el.get("action_id") for b in first["view"]["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert ids == ["home_login", "home_refresh"]  # no "Link a Page" before there is a login to link with
    log_in(bot, graph, user="U1", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.click("home_refresh", "refresh", view={"id": "VHOME", "type": "home"})
    second = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.publish"][1:])
    blob = text_of(second[0]["view"])
    assert "connected to Facebook as *Ada Lovelace*" in blob
    ids = [el.get("action_id") for b in second[0]["view"]["blocks"] if b["type"] == "actions" for el in b["elements"]]
    assert ids == ["home_login", "home_link", "home_refresh"]
