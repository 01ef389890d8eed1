"""Issue: link Pages to a Vonage account and application, from commands, buttons and modals."""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, log_in, text_of

PAGES = [
    {"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]},
    {"id": "102", "name": "Bolt & Nut <Hardware>", "category": "Shop", "tasks": ["MESSAGING"]},
    {"id": "103", "name": "Read Only Fans", "category": "Club", "tasks": ["ANALYZE"]},
]
APP1 = "aaaaaaaa-0000-4000-8000-000000000001"
APP2 = "aaaaaaaa-0000-4000-8000-000000000002"
VOICE = "aaaaaaaa-0000-4000-8000-000000000003"
DAY = 86400


@pytest.fixture
def world(bot, graph, vonage):
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    vonage.add_application(VONAGE_KEY, APP2, "Sales Bot")
    vonage.add_application(VONAGE_KEY, VOICE, "IVR", capabilities=("voice",))
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.slack.wait_message("Connected to Facebook")
    bot.slack.messages.clear()
    return bot


def last_response(bot, contains):
    return bot.slack.wait_response(contains)


def test_link_account_by_name_then_status(world, vonage, graph):
    bot = world
    r = bot.command("link acme coffee")
    assert r.status_code == 200 and "Linking" in r.text
    resp = last_response(bot, "Linked *Acme Coffee*")
    assert VONAGE_KEY in text_of(resp)
    acct = vonage.accounts[VONAGE_KEY]["101"]
    assert acct["access_token"] == graph.page_token("FB1", "101")
    assert acct["name"] == "Acme Coffee"
    link = bot.store.get_link(TEAM, "101")
    assert link.linked_by == "U1" and link.channel_id == "C1" and link.api_key == VONAGE_KEY
    assert link.expires_at == START + 90 * DAY  # TTL comes before the data-access expiry
    status = bot.command("status").json()
    blob = text_of(status)
    assert "Acme Coffee" in blob and "90 days left" in blob and "<!date^" in blob and "<@U1>" in blob


def test_link_by_id_with_explicit_key_and_app(world, vonage, start_app):
    bot = world
    bot.command(f"link 102 {VONAGE_KEY} app Support Bot")
    resp = last_response(bot, "Linked")
    assert "Support Bot" in text_of(resp)
    assert "Bolt &amp; Nut &lt;Hardware&gt;" in text_of(resp)
    assert vonage.accounts[VONAGE_KEY]["102"]["applications"] == [APP1]
    link = bot.store.get_link(TEAM, "102")
    assert link.application_id == APP1 and link.application_name == "Support Bot"


def test_expiry_uses_data_access_when_sooner(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 30 * DAY)
    bot.command("link 101")
    last_response(bot, "Linked")
    assert bot.store.get_link(TEAM, "101").expires_at == START + 30 * DAY


def test_relink_of_existing_account_patches_token(world, vonage):
    bot = world
    vonage.add_account(VONAGE_KEY, "101", "old-token", name="Acme Coffee")
    bot.command("link 101")
    last_response(bot, "Linked")
    assert vonage.calls("PATCH", "/beta/chatapp-accounts/messenger/101")
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] != "old-token"


def test_unknown_page_app_or_key_makes_no_vonage_call(world, vonage):
    bot = world
    vonage.reset_log()
    bot.command("link Nonexistent Page")
    last_response(bot, "don't manage a Facebook Page")
    bot.command("link 101 nosuchkey")
    last_response(bot, "Unknown Vonage API key")
    bot.command("link 103")  # listed, but without MESSAGING/MANAGE
    last_response(bot, "MESSAGING or MANAGE")
    assert vonage.calls("POST") == [] and vonage.calls("PATCH") == []
    bot.command("link 101 app Nope")
    last_response(bot, "no application called")
    bot.command("link 101 app IVR")
    last_response(bot, "no Messages capability")
    assert vonage.calls("POST") == []
    assert bot.store.get_link(TEAM, "101") is None


def test_app_link_runs_part_one_first(world, vonage):
    bot = world
    bot.command(f"link Acme Coffee app {APP2}")
    last_response(bot, "Sales Bot")
    posts = [c.path for c in vonage.calls("POST")]
    assert posts == ["/beta/chatapp-accounts/messenger", "/beta/chatapp-accounts/messenger/101/applications"]


def test_conflict_offers_replace_and_replace_works(world, vonage):
    bot = world
    bot.command("link 101 app Support Bot")
    last_response(bot, "Support Bot")
    bot.slack.responses.clear()
    bot.command("link 101 app Sales Bot")
    prompt = last_response(bot, "already linked to application")
    assert "Support Bot" in text_of(prompt)
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP1]  # never silently replaced
    replace = next(b for b in buttons(prompt) if b["action_id"] == "link_replace")
    assert replace.get("confirm")
    bot.slack.responses.clear()
    bot.click("link_replace", replace["value"])
    last_response(bot, "Replaced the application")
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP2]
    assert bot.store.get_link(TEAM, "101").application_id == APP2
    assert "replace" in text_of(bot.command("history 101").json())


def test_replace_button_is_checked_again(world, vonage, graph):
    bot = world
    bot.command("link 101 app Support Bot")
    last_response(bot, "Support Bot")
    forged = json.dumps({"p": "999", "k": VONAGE_KEY, "a": APP2, "c": APP1})
    bot.slack.responses.clear()
    bot.click("link_replace", forged)
    last_response(bot, "don't manage")
    # another Slack user who does not manage the Page cannot use a copied button
    graph.add_user("FB9", "Mallory", pages=[])
    log_in(bot, graph, user="U9", fb_user="FB9")
    bot.slack.responses.clear()
    bot.click("link_replace", json.dumps({"p": "101", "k": VONAGE_KEY, "a": APP2, "c": APP1}), user="U9")
    last_response(bot, "don't manage")
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP1]


def test_failure_in_the_middle_of_two_step_link_leaves_nothing(world, vonage):
    bot = world
    vonage.fail("POST /beta/chatapp-accounts/messenger/101/applications", status=500, times=10)
    bot.command("link 101 app Support Bot")
    last_response(bot, "busy or unreachable")
    assert "101" not in vonage.accounts[VONAGE_KEY]  # part 1 was undone at Vonage
    assert bot.store.get_link(TEAM, "101") is None
    hist = bot.store.history(TEAM, "101")
    assert hist and hist[0]["result"].startswith("error")


@pytest.mark.parametrize(
    "status,body,expect",
    [
        (
            401,
            {
                "type": "https://developer.nexmo.com/api-errors#unauthorized",
                "title": "Unauthorized",
                "detail": "You did not provide correct credentials.",
            },
            "rejected API key",
        ),
        (
            400,
            {
                "type": "https://developer.nexmo.com/api-errors#invalid-params",
                "title": "Bad Request",
                "detail": "Invalid params",
                "invalid_params": [{"name": "access_token", "reason": "is invalid"}],
            },
            "`access_token`: is invalid",
        ),
    ],
)
def test_vonage_errors_are_explained(world, vonage, status, body, expect):
    bot = world
    vonage.fail(
        "POST /beta/chatapp-accounts/messenger",
        status=status,
        body=body,
        headers={"Content-Type": "application/problem+json"},
        times=1,
    )
    bot.command("link 101")
    last_response(bot, expect)
    assert bot.store.get_link(TEAM, "101") is None


def test_wrong_secret_gives_401_message(start_app, graph, vonage):
    bot = start_app(vonage_api_secret="wrong")
    log_in(bot, graph, pages=PAGES)
    bot.command("link 101")
    last_response(bot, f"Vonage rejected API key `{VONAGE_KEY}`")


def test_rate_limit_is_retried_then_succeeds(world, vonage):
    bot = world
    vonage.fail("POST /beta/chatapp-accounts/messenger", status=429, headers={"Retry-After": "0"}, times=2)
    bot.command("link 101")
    last_response(bot, "Linked")
    assert len(vonage.calls("POST", "/beta/chatapp-accounts/messenger")) == 3


def test_unlink_app_then_account(world, vonage):
    bot = world
    bot.command("link 101 app Support Bot")
    last_response(bot, "Support Bot")
    bot.command("unlink acme coffee app support bot")
    last_response(bot, "Unlinked application")
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == []
    assert bot.store.get_link(TEAM, "101").application_id is None
    bot.command("unlink 101")
    last_response(bot, "Removed *Acme Coffee*")
    assert "101" not in vonage.accounts[VONAGE_KEY]
    assert bot.store.get_link(TEAM, "101") is None


def test_only_linker_or_admin_may_unlink(world, vonage, graph):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    bot.slack.responses.clear()
    bot.command("unlink 101", user="U2")
    last_response(bot, "Only <@U1> or an fblink admin")
    assert "101" in vonage.accounts[VONAGE_KEY]
    bot.command("unlink 101", user="UADMIN")
    last_response(bot, "Removed")


def test_pages_buttons_and_unlink_confirmation(world, vonage):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    bot.slack.responses.clear()
    bot.command("pages")
    listing = last_response(bot, "Your Facebook Pages")
    ids = {(b["action_id"], b.get("value")) for b in buttons(listing)}
    assert ("page_unlink", "101") in ids and ("page_link", "102") in ids and ("page_link_app", "101") in ids
    unlink = next(b for b in buttons(listing) if b["action_id"] == "page_unlink")
    assert unlink["confirm"]["confirm"]["text"] == "Unlink"  # Slack asks before sending the click
    bot.slack.responses.clear()
    bot.click("page_unlink", "101")
    last_response(bot, "Removed")
    assert "101" not in vonage.accounts[VONAGE_KEY]


def test_modal_link_flow(world, vonage):
    bot = world
    r = bot.command("link")
    assert r.status_code == 200 and r.text == ""
    opened = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.open"])
    view = opened[0]["view"]
    assert view["callback_id"] == "link_modal"
    options = view["blocks"][0]["element"]["options"]
    assert {o["value"] for o in options} == {"101", "102"}  # no Page without MESSAGING/MANAGE
    updated = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.update"])
    app_block = next(b for b in updated[0]["view"]["blocks"] if b.get("block_id") == "app")
    assert {o["value"] for o in app_block["element"]["options"]} == {APP1, APP2}  # messages-capable only
    # field errors: nothing chosen / a page the user doesn't manage
    bad = bot.submit(
        "link_modal",
        {
            "page": {"page": {"selected_option": {"value": "999"}}},
            "key": {"link_modal_key": {"selected_option": {"value": "zzz"}}},
        },
    )
    assert bad.status_code == 200
    assert bad.json()["response_action"] == "errors"
    assert set(bad.json()["errors"]) == {"page", "key"}
    ok = bot.submit(
        "link_modal",
        {
            "page": {"page": {"selected_option": {"value": "102"}}},
            "key": {"link_modal_key": {"selected_option": {"value": VONAGE_KEY}}},
            "app": {"app": {"selected_option": {"value": APP2}}},
        },
        private_metadata=json.dumps({"channel": "C9"}),
    )
    assert ok.status_code == 200 and ok.text == ""
    bot.slack.wait_message("Linked *Bolt &amp; Nut &lt;Hardware&gt;*")
    assert vonage.accounts[VONAGE_KEY]["102"]["applications"] == [APP2]
    assert bot.store.get_link(TEAM, "102").channel_id == "C9"


def test_page_link_button_opens_modal_with_page_selected(world):
    bot = world
    bot.command("pages")
    last_response(bot, "Your Facebook Pages")
    bot.click("page_link", "102")
    opened = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.open"])
    assert opened[0]["view"]["blocks"][0]["element"]["initial_option"]["value"] == "102"
    bot.click("page_link", "999")  # not one of the user's Pages
    last_response(bot, "don't manage")


def test_relink_refreshes_token_and_starts_new_period(world, vonage, graph):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    first = bot.store.get_link(TEAM, "101")
    graph.kill_page_token("101")
    bot.clock.advance(80 * DAY)
    bot.slack.responses.clear()
    bot.command("relink Acme Coffee")
    last_response(bot, "Re-linked")
    second = bot.store.get_link(TEAM, "101")
    assert second.period == first.period + 1
    assert second.expires_at == bot.clock.now() + 90 * DAY
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB1", "101")


def test_relink_with_stale_login_sends_login_first(bot, graph, vonage):
    log_in(bot, graph, pages=PAGES, data_access_expires_at=START + 100 * DAY)
    bot.command("link 101")
    last_response(bot, "Linked")
    bot.clock.advance(90 * DAY)  # data access now ends in 10 days: inside the 14-day window
    bot.slack.responses.clear()
    bot.command("relink 101")
    prompt = last_response(bot, "needs a fresh Facebook login")
    url = next(b["url"] for b in buttons(prompt) if b.get("url"))
    from tests.flows import confirm_login, query

    confirm_login(bot, url)
    state = query(url)["state"]
    graph.users["FB1"].data_access_expires_at = bot.clock.now() + 90 * DAY
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": state})
    assert r.status_code == 200
    bot.slack.wait_message("Re-linked *Acme Coffee*")
    assert bot.store.get_link(TEAM, "101").period == 2


def test_sync_imports_and_marks_gone(world, vonage):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    vonage.add_account(VONAGE_KEY, "555", "dash-token", name="Dashboard Page", applications=(APP1,))
    del vonage.accounts[VONAGE_KEY]["101"]
    bot.command("sync")
    resp = last_response(bot, "Synced with Vonage")
    assert "Dashboard Page" in text_of(resp) and "Acme Coffee" in text_of(resp)
    imported = bot.store.get_link(TEAM, "555")
    assert imported.needs_relink and imported.expires_at is None and imported.application_name == "Support Bot"
    assert bot.store.get_link(TEAM, "101").status == "gone"
    assert "expiry unknown" in text_of(bot.command("status").json())


def test_keys_admin_only_add_list_remove(world, vonage, graph):
    bot = world
    assert "Only fblink admins" in bot.command("keys list").text
    assert "Only fblink admins" in bot.command("keys add").text
    assert "default" in bot.command("keys list", user="UADMIN").text
    r = bot.command("keys add", user="UADMIN")
    assert r.status_code == 200
    opened = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.open"])
    assert opened[0]["view"]["callback_id"] == "keys_add_modal"
    vonage.add_key("second99", "s2-secret")
    vonage.add_application("second99", APP2 + "x", "Other")
    bad = bot.submit(
        "keys_add_modal",
        {"api_key": {"api_key": {"value": "!!"}}, "api_secret": {"api_secret": {"value": ""}}},
        user="UADMIN",
    )
    assert set(bad.json()["errors"]) == {"api_key", "api_secret"}
    wrong = bot.submit(
        "keys_add_modal",
        {"api_key": {"api_key": {"value": "second99"}}, "api_secret": {"api_secret": {"value": "wrong"}}},
        user="UADMIN",
    )
    # the modal stays open with Vonage's refusal under "API secret"
    assert wrong.json()["response_action"] == "errors"
    assert "did not accept this key and secret" in wrong.json()["errors"]["api_secret"]
    assert bot.store.key_secret(TEAM, "second99") is None
    bot.submit(
        "keys_add_modal",
        {"api_key": {"api_key": {"value": "second99"}}, "api_secret": {"api_secret": {"value": "s2-secret"}}},
        user="UADMIN",
    )
    bot.slack.wait_message("Added Vonage API key `second99`")
    assert "s2-secret" not in json.dumps(bot.slack.messages)
    assert "second99" in bot.command("keys list", user="UADMIN").text
    bot.command("link 101 second99")  # the key policy: added keys are for admins (handlers/key_policy.py)
    last_response(bot, "only fblink admins can use")
    assert "101" not in vonage.accounts.get("second99", {})
    log_in(bot, graph, user="UADMIN", fb_user="FB-ADMIN", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.command("link 101 second99", user="UADMIN")
    last_response(bot, "Linked")
    assert "101" in vonage.accounts["second99"]
    assert "still has linked Pages" in bot.command("keys remove second99", user="UADMIN").text


def test_concurrent_links_of_one_page_run_once(world, vonage):
    bot = world
    bot.command("pages")
    last_response(bot, "Your Facebook Pages")
    held = threading.Event()  # the first link's create is answered once the second has its answer
    vonage.fail(
        "POST /beta/chatapp-accounts/messenger",
        hold=held,
        status=201,
        times=1,
        body={"external_id": "101", "name": "Acme Coffee", "applications": []},
    )
    bot.slack.responses.clear()
    bot.command("link 101")
    vonage.wait_for(lambda: vonage.calls("POST", "/beta/chatapp-accounts/messenger"), timeout=10)
    bot.command("link 101")
    bot.slack.wait_for(lambda: any("already in progress" in text_of(r) for r in bot.slack.responses))
    held.set()
    bot.slack.wait_for(lambda: len(bot.slack.responses) >= 2)
    blobs = [text_of(r) for r in bot.slack.responses]
    assert sum("already in progress" in b for b in blobs) == 1
    assert sum("Linked *Acme Coffee*" in b for b in blobs) == 1
    assert len(vonage.calls("POST", "/beta/chatapp-accounts/messenger")) == 1


def test_status_pages_with_next(world, vonage):
    bot = world
    for i in range(25):
        bot.store.upsert_link(
            TEAM,
            f"9{i:02d}",
            now=START,
            page_name=f"Bulk {i:02d}",
            api_key=VONAGE_KEY,
            linked_by="U1",
            expires_at=START + (i + 1) * DAY,
            status="active",
        )
    first = bot.command("status").json()
    assert "Bulk 00" in text_of(first) and "Bulk 10" not in text_of(first)
    nxt = next(b for b in buttons(first) if b["action_id"] == "status_next")
    bot.click("status_next", nxt["value"])
    assert "Bulk 10" in text_of(last_response(bot, "Bulk 10"))


def test_modal_key_change_reloads_that_keys_applications(world, vonage):
    bot = world
    bot.services.settings.fblink_admins = "UADMIN,U1"  # only admins are offered more than the default key
    bot.store.add_key(TEAM, "second99", "s2-secret", by="UADMIN", now=START)
    vonage.add_key("second99", "s2-secret")
    vonage.add_application("second99", "bbbbbbbb-0000-4000-8000-000000000009", "Other Key Bot")
    bot.command("pages")
    last_response(bot, "Your Facebook Pages")
    bot.slack.views.clear()
    r = bot.interact(
        {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": "U1"},
            "trigger_id": "t.1",
            "container": {"type": "view", "view_id": "VM1"},
            "view": {
                "id": "VM1",
                "type": "modal",
                "callback_id": "link_modal",
                "hash": "h9",
                "private_metadata": "{}",
                "state": {
                    "values": {
                        "key": {"link_modal_key": {"type": "static_select", "selected_option": {"value": "second99"}}}
                    }
                },
            },
            "actions": [
                {
                    "action_id": "link_modal_key",
                    "block_id": "key",
                    "type": "static_select",
                    "selected_option": {"value": "second99"},
                    "action_ts": "1.0",
                }
            ],
        }
    )
    assert r.status_code == 200
    (upd,) = bot.slack.wait_for(lambda: [v for v in bot.slack.views if v["method"] == "views.update"])
    assert upd["view_id"] == "VM1"
    app_block = next(b for b in upd["view"]["blocks"] if b.get("block_id") == "app")
    assert [o["value"] for o in app_block["element"]["options"]] == ["bbbbbbbb-0000-4000-8000-000000000009"]
    key_el = next(b for b in upd["view"]["blocks"] if b.get("block_id") == "key")["element"]
    assert key_el["initial_option"]["value"] == "second99"


def test_status_flags_expired_links(world):
    bot = world
    bot.store.upsert_link(
        TEAM,
        "888",
        now=START,
        page_name="Lapsed Page",
        api_key=VONAGE_KEY,
        linked_by="U1",
        expires_at=START - DAY,
        status="active",
    )
    blob = text_of(bot.command("status").json())
    assert ":rotating_light: *expired*" in blob and "Lapsed Page" in blob


def test_vonage_403_on_application_is_explained(world, vonage):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    vonage.fail(
        "POST /beta/chatapp-accounts/messenger/101/applications",
        status=403,
        times=1,
        headers={"Content-Type": "application/problem+json"},
        body={"title": "Forbidden", "detail": "Cannot link application"},
    )
    bot.slack.responses.clear()
    bot.command("link 101 app Support Bot")
    resp = last_response(bot, "not a Messages")
    assert "Cannot link application" in text_of(resp)
    link = bot.store.get_link(TEAM, "101")
    assert link.application_id is None and vonage.accounts[VONAGE_KEY]["101"]["applications"] == []
    assert "101" in vonage.accounts[VONAGE_KEY]  # part 1 existed before this command: left alone


def test_unanswered_refresh_never_deletes_an_existing_account(world, vonage):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    before = bot.store.get_link(TEAM, "101")
    vonage.fail("PATCH /beta/chatapp-accounts/messenger/101", status=503, times=50)
    vonage.fail("POST /beta/chatapp-accounts/messenger", status=503, times=50)
    bot.slack.responses.clear()
    bot.command("link 101")
    last_response(bot, "busy or unreachable")
    assert "101" in vonage.accounts[VONAGE_KEY]  # still linked at Vonage
    assert vonage.calls("DELETE") == []
    assert bot.store.get_link(TEAM, "101") == before


def test_replace_refuses_an_application_the_user_was_not_shown(world, vonage):
    bot = world
    vonage.add_application(VONAGE_KEY, VOICE + "9", "Third Bot")
    bot.command("link 101 app Support Bot")
    last_response(bot, "Support Bot")
    bot.slack.responses.clear()
    bot.command("link 101 app Sales Bot")
    prompt = last_response(bot, "already linked to application")
    replace = next(b for b in buttons(prompt) if b["action_id"] == "link_replace")
    vonage.accounts[VONAGE_KEY]["101"]["applications"] = [VOICE + "9"]  # changed in the dashboard meanwhile
    bot.slack.responses.clear()
    bot.click("link_replace", replace["value"])
    again = last_response(bot, "already linked to application")
    assert "Third Bot" in text_of(again)
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [VOICE + "9"]


def test_app_link_on_a_tracked_link_keeps_its_expiry(world, vonage):
    bot = world
    bot.command("link 101")
    last_response(bot, "Linked")
    first = bot.store.get_link(TEAM, "101")
    bot.clock.advance(80 * DAY)
    bot.slack.responses.clear()
    bot.command("link 101 app Support Bot")
    last_response(bot, "Support Bot")
    after = bot.store.get_link(TEAM, "101")
    assert after.application_id == APP1
    assert (after.expires_at, after.period, after.next_due_at) == (first.expires_at, first.period, first.next_due_at)
    assert vonage.calls("PATCH") == []  # the token at Vonage did not change, so neither does its expiry


def test_modal_submission_checks_page_roles_afresh(world, vonage, graph):
    bot = world
    bot.command("pages")
    last_response(bot, "Your Facebook Pages")  # cached: the user manages 101
    graph.users["FB1"].pages.clear()  # the Page role was removed on Facebook
    bot.submit(
        "link_modal",
        {
            "page": {"page": {"selected_option": {"value": "101"}}},
            "key": {"link_modal_key": {"selected_option": {"value": VONAGE_KEY}}},
        },
    )
    bot.slack.wait_message("don't manage")
    assert "101" not in vonage.accounts[VONAGE_KEY]
    assert bot.store.get_link(TEAM, "101") is None
