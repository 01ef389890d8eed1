"""Issue 21 item 8: a "Continue with Facebook" prompt does not stay live-looking once it is spent.

Each command's ack is shown in the fake Slack's conversation as Slack shows it, tied to the
command's response_url (Slack lets that URL replace its first answer); the tests then read the
conversation as the person sees it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from tests.flows import button_urls, buttons, confirm_login, query

PAGES = [{"id": "101", "name": "Acme Coffee & Tea ☕", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]


def shown_command(bot: Any, text: str, name: str, *, channel: str = "COPS", user: str = "U1") -> str:
    """Run a command whose ack Slack shows in ``channel``; the login link it offers."""
    answer = bot.command(text, channel=channel, user=user, response=name).json()
    bot.slack.record_ack(channel, user, answer, f"{bot.slack.url}/response/{name}")
    (url,) = button_urls(answer)
    return url


def finish(bot: Any, graph: Any, url: str, fb_user: str = "FB1") -> None:
    confirm_login(bot, url)
    code = graph.issue_code(fb_user)
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": code, "state": query(url)["state"]})
    assert r.status_code == 200, r.text


def seen(bot: Any, channel: str = "COPS", user: str = "U1") -> list[Any]:
    return bot.slack.history(channel, user)


def live_buttons(msg: Any) -> list[str]:
    return button_urls({"blocks": msg.blocks})


@pytest.mark.parametrize("command", ["login", "pages"])  # /fblink login, and a command that needs a login
def test_the_prompt_becomes_connected_after_the_callback(bot, graph, command):
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    url = shown_command(bot, command, "p1")
    (prompt,) = seen(bot)
    assert "Continue with Facebook" in str(prompt.blocks)
    finish(bot, graph, url)
    bot.slack.wait_for(lambda: "Connected to Facebook" in seen(bot)[0].text)
    (shown,) = seen(bot)  # one message: the prompt's place, no second note beside it
    assert shown.ts == prompt.ts and shown.ephemeral_to == "U1"
    assert shown.text.startswith(":white_check_mark: Connected to Facebook as *Ada Lovelace*")
    assert not live_buttons(shown)
    assert not [m for m in bot.slack.messages if m["method"] == "chat.postEphemeral"]
    bot.slack.wait_message("Connected to Facebook as")  # the DM with its "Not me" button, as before


def test_a_newer_login_marks_the_older_prompt_replaced(bot, graph):
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    shown_command(bot, "login", "p1")
    newer = shown_command(bot, "login", "p2")
    bot.slack.wait_for(lambda: "replaced by a newer one" in seen(bot)[0].text)
    older, latest = seen(bot)
    assert older.text == ":arrows_counterclockwise: This login link was replaced by a newer one."
    assert not live_buttons(older)
    assert live_buttons(latest) == [newer]  # the newer prompt keeps its button until it is used
    finish(bot, graph, newer)
    bot.slack.wait_for(lambda: "Connected to Facebook" in seen(bot)[1].text)
    assert "replaced by a newer one" in seen(bot)[0].text
    # another person's prompt is never touched by U1's logins
    assert not seen(bot, user="U2")


def test_a_cancelled_login_says_so_in_the_prompt(bot, graph):
    url = shown_command(bot, "login", "p1")
    confirm_login(bot, url)
    r = bot.http.get(
        bot.url + "/facebook/callback",
        params={"error": "access_denied", "error_reason": "user_denied", "state": query(url)["state"]},
    )
    assert r.status_code == 200
    bot.slack.wait_for(lambda: "cancelled" in seen(bot)[0].text)
    assert not live_buttons(seen(bot)[0])


def test_a_spent_response_url_is_swallowed_and_the_channel_told(bot, graph, caplog):
    """Slack keeps a response_url 30 minutes and 5 uses: when it refuses, the login still
    completes, the confirmation goes to the channel as a note, and the log never holds the URL."""
    caplog.set_level(logging.DEBUG)
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    url = shown_command(bot, "login", "p1")
    bot.slack.state.hooks["p1"].uses = bot.slack.state.response_url_uses  # used up
    finish(bot, graph, url)
    note = bot.slack.wait_for(
        lambda: [m for m in bot.slack.messages if m["method"] == "chat.postEphemeral" and m["channel"] == "COPS"]
    )
    assert "Connected to Facebook as *Ada Lovelace*" in note[0]["text"]
    assert bot.store.get_login("T0001", "U1") is not None
    assert "could not replace a spent message" in caplog.text
    assert "/response/p1" not in caplog.text


def test_the_prompt_url_is_stored_encrypted_and_forgotten_once_used(bot, graph):
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    url = shown_command(bot, "login", "p1")
    (row,) = bot.store.select("SELECT response_url_enc FROM oauth_states WHERE used_at IS NULL")
    assert row["response_url_enc"] and "/response/" not in row["response_url_enc"]
    assert bot.store.vault.decrypt(row["response_url_enc"]).endswith("/response/p1")
    finish(bot, graph, url)
    rows = bot.store.select("SELECT response_url_enc FROM oauth_states")
    assert [r["response_url_enc"] for r in rows] == [None]


def home_prompt(bot: Any) -> tuple[dict[str, Any], str]:
    """Log in from the App Home: the prompt comes as a DM (a Home tab has no response_url)."""
    before = len(bot.slack.messages)
    bot.click("home_login", view={"type": "home", "id": "VHOME", "callback_id": "", "state": {"values": {}}})
    bot.slack.wait_for(lambda: any("Continue with Facebook" in str(m.get("text")) for m in bot.slack.messages[before:]))
    dm = next(m for m in bot.slack.messages[before:] if "Continue with Facebook" in str(m.get("text")))
    (url,) = button_urls(dm)
    return dm, url


def noted(bot: Any, limit: float = 10.0) -> None:
    """The DM prompt's place is written just after Slack took the post: wait for the row."""
    deadline = time.monotonic() + limit
    while bot.store.select("SELECT prompt_ts FROM oauth_states WHERE used_at IS NULL")[0]["prompt_ts"] is None:
        assert time.monotonic() < deadline, "the DM prompt's place was never kept"
        time.sleep(0.02)


def test_a_prompt_posted_in_the_dm_becomes_connected_after_the_callback(bot, graph):
    """The App Home's Log in answers in the DM, a message of its own: its place is kept with the
    login link (never a URL: it has none), and chat.update marks it done."""
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    dm, url = home_prompt(bot)
    assert dm["channel"] == "D1"
    noted(bot)
    rows = bot.store.select("SELECT response_url_enc, prompt_channel, prompt_ts FROM oauth_states")
    assert rows == [{"response_url_enc": None, "prompt_channel": "D1", "prompt_ts": dm["ts"]}]
    finish(bot, graph, url)
    bot.slack.wait_for(lambda: "Connected to Facebook as *Ada Lovelace*" in seen(bot, "D1")[0].text)
    prompt = next(m for m in seen(bot, "D1") if m.ts == dm["ts"])  # the same message, updated in place
    assert prompt.text.startswith(":white_check_mark: Connected to Facebook as *Ada Lovelace*")
    assert not live_buttons(prompt)


def test_a_newer_login_marks_the_older_dm_prompt_replaced(bot, graph):
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES)
    older, _ = home_prompt(bot)
    noted(bot)
    newer = shown_command(bot, "login", "p2")
    bot.slack.wait_for(
        lambda: any(m.ts == older["ts"] and "replaced by a newer one" in m.text for m in seen(bot, "D1"))
    )
    (old,) = [m for m in seen(bot, "D1") if m.ts == older["ts"]]
    assert not live_buttons(old)
    assert live_buttons(seen(bot)[0]) == [newer]  # the newer prompt, in the channel, still works


def test_a_grant_prompt_in_the_dm_is_marked_done_once_the_permission_is_granted(bot, graph):
    """A login that declined a Messenger permission DMs a login button asking again for it: once
    that second login is done, the DM holding it says how it ended."""
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES, declined={"pages_messaging"})
    finish(bot, graph, shown_command(bot, "login", "p1"))
    grant = bot.slack.wait_message("still needs these Facebook permissions")
    (url,) = [u for u in button_urls(grant) if "/facebook/login" in u]
    noted(bot)
    graph.users["FB1"].declined = frozenset()  # this time the person allows it
    finish(bot, graph, url)
    bot.slack.wait_for(
        lambda: any(m.ts == grant["ts"] and "Connected to Facebook as" in m.text for m in seen(bot, "D1"))
    )
    (spent,) = [m for m in seen(bot, "D1") if m.ts == grant["ts"]]
    assert spent.text.startswith(":white_check_mark: Connected to Facebook as *Ada Lovelace*")
    assert not live_buttons(spent)


def refused_with_grant(bot: Any, graph: Any) -> tuple[Any, dict[str, Any]]:
    """U1 logs in without pages_messaging, then `/fblink link` is refused with a grant button: the
    refusal (an ephemeral message in #ops) and that button."""
    graph.add_user("FB1", "Ada Lovelace", pages=PAGES, declined={"pages_messaging"})
    finish(bot, graph, shown_command(bot, "login", "p1"))
    answer = bot.command("link acme coffee", channel="COPS", response="p2").json()
    bot.slack.record_ack("COPS", "U1", answer, f"{bot.slack.url}/response/p2")
    bot.slack.wait_for(lambda: any("Grant the missing permissions" in str(m.blocks) for m in seen(bot)))
    (refusal,) = [m for m in seen(bot) if "Grant the missing permissions" in str(m.blocks)]
    (grant,) = [b for b in buttons({"blocks": refusal.blocks}) if b.get("url")]
    return refusal, grant


def kept_url(bot: Any, limit: float = 10.0) -> str:
    """The response_url kept with U1's open login link, decrypted (waits for the click's write)."""
    deadline = time.monotonic() + limit
    while not (rows := bot.store.select("SELECT response_url_enc FROM oauth_states WHERE used_at IS NULL"))[0][
        "response_url_enc"
    ]:
        assert time.monotonic() < deadline, "the click's response_url was never kept"
        time.sleep(0.02)
    return str(bot.services.store.vault.decrypt(rows[0]["response_url_enc"]))


def test_an_ephemeral_grant_button_reports_its_message_when_clicked_and_is_marked_done(bot, graph):
    """A refusal's "Grant the missing permissions" is an ephemeral answer of its own, which fblink
    cannot reach by itself; clicking the URL button sends fblink that message's response_url, and
    once the login is done the refusal says how it ended."""
    refusal, grant = refused_with_grant(bot, graph)
    assert len(grant["value"]) == 64 and query(grant["url"])["state"] not in grant["value"]  # a reference only
    bot.click("login_open", grant["value"], channel="COPS", response="p3", message_ts=refusal.ts)
    assert kept_url(bot).endswith("/response/p3")
    graph.users["FB1"].declined = frozenset()
    finish(bot, graph, grant["url"])
    bot.slack.wait_for(lambda: any(m.ts == refusal.ts and "Connected to Facebook" in m.text for m in seen(bot)))
    (spent,) = [m for m in seen(bot) if m.ts == refusal.ts]
    assert spent.text.startswith(":white_check_mark: Connected to Facebook as *Ada Lovelace*")
    assert not live_buttons(spent)


def test_a_crafted_click_cannot_attach_a_message_to_someone_elses_login(bot, graph):
    """The button's reference names a row, but only the person the login is for can attach a
    message to it: U2 replaying U1's button first leaves the place for U1's own click."""
    refusal, grant = refused_with_grant(bot, graph)
    bot.click("login_open", grant["value"], user="U2", channel="COPS", response="evil", message_ts=refusal.ts)
    bot.click("login_open", grant["value"], channel="COPS", response="p3", message_ts=refusal.ts)
    assert kept_url(bot).endswith("/response/p3")
