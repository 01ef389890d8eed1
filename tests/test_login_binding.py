"""Issue 17, items 1 and 2: a login belongs to the browser that confirmed it.

The attacker plays his own browser; a second cookie jar (``browser()``) plays the victim's.
Each test asserts what the people would see: the page, where the DM went, the stored login,
and whether Facebook was asked for a token at all."""

from __future__ import annotations

import hashlib
import re

from cryptography.fernet import Fernet

from tests.conftest import TEAM
from tests.flows import browser, button_urls, confirm_login, public_origin, query, text_of


def _login_link(bot, user: str) -> str:  # type: ignore[no-untyped-def]
    (url,) = button_urls(bot.command("login", user=user).json())
    return url.replace("https://fblink.test", bot.url)


def _form(page_text: str) -> dict[str, str]:
    state = re.search(r"name='state' value='([^']+)'", page_text)
    csrf = re.search(r"name='csrf' value='([0-9a-f]+)'", page_text)
    assert state and csrf, page_text
    return {"state": state.group(1), "csrf": csrf.group(1)}


def _token_exchanges(graph) -> int:  # type: ignore[no-untyped-def]
    return len(graph.calls("GET", "/v25.0/oauth/access_token"))


def _confirmed(bot, state: str) -> bool:  # type: ignore[no-untyped-def]
    row = bot.store.one(
        "SELECT confirmed_at FROM oauth_states WHERE state_hash = ?", [hashlib.sha256(state.encode()).hexdigest()]
    )
    assert row is not None, "no such state"
    return row["confirmed_at"] is not None


def test_a_form_planted_on_another_site_cannot_confirm_the_attackers_login(bot, graph):
    """Login CSRF: the attacker reads state and token off his own page and makes the victim's
    browser POST them from another site. fblink refuses, and Facebook is never reached."""
    graph.add_user("FB-VICTIM", "Vic Tim", pages=[{"id": "501", "name": "Victim's Page", "tasks": ["MANAGE"]}])
    attacker = bot.http
    form = _form(attacker.get(_login_link(bot, "UATTACK")).text)
    with browser() as victim:
        for origin in ("https://evil.example", "null"):
            r = victim.post(bot.url + "/facebook/login", data=form, headers={"Origin": origin})
            assert r.status_code == 403 and "Login not confirmed" in r.text
        # no Origin, a foreign Referer: the same
        r = victim.post(bot.url + "/facebook/login", data=form, headers={"Referer": "https://evil.example/x"})
        assert r.status_code == 403
        # even with fblink's own Origin (a browser never sends that from another site) the victim's
        # browser lacks the cookie the token was made for: refused
        r = victim.post(bot.url + "/facebook/login", data=form, headers={"Origin": public_origin(bot)})
        assert r.status_code == 403 and "location" not in r.headers
        # ... and with a cookie of its own (the victim once opened a login link of his own) still refused
        victim.get(_login_link(bot, "UVICTIM"))
        assert victim.jar.values  # type: ignore[attr-defined]
        r = victim.post(bot.url + "/facebook/login", data=form, headers={"Origin": public_origin(bot)})
        assert r.status_code == 403
        assert not _confirmed(bot, form["state"])
        # Facebook sends the victim back with his code: no token exchange, no login for the attacker
        r = victim.get(
            bot.url + "/facebook/callback", params={"code": graph.issue_code("FB-VICTIM"), "state": form["state"]}
        )
    assert r.status_code == 400
    assert _token_exchanges(graph) == 0
    assert bot.store.get_login(TEAM, "UATTACK") is None
    assert not [m for m in bot.slack.messages if "Connected to Facebook" in text_of(m)]


def test_a_forwarded_facebook_dialog_url_cannot_finish_in_another_browser(bot, graph):
    """The attacker confirms his own link in his own browser and sends the victim the Facebook
    dialog URL it redirected to. The victim's browser comes back without the cookie: a clear
    page, no token exchange, and the state is burnt."""
    graph.add_user("FB-VICTIM", "Vic Tim", pages=[{"id": "501", "name": "Victim's Page", "tasks": ["MANAGE"]}])
    graph.add_user("FB-ATTACK", "At Tacker")
    link = _login_link(bot, "UATTACK")
    dialog = confirm_login(bot, link)  # in the attacker's own browser (bot.http)
    state = query(dialog)["state"]
    with browser() as victim:
        r = victim.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB-VICTIM"), "state": state})
    assert r.status_code == 403 and "another browser" in r.text
    assert _token_exchanges(graph) == 0
    assert bot.store.get_login(TEAM, "UATTACK") is None
    # burnt: not even the attacker's own browser can use it now
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB-ATTACK"), "state": state})
    assert r.status_code == 400 and _token_exchanges(graph) == 0


def test_the_browser_that_confirmed_finishes_and_the_dm_goes_to_the_right_user(bot, graph):
    graph.add_user("FB-U2", "Grace Hopper")
    with browser() as grace:
        dialog = confirm_login(bot, _login_link(bot, "U2"), grace)
        r = grace.get(
            bot.url + "/facebook/callback", params={"code": graph.issue_code("FB-U2"), "state": query(dialog)["state"]}
        )
    assert r.status_code == 200 and "connected to Facebook as Grace Hopper" in r.text
    dm = bot.slack.wait_message("Connected to Facebook as")
    assert dm["channel"] == "D2"  # U2's own DM with fblink, nobody else's
    assert bot.store.get_login(TEAM, "U2").fb_name == "Grace Hopper"
    assert bot.store.get_login(TEAM, "U1") is None


def test_a_state_confirmed_in_one_browser_cannot_be_confirmed_again_in_another(bot):
    link = _login_link(bot, "U1")
    confirm_login(bot, link)
    with browser() as other:
        page = other.get(link)
        assert page.status_code == 200
        r = other.post(bot.url + "/facebook/login", data=_form(page.text), headers={"Origin": public_origin(bot)})
    assert r.status_code == 403 and "confirmed in another browser" in r.text


def test_a_new_login_cancels_the_users_unfinished_ones(bot, graph):
    graph.add_user("FB1", "Ada")
    first = _login_link(bot, "U1")
    dialog = confirm_login(bot, first)  # confirmed, waiting for Facebook
    second = _login_link(bot, "U1")
    assert bot.http.get(first).status_code == 400  # the older link's page: not valid any more
    r = bot.http.get(
        bot.url + "/facebook/callback", params={"code": graph.issue_code("FB1"), "state": query(dialog)["state"]}
    )
    assert r.status_code == 400 and _token_exchanges(graph) == 0
    other_user = _login_link(bot, "U2")  # another user's login cancels nothing of U1's
    assert bot.http.get(second).status_code == 200 and bot.http.get(other_user).status_code == 200


def test_the_cookie_is_host_only_httponly_lax_and_secure_over_https(bot):
    page = bot.http.get(_login_link(bot, "U1"))
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-fblink_login=")
    attrs = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path=/", "samesite=lax"} <= attrs
    assert not any(a.startswith("domain=") for a in attrs)
    assert page.headers["referrer-policy"] == "same-origin"  # so the POST carries a real Origin


def test_over_plain_http_the_cookie_has_no_secure_or_host_prefix(start_app):
    """Chromium will not store a ``Secure`` (so no ``__Host-``) cookie from http://127.0.0.1."""
    bot = start_app(fblink_public_url="http://127.0.0.1:9")
    (url,) = button_urls(bot.command("login").json())
    page = bot.http.get(url.replace("http://127.0.0.1:9", bot.url))
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("fblink_login=") and "secure" not in cookie.lower()


def test_rotating_the_secret_key_keeps_an_open_confirmation_page_working(start_app, make_settings):
    """The form token no longer uses FBLINK_SECRET_KEY: a page opened before `NEW,OLD` still confirms."""
    old = make_settings().fblink_secret_key
    before = start_app()
    link = _login_link(before, "U1")
    page = before.http.get(link)
    new = Fernet.generate_key().decode()
    after = start_app(fblink_secret_key=f"{new},{old}")  # the restarted bot, same database
    after.http.jar.values.update(before.http.jar.values)  # the same browser
    r = after.http.post(after.url + "/facebook/login", data=_form(page.text), headers={"Origin": public_origin(after)})
    assert r.status_code == 303 and r.headers["location"].startswith("https://www.facebook.test/")
