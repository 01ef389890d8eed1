"""Issue 8's findings, each reproduced over HTTP against the real app: forwarded login links,
the body limit, key disclosure, the "app" keyword, and verbatim mrkdwn."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import SIGNING_SECRET, TEAM, VONAGE_KEY, free_port, sign
from tests.flows import button_urls, buttons, log_in, query, text_of

DAY = 86400
APP1 = "aaaaaaaa-0000-4000-8000-0000000000a1"


# -- a forwarded login link ------------------------------------------------------------------


def test_forwarded_login_link_shows_whose_slack_user_it_binds_before_facebook(bot, graph):
    graph.add_user("FB-B", "Bea Admin", pages=[{"id": "201", "name": "Bea's Page", "tasks": ["MANAGE"]}])
    (url,) = button_urls(bot.command("login", user="UA").json())
    # B opens A's forwarded link: fblink's own page comes first and names A's Slack user
    page = bot.http.get(url.replace("https://fblink.test", bot.url))
    assert page.status_code == 200
    assert "UA" in page.text and TEAM in page.text and "Not you?" in page.text
    assert "facebook.test" not in page.text  # no link to Facebook: only a POST button back to fblink
    assert "form-action 'self' https://www.facebook.test" in page.headers["content-security-policy"]
    assert not graph.calls()  # Facebook has not been contacted
    # without the confirmation, the callback refuses the state
    state = query(url)["state"]
    r = bot.http.get(bot.url + "/facebook/callback", params={"code": graph.issue_code("FB-B"), "state": state})
    assert r.status_code == 400 and bot.store.get_login(TEAM, "UA") is None
    assert not [c for c in graph.calls() if "access_token" in c.path]


def test_confirmation_needs_the_csrf_token_tied_to_the_state(bot):
    (url,) = button_urls(bot.command("login").json())
    state = query(url)["state"]
    r = bot.http.post(bot.url + "/facebook/login", data={"state": state, "csrf": "0" * 64})
    assert r.status_code == 403
    (other,) = button_urls(bot.command("login").json())
    page = bot.http.get(other.replace("https://fblink.test", bot.url))
    csrf = re.search(r"name='csrf' value='([0-9a-f]+)'", page.text)
    assert csrf is not None
    r = bot.http.post(bot.url + "/facebook/login", data={"state": state, "csrf": csrf.group(1)})
    assert r.status_code == 403  # another state's token does not confirm this one


def test_connected_dm_names_the_account_and_not_me_removes_everything_it_brought(bot, graph, vonage):
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    log_in(
        bot,
        graph,
        user="U1",
        fb_user="FB-B",
        name="Bea Admin",
        pages=[{"id": "201", "name": "Bea's Page", "tasks": ["MANAGE"]}],
    )
    dm = bot.slack.wait_message("Connected to Facebook as")
    assert "Bea Admin" in text_of(dm)
    (button,) = [b for b in buttons(dm) if b["action_id"] == "login_disconnect"]
    bot.command("link 201")
    bot.slack.wait_response("Linked")
    assert bot.store.get_pages(TEAM, "U1") and bot.store.reminders.page_token_of(TEAM, "U1", "201")
    row = bot.store.one("SELECT token_enc FROM links WHERE page_id = '201'")
    assert row is not None and row["token_enc"] is not None
    bot.click("login_disconnect", button["value"], user="U1")
    bot.slack.wait_response("Disconnected")
    assert bot.store.get_login(TEAM, "U1") is None
    assert bot.store.get_pages(TEAM, "U1") == []
    assert bot.store.one("SELECT token_enc FROM links WHERE page_id = '201'")["token_enc"] is None
    assert bot.store.one("SELECT COUNT(*) AS n FROM audit WHERE action = 'disconnect'")["n"] == 1


# -- keys are disclosed to admins only ---------------------------------------------------------

PAGES = [
    {"id": "301", "name": "Happy App Store", "tasks": ["MANAGE"]},
    {"id": "302", "name": "Shop", "tasks": ["MANAGE"]},
    {"id": "303", "name": "Shop app Deals", "tasks": ["MANAGE"]},
]


@pytest.fixture
def world(bot, graph, vonage):
    vonage.add_application(VONAGE_KEY, APP1, "Support")
    bot.store.add_key(TEAM, "secondkey9", "s2-secret", by="UADMIN", now=bot.clock.now())
    for user in ("U1", "UADMIN"):
        log_in(
            bot, graph, user=user, fb_user=f"FB-{user}", pages=PAGES, data_access_expires_at=bot.clock.now() + 200 * DAY
        )
    return bot


def test_unknown_key_names_no_other_key_to_a_non_admin(world):
    world.command("link Shop nosuchkey", user="U1")
    msg = text_of(world.slack.wait_response("Unknown Vonage API key"))
    assert VONAGE_KEY not in msg and "secondkey9" not in msg and "Ask an fblink admin" in msg
    world.command("link Shop nosuchkey", user="UADMIN")
    msg = text_of(
        world.slack.wait_for(lambda: [r for r in world.slack.responses if "Configured keys" in text_of(r)])[0]
    )
    assert VONAGE_KEY in msg and "secondkey9" in msg


def test_link_modal_lists_other_keys_to_admins_only(world):
    for user, expected in (("U1", [VONAGE_KEY]), ("UADMIN", [VONAGE_KEY, "secondkey9"])):
        world.slack.views.clear()
        assert world.command("link", user=user).status_code == 200
        (opened,) = world.slack.wait_for(lambda: [v for v in world.slack.views if v["method"] == "views.open"])
        key_block = next(b for b in opened["view"]["blocks"] if b.get("block_id") == "key")
        assert [o["value"] for o in key_block["element"]["options"]] == expected


# -- the "app" keyword -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['link "Happy App Store" app Support', "link Happy App Store app Support"])
def test_a_page_named_with_app_links_with_or_without_quotes(world, vonage, text):
    world.command(text)
    world.slack.wait_response("Linked *Happy App Store*")
    assert vonage.accounts[VONAGE_KEY]["301"]["applications"] == [APP1]


def test_a_command_that_reads_two_ways_asks_which(world, vonage):
    world.command("link Shop app Deals")
    msg = text_of(world.slack.wait_response("more than one way"))
    assert "Shop app Deals" in msg and "quotes" in msg
    assert "302" not in vonage.accounts.get(VONAGE_KEY, {}) and "303" not in vonage.accounts.get(VONAGE_KEY, {})


# -- verbatim ----------------------------------------------------------------------------------


def _text_objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            yield node
        for value in node.values():
            yield from _text_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item)


def test_names_with_urls_and_channels_are_shown_verbatim(bot, graph):
    name = "Sale at https://evil.example/x #general <!here> & more"
    log_in(bot, graph, pages=[{"id": "401", "name": name, "tasks": ["MANAGE"]}])
    bot.command("pages")
    listing = bot.slack.wait_response("Your Facebook Pages")
    objs = list(_text_objects(listing["blocks"]))
    assert objs and all(o.get("verbatim") is True for o in objs)
    assert "&lt;!here&gt; &amp; more" in text_of(listing)


# -- the body limit ----------------------------------------------------------------------------

SERVER = """
import sys, uvicorn
from bot.app import create_app
from bot.settings import Settings
s = Settings(_env_file=None, slack_bot_token="xoxb-x", slack_signing_secret=sys.argv[3],
             slack_api_url="http://127.0.0.1:9/api/", facebook_app_id="1", facebook_app_secret="s",
             facebook_graph_url="http://127.0.0.1:9", vonage_api_key="k", vonage_api_secret="s",
             vonage_api_url="http://127.0.0.1:9", fblink_public_url="http://127.0.0.1",
             fblink_database=sys.argv[2], fblink_secret_key=sys.argv[4], slack_app_token=None)
uvicorn.run(create_app(s, scheduler=False).asgi, host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""


def _hwm_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read peak memory")
@pytest.mark.parametrize("path", ["/slack/events", "/facebook/login"])
def test_a_huge_unsigned_body_costs_the_limit_not_the_body(tmp_path, path):
    """Issue 8 for the Slack route; issue 17 item 3 for the login confirmation POST (an anonymous
    400 MB chunked POST to it took the process from 96 MB to 899 MB)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(tmp_path / "db"), SIGNING_SECRET, Fernet.generate_key().decode()],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    url = f"http://127.0.0.1:{port}{path}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.1)
        before = _hwm_kb(proc.pid)
        # a declared size over the limit is refused before a byte of the body is read
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
                + b"Content-Length: 314572800\r\n\r\n{"
            )
            assert sock.recv(200).startswith(b"HTTP/1.1 413")
        chunk = b"x" * 2**20

        def chunks() -> Iterator[bytes]:
            for _ in range(300):  # 300 MiB, chunked: no Content-Length
                yield chunk

        try:
            r = httpx.post(url, content=chunks(), headers={"Content-Type": "application/json"}, timeout=60)
            assert r.status_code == 413
        except httpx.TransportError:
            pass  # the server answered 413 and closed while we were still sending: also a refusal
        grown_mb = (_hwm_kb(proc.pid) - before) / 1024
        assert grown_mb < 20, f"peak memory grew {grown_mb:.0f} MB for a 300 MiB body"
        # and the server still answers
        ts = str(int(time.time()))
        body = b"command=%2Ffblink&text=help&team_id=T1&user_id=U1"
        ok = httpx.post(
            f"http://127.0.0.1:{port}/slack/events",
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sign(body, ts),
            },
            timeout=10,
        )
        assert ok.status_code == 200 and "fblink" in ok.text
    finally:
        proc.terminate()
        proc.wait(10)


def test_not_me_on_an_old_dm_never_removes_the_login_connected_since(bot, graph):
    """Issue 17, item 8: the button is bound to the Facebook account its DM named."""
    log_in(
        bot,
        graph,
        user="U1",
        fb_user="FB-X",
        name="Xavier Old",
        pages=[{"id": "601", "name": "P", "tasks": ["MANAGE"]}],
    )
    old_dm = bot.slack.wait_message("Connected to Facebook as *Xavier Old*")
    (old_button,) = [b for b in buttons(old_dm) if b["action_id"] == "login_disconnect"]
    assert old_button["value"] == "FB-X" and "Xavier Old" in text_of(old_button["confirm"])
    log_in(
        bot,
        graph,
        user="U1",
        fb_user="FB-Y",
        name="Yvonne New",
        pages=[{"id": "602", "name": "Q", "tasks": ["MANAGE"]}],
    )
    new_dm = bot.slack.wait_message("Connected to Facebook as *Yvonne New*")
    bot.command("pages")
    bot.slack.wait_response("Your Facebook Pages")
    bot.slack.responses.clear()
    bot.click("login_disconnect", old_button["value"], user="U1", response="old-dm")
    answer = bot.slack.wait_response("already gone")
    assert "FB-X" in text_of(answer) and "nothing was disconnected" in text_of(answer)
    login = bot.store.get_login(TEAM, "U1")
    assert login is not None and login.fb_user_id == "FB-Y"  # Yvonne's login stays
    assert [p.page_id for p in bot.store.get_pages(TEAM, "U1")] == ["602"]
    assert bot.store.one("SELECT COUNT(*) AS n FROM audit WHERE action = 'disconnect'")["n"] == 0
    # a crafted value (another account, or the old unbound "disconnect") does nothing either
    bot.click("login_disconnect", "disconnect", user="U1", response="crafted", message_ts="1700000000.000200")
    bot.slack.wait_for(lambda: len(bot.slack.responses) >= 2)
    assert bot.store.get_login(TEAM, "U1") is not None
    # the current DM's button removes the current login
    (new_button,) = [b for b in buttons(new_dm) if b["action_id"] == "login_disconnect"]
    bot.click("login_disconnect", new_button["value"], user="U1", response="new-dm", message_ts="1700000000.000300")
    done = bot.slack.wait_response("Disconnected")
    assert "Yvonne New" in text_of(done)
    assert bot.store.get_login(TEAM, "U1") is None and bot.store.get_pages(TEAM, "U1") == []
