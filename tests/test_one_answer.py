"""Issue 21 items 4, 7, 8 and 9 as a person meets them in the demo: one message per command (the
"working" line replaced by the answer), the login page naming the person acting, and wrong words
explained."""

from __future__ import annotations

import io
import time

import httpx

from tests.test_demo import ADMIN, PAGE_ADMIN, command, demo, log_in, message_with, state, url_button, web  # noqa: F401
from tests.test_login_page_look import definitions, parse


def fblink_messages(web: httpx.Client, user: str) -> list[dict]:
    """What fblink showed this person in #ops (Slack's own notes left out)."""
    return [m for m in state(web, user)["messages"] if m.get("user") != "USLACKBOT"]


def test_the_working_line_is_replaced_by_the_answer(demo, web):
    log_in(demo, web, ADMIN, "10001")
    before = len(fblink_messages(web, ADMIN))
    command(web, ADMIN, "/fblink pages")
    message_with(web, ADMIN, "Your Facebook Pages")
    time.sleep(0.3)  # nothing else arrives after the answer
    after = fblink_messages(web, ADMIN)
    assert len(after) == before + 1, [m["text"] for m in after[before:]]
    assert "Your Facebook Pages" in after[-1]["text"]  # in the working line's place
    assert not [m for m in after if "Fetching" in str(m)]


def test_a_refusal_shows_no_working_line(demo, web):
    command(web, PAGE_ADMIN, "/fblink pages")  # Priya has not logged in yet
    prompt = message_with(web, PAGE_ADMIN, "not logged in to Facebook")
    assert url_button(prompt)
    assert not [m for m in state(web, PAGE_ADMIN)["messages"] if "Fetching" in str(m)]


def test_the_login_page_names_the_person_acting(demo, web):
    command(web, PAGE_ADMIN, "/fblink login")
    button = url_button(message_with(web, PAGE_ADMIN, "Continue with Facebook"))
    page = httpx.get(button["url"], timeout=10)
    assert definitions(parse(page.text))["Slack user"] == "Priya Raman (UPAGEADM)"
    assert "Avery" not in page.text


def test_the_clock_control_says_what_it_did_and_refuses_zero_and_negatives(demo, web):
    for bad in (0, -3, "soon"):
        r = web.post("/api/clock/advance", json={"days": bad}).json()
        assert not r["ok"] and "from 1 to 3650" in r["error"]
    assert demo.world.clock.offset == 0  # nothing moved
    r = web.post("/api/clock/advance", json={"days": 84}).json()
    assert r["ok"] and "84 days forward" in r["said"] and "expires in 6 days" in r["said"]
    assert "open the channel" in r["said"]


def test_the_demo_suggests_a_free_port_and_deletes_its_temporary_database(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from bot.demo.run import start_in_thread

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "bot.cli", "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert out.returncode == 2 and f"port {port} is taken, try `fblink demo --port " in out.stderr

    running = start_in_thread(out=io.StringIO())
    db = running.world.db_path
    assert os.path.exists(db)
    running.stop()
    assert not os.path.exists(db) and not os.path.exists(os.path.dirname(db))


def test_the_vonage_dashboard_can_change_and_delete_a_link_for_sync_to_find(demo, web):
    from bot.demo.world import ACME, VONAGE_KEY

    log_in(demo, web, ADMIN, "10001")
    command(web, ADMIN, f"/fblink link {ACME['id']} app Acme Support Bot")
    message_with(web, ADMIN, "Linked")
    other = "cc33dd44-2222-4c2d-8e3f-0123456789ab"  # "Campaigns & Offers <EU>"
    page = web.post(
        "/vonage/application", data={"key": VONAGE_KEY, "page": ACME["id"], "app": other}, follow_redirects=True
    )
    assert page.status_code == 200 and "Campaigns &amp; Offers" in page.text  # back on the dashboard
    command(web, ADMIN, "/fblink sync")
    assert "Application changed in the Vonage dashboard" in str(message_with(web, ADMIN, "Synced with Vonage"))
    web.post("/vonage/delete", data={"key": VONAGE_KEY, "page": ACME["id"]})
    assert ACME["id"] not in demo.world.vonage.accounts[VONAGE_KEY]
    command(web, ADMIN, "/fblink sync")
    assert "Deleted at Vonage" in str(message_with(web, ADMIN, "marked gone"))
