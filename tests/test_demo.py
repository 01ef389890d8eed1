"""`fblink demo` without a browser: start-up, isolation from real credentials and databases,
and the main story driven through the demo's own JSON API (the same calls its web client makes)."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.demo.run import Running, start_in_thread
from bot.demo.world import ACME, CHANNELS, CHANNELS2, TEAM2, VONAGE_KEY
from bot.demo.world import TEAM as DEMO_TEAM

ADMIN, PAGE_ADMIN, NOBODY = "UADMIN", "UPAGEADM", "UNOPAGE"
OPS = CHANNELS[0]["id"]


@pytest.fixture
def demo() -> Iterator[Running]:
    running = start_in_thread(out=io.StringIO())
    yield running
    running.stop()


@pytest.fixture
def web(demo: Running) -> Iterator[httpx.Client]:
    # the demo's own page: its fetches carry its Origin; one cookie jar for the whole 127.0.0.1 site
    with httpx.Client(base_url=demo.url, timeout=10, headers={"Origin": demo.url}) as client:
        yield client


def state(web: httpx.Client, user: str, channel: str = OPS) -> dict[str, Any]:
    r = web.get("/api/state", params={"user": user, "channel": channel})
    assert r.status_code == 200
    return r.json()


def wait_for(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fn()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def message_with(web: httpx.Client, user: str, text: str, channel: str = OPS) -> dict[str, Any]:
    return wait_for(
        lambda: next(
            (m for m in reversed(state(web, user, channel)["messages"]) if text in json.dumps(m, ensure_ascii=False)),
            None,
        )
    )


def command(web: httpx.Client, user: str, text: str, channel: str = OPS) -> None:
    assert web.post("/api/command", json={"user": user, "channel": channel, "text": text}).json()["ok"]


def url_button(msg: dict[str, Any]) -> dict[str, Any]:
    return next(el for b in msg["blocks"] if b["type"] == "actions" for el in b["elements"] if el.get("url"))


def confirm(demo: Running, web: httpx.Client, login_url: str) -> str:
    """fblink's own page: read whom the login binds to, press Continue (from that page's origin,
    with its cookie); returns Facebook's dialog URL."""
    assert login_url.startswith(demo.world.fblink_url + "/facebook/login?state=")
    page = web.get(login_url)
    assert page.status_code == 200 and "Slack user" in page.text
    csrf = re.search(r"name='csrf' value='([0-9a-f]+)'", page.text)
    assert csrf is not None
    state = parse_qs(urlsplit(login_url).query)["state"][0]
    r = web.post(
        demo.world.fblink_url + "/facebook/login",
        data={"state": state, "csrf": csrf.group(1)},
        headers={"Origin": demo.world.fblink_url},
    )
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def facebook_allow(demo: Running, web: httpx.Client, dialog_url: str, fb_user: str) -> httpx.Response:
    """What a person does in the simulated dialog: look at it, press Allow; the browser follows the redirect."""
    page = web.get(dialog_url)
    assert page.status_code == 200 and "requesting access" in page.text
    q = {k: v[-1] for k, v in parse_qs(urlsplit(dialog_url).query).items()}
    form = {**q, "fb_user": fb_user, "decision": "allow", "grant": q["scope"].split(",")}
    done = web.post(f"{demo.url}/v25.0/dialog/oauth/decide", data=form, follow_redirects=True)
    assert str(done.url).startswith(demo.world.fblink_url + "/facebook/callback")
    return done


def log_in(demo: Running, web: httpx.Client, user: str, fb_user: str) -> None:
    command(web, user, "/fblink login")
    button = url_button(message_with(web, user, "Continue with Facebook"))
    dialog = confirm(demo, web, button["url"])
    assert dialog.startswith(demo.url + "/v25.0/dialog/oauth?")
    assert facebook_allow(demo, web, dialog, fb_user).status_code == 200


def test_demo_starts_fast_and_ignores_real_credentials(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-real-looking",
        "SLACK_SIGNING_SECRET": "real",
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "x",
        "FACEBOOK_APP_SECRET": "real-secret",
        "VONAGE_API_KEY": "realkey1",
    }
    (tmp_path / ".env").write_text("VONAGE_API_SECRET=real-vonage\n")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        elapsed = time.monotonic() - started
        out = "".join(lines)
        assert "ignoring real credentials" in out
        for name in ("SLACK_BOT_TOKEN", "FACEBOOK_APP_SECRET", "VONAGE_API_KEY", "VONAGE_API_SECRET"):
            assert name in out
        assert "real-secret" not in out and "real-vonage" not in out  # names only, never values
        url = next(w for w in lines[1].split() if w.startswith("http://127.0.0.1:"))
        assert elapsed < 30, f"demo took {elapsed:.2f} s to start"  # a hang, not a speed check (bench/ times it)
        r = httpx.post(
            url + "/api/command",
            json={"user": ADMIN, "channel": OPS, "text": "/fblink help"},
            headers={"Origin": url},
            timeout=10,
        )
        assert r.json()["ok"]
        msgs = httpx.get(url + "/api/state", params={"user": ADMIN, "channel": OPS}).json()["messages"]
        assert msgs and "/fblink login" in json.dumps(msgs)  # fblink answered through the simulated Slack
    finally:
        proc.terminate()
        proc.wait(10)


def test_demo_refuses_a_database_that_fblink_serve_used(tmp_path: Path) -> None:
    db = tmp_path / "fblink.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE links (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--port", "0", "--database", str(db)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "refusing the database" in proc.stderr and "demo_marker" in proc.stderr
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert tables == {"links"}  # untouched


def test_demo_database_is_marked_and_reusable(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first = start_in_thread(database=str(db), out=io.StringIO())
    first.stop()
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "demo_marker" in tables and len(tables) > 1  # fblink's own schema beside the marker
    again = start_in_thread(database=str(db), out=io.StringIO())
    try:  # the workspaces are installed again: this run's fake Slack knows the tokens fblink holds
        with httpx.Client(base_url=again.url, timeout=10, headers={"Origin": again.url}) as web:
            command(web, NOBODY, "/fblink status")
            message_with(web, NOBODY, "No Pages are linked")
            assert web.post("/api/home", json={"user": NOBODY}).json()["ok"]
            assert wait_for(lambda: again.world.slack.home_of(NOBODY))  # published: the token is live
    finally:
        again.stop()


def test_command_round_trip_signed_like_slack(demo: Running, web: httpx.Client) -> None:
    command(web, NOBODY, "/fblink status")
    msg = message_with(web, NOBODY, "No Pages are linked")  # fblink's real answer, shown to its author only
    assert msg["ephemeral"]
    assert state(web, ADMIN)["messages"] == []  # ephemeral: the admin sees nothing
    command(web, NOBODY, "/fblnk status")
    assert "not a valid command" in json.dumps(state(web, NOBODY)["messages"][-1])
    settings = demo.world.fblink.services.settings
    for url in (
        settings.slack_api_url,
        settings.facebook_graph_url,
        settings.facebook_login_url,
        settings.vonage_api_url,
        settings.fblink_public_url,
    ):
        assert urlsplit(url).hostname == "127.0.0.1"  # nothing real is ever called
    sent = demo.world.slack.calls()  # fblink called the fake Slack Web API? (quick answers need not)
    # distributed mode: the demo's workspace was installed through "Add to Slack"; every call speaks with its token
    issued = {f"Bearer {t.value}" for t in demo.world.slack.oauth.live_tokens() if t.installer.team_id == DEMO_TEAM}
    web_api = [r for r in sent if r.path.startswith("/api/") and not r.path.endswith("/oauth.v2.access")]
    assert web_api and all(r.headers.get("authorization") in issued for r in web_api)


def test_link_then_clock_advance_and_sweep_post_a_reminder(demo: Running, web: httpx.Client) -> None:
    log_in(demo, web, ADMIN, "10001")
    message_with(web, ADMIN, "Avery Quinn", channel="DADMIN")  # the welcome DM after the callback
    command(web, ADMIN, "/fblink link")
    modal = wait_for(
        lambda: (m := state(web, ADMIN)["modal"]) and any(b.get("block_id") == "app" for b in m["blocks"]) and m
    )
    assert modal["title"]["text"] == "Link a Page"
    app_block = next(b for b in modal["blocks"] if b.get("block_id") == "app")
    app = next(o for o in app_block["element"]["options"] if "Acme Support Bot" in o["text"]["text"])
    page_opt = next(
        o
        for b in modal["blocks"]
        if b.get("block_id") == "page"
        for o in b["element"]["options"]
        if o["value"] == ACME["id"]
    )
    empty = web.post("/api/submit", json={"user": ADMIN, "values": {}}).json()
    assert empty["ok"] and state(web, ADMIN)["modal"]["errors"]  # fblink's own field errors
    values = {
        "page": {"page": {"type": "static_select", "selected_option": page_opt}},
        "key": {
            "link_modal_key": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": VONAGE_KEY}, "value": VONAGE_KEY},
            }
        },
        "app": {"app": {"type": "static_select", "selected_option": app}},
    }
    assert web.post("/api/submit", json={"user": ADMIN, "values": values}).json()["ok"]
    assert state(web, ADMIN)["modal"] is None
    message_with(web, ADMIN, "Linked", channel="DADMIN")
    accounts = demo.world.vonage.accounts[VONAGE_KEY]
    assert ACME["id"] in accounts and accounts[ACME["id"]]["applications"] == [app["value"]]

    assert web.post("/api/clock/advance", json={"days": 84}).json()["ok"]
    report = web.post("/api/clock/sweep", json={}).json()
    assert report["ok"] and report["report"], report
    reminder = message_with(web, PAGE_ADMIN, "expires in")  # in the link's channel, seen by everyone
    assert not reminder["ephemeral"] and "Re-link now" in json.dumps(reminder)


def test_facebook_dialog_cancel_and_declined_permission(demo: Running, web: httpx.Client) -> None:
    command(web, PAGE_ADMIN, "/fblink login")
    url = confirm(demo, web, url_button(message_with(web, PAGE_ADMIN, "Continue with Facebook"))["url"])
    q = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    cancelled = web.post(
        f"{demo.url}/v25.0/dialog/oauth/decide",
        data={**q, "fb_user": "10002", "decision": "cancel"},
        follow_redirects=True,
    )
    assert "error_reason=user_denied" in str(cancelled.history[0].headers["location"])
    assert "cancelled" in cancelled.text  # fblink's own page for a cancelled login

    command(web, PAGE_ADMIN, "/fblink login")
    url = confirm(demo, web, url_button(message_with(web, PAGE_ADMIN, "Continue with Facebook"))["url"])
    q = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    granted = [s for s in q["scope"].split(",") if s != "pages_messaging"]
    declined = web.post(
        f"{demo.url}/v25.0/dialog/oauth/decide",
        data={**q, "fb_user": "10002", "decision": "allow", "grant": granted},
        follow_redirects=True,
    )
    assert declined.status_code == 200
    dm = message_with(web, PAGE_ADMIN, "pages_messaging", channel="DPAGEADM")  # fblink asks for it again
    assert "auth_type=rerequest" in confirm(demo, web, url_button(dm)["url"])


def test_vonage_dashboard_shows_accounts_and_escapes_names(demo: Running, web: httpx.Client) -> None:
    demo.world.vonage.add_account(
        VONAGE_KEY,
        "999",
        "tok",
        name="<script>alert(1)</script>",
        applications=("aa11bb22-1111-4c2d-8e3f-0123456789ab",),
    )
    page = web.get("/vonage")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "Acme Support Bot" in page.text and "e5f6a7b8" in page.text


def test_business_portfolio_pages_are_listed_with_their_business(demo: Running, web: httpx.Client) -> None:
    log_in(demo, web, PAGE_ADMIN, "10002")  # Priya reaches two Pages only through "Northwind Agency"
    command(web, PAGE_ADMIN, "/fblink pages")
    listing = json.dumps(message_with(web, PAGE_ADMIN, "Your Facebook Pages"), ensure_ascii=False)
    assert "Northwind Outlet (agency client)" in listing and "via business portfolio *Northwind Agency*" in listing
    assert "Northwind HQ" in listing and "cannot be linked" in listing


# -- issue 17, item 4: demo and real databases never mix, checked from both sides ------------------


def _real_env(db: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FACEBOOK_", "VONAGE_", "FBLINK_"))},
        "SLACK_BOT_TOKEN": "xoxb-real-looking",
        "SLACK_SIGNING_SECRET": "real-signing-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "FACEBOOK_APP_ID": "1",
        "FACEBOOK_APP_SECRET": "s",
        "FACEBOOK_GRAPH_URL": "http://127.0.0.1:9",
        "VONAGE_API_KEY": "k",
        "VONAGE_API_SECRET": "s",
        "VONAGE_API_URL": "http://127.0.0.1:9",
        "FBLINK_PUBLIC_URL": "https://fblink.example",
        "FBLINK_DATABASE": str(db),
        "FBLINK_SECRET_KEY": Fernet.generate_key().decode(),
    }


def _fblink(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _tables(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_real_commands_refuse_a_demo_database(tmp_path: Path) -> None:
    """A demo database used by a real bot would have the demo's sweep swallow the real reminders."""
    db = tmp_path / "demo.db"
    start_in_thread(database=str(db), out=io.StringIO()).stop()
    before = _tables(db)
    for command in (["sweep", "--no-probe"], ["rotate-keys"]):
        proc = _fblink(command, tmp_path, _real_env(db))
        assert proc.returncode == 2, proc.stderr
        assert "refusing the database" in proc.stderr and str(db) in proc.stderr
        assert "`fblink demo` database" in proc.stderr and "FBLINK_DATABASE" in proc.stderr  # what to do
    assert _tables(db) == before  # untouched: no marker of a real use, nothing migrated


def test_the_demo_refuses_a_database_a_real_command_used(tmp_path: Path) -> None:
    db = tmp_path / "fblink.db"
    proc = _fblink(["sweep", "--no-probe"], tmp_path, _real_env(db))
    assert proc.returncode == 0, proc.stderr  # a real sweep on a new database: fine, and marked
    assert "fblink_real_use" in _tables(db)
    refused = _fblink(["demo", "--port", "0", "--database", str(db)], tmp_path)
    assert refused.returncode == 2
    assert str(db) in refused.stderr and "used by a real fblink" in refused.stderr
    # a demo database that a real command touched anyway (an older fblink did not check) is refused too
    demo_db = tmp_path / "demo.db"
    start_in_thread(database=str(demo_db), out=io.StringIO()).stop()
    conn = sqlite3.connect(demo_db)
    conn.execute("CREATE TABLE fblink_real_use (command TEXT PRIMARY KEY, last_at INTEGER NOT NULL)")
    conn.commit()
    conn.close()
    refused = _fblink(["demo", "--port", "0", "--database", str(demo_db)], tmp_path)
    assert refused.returncode == 2 and "used by a real fblink" in refused.stderr


# -- issue 17, item 12: only the demo's own page drives the demo -----------------------------------


def test_the_json_api_refuses_other_origins_and_content_types(demo: Running, web: httpx.Client) -> None:
    call = {"user": NOBODY, "channel": OPS, "text": "/fblink status"}
    raw = json.dumps(call)
    for headers, status in (
        ({"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ({"Origin": "null", "Content-Type": "application/json"}, 403),
        ({"Origin": demo.world.fblink_url, "Content-Type": "application/json"}, 403),  # fblink's port: another origin
        ({"Content-Type": "application/json", "Origin": ""}, 403),
        ({"Origin": demo.url, "Content-Type": "text/plain"}, 415),  # what a form or no-preflight fetch can send
        ({"Origin": demo.url, "Content-Type": "application/x-www-form-urlencoded"}, 415),
    ):
        r = httpx.post(demo.url + "/api/command", content=raw, headers=headers, timeout=10)
        assert r.status_code == status, (headers, r.text)
        assert r.json()["ok"] is False
    # a DNS-rebound name: same-origin by its own reckoning, but not a host the demo runs on
    port = urlsplit(demo.url).port
    rebound = httpx.post(
        demo.url + "/api/clock/advance",
        json={"days": 30},
        headers={"Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}"},
        timeout=10,
    )
    assert rebound.status_code == 403
    assert demo.world.clock.offset == 0
    assert state(web, NOBODY)["messages"] == []  # nothing reached fblink
    command(web, NOBODY, "/fblink status")  # the demo's own page still works
    message_with(web, NOBODY, "No Pages are linked")


def test_the_json_api_body_is_bounded(demo: Running, web: httpx.Client) -> None:
    huge = json.dumps({"user": ADMIN, "values": {"x": "y" * 300_000}})
    r = web.post("/api/submit", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def acme_has_a_link(demo: Running) -> None:
    """Acme's Page linked (straight into the store): what the second workspace must never see."""
    world, now = demo.world, demo.world.clock.now()
    linked = world.fblink.services.store.upsert_link(
        DEMO_TEAM,
        ACME["id"],
        now=now,
        page_name=ACME["name"],
        api_key=VONAGE_KEY,
        linked_by=ADMIN,
        channel_id=OPS,
        status="active",
        expires_at=now + 90 * 86400,
    )
    world.on_fblink_loop(linked).result(10)


def test_add_to_slack_installs_the_second_workspace_kept_apart(demo: Running, web: httpx.Client) -> None:
    """Globex Bikes is not installed until someone allows "Add to Slack"; then its own person is answered
    there, signed with its team_id, spoken to with its own token, and sees none of Acme."""
    gina, shop = "UGINA", CHANNELS2[0]["id"]
    assert [w["installed"] for w in web.get("/api/config").json()["workspaces"]] == [True, False]
    command(web, gina, "/fblink status", shop)
    message_with(web, gina, "not installed in this workspace", shop)
    assert "Allow" in web.get("/install").text
    foreign = web.post("/install/allow", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and not demo.world.installed(TEAM2)
    allowed = web.post("/install/allow", follow_redirects=False)
    assert allowed.status_code == 303 and allowed.headers["location"] == f"/?workspace={TEAM2}"
    assert [w["installed"] for w in web.get("/api/config").json()["workspaces"]] == [True, True]
    tokens = {t.installer.team_id: t.value for t in demo.world.slack.oauth.live_tokens()}
    assert set(tokens) == {DEMO_TEAM, TEAM2} and tokens[DEMO_TEAM] != tokens[TEAM2]

    acme_has_a_link(demo)
    command(web, ADMIN, "/fblink status")
    message_with(web, ADMIN, "Acme Coffee")  # Acme sees its link
    command(web, gina, "/fblink status", shop)
    msg = message_with(web, gina, "No Pages are linked", shop)
    assert "Acme Coffee" not in json.dumps(msg, ensure_ascii=False)
    seen = state(web, gina, shop)
    assert set(seen["counts"]) == {shop, "DGINA"}  # Globex's channels and DM only: no #ops, no #marketing
    assert web.post("/api/home", json={"user": gina}).json()["ok"]
    published = wait_for(lambda: demo.world.slack.calls(path="/api/views.publish"))
    assert published[-1].headers["authorization"] == f"Bearer {tokens[TEAM2]}"
