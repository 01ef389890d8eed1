"""Issue 19 item 5: SIGTERM drains a real `fblink serve --role web` process. Readiness turns 503
first (the listener still open for --drain-delay), a request in flight and an after-ack task held
by a fake both finish once the fake answers, and the process exits 0 within --grace; work still
held when the grace runs out is cut, and the process still exits on time."""

from __future__ import annotations

import threading
import time

import httpx

from bot.fakes.graph import FakeGraph
from bot.fakes.slack import FakeSlack
from bot.fakes.vonage import FakeVonage
from tests.flows import button_urls
from tests.processes import Process, start

ACCOUNTS = "GET /beta/chatapp-accounts"
NO_ACCOUNTS = {"page_size": 20, "page": 1, "total_items": 0, "_embedded": []}  # Vonage's list, empty
ADA = {"ok": True, "user": {"id": "U1", "name": "ada", "real_name": "Ada Lovelace", "tz": "Europe/London"}}


def open_login_page(web: Process, slack: FakeSlack, out: list[httpx.Response]) -> threading.Thread:
    """`/fblink login`, then a browser opens the link: fblink asks Slack who U1 is before answering."""
    ack = web.command("login")
    (url,) = button_urls(ack.json())
    page_url = web.url + url[url.index("/facebook/login") :]
    thread = threading.Thread(target=lambda: out.append(httpx.get(page_url, timeout=30)), daemon=True)
    thread.start()
    slack.wait_for(lambda: slack.calls("GET", "/api/users.info"))  # in flight, held by the fake
    return thread


def start_sync(web: Process, slack: FakeSlack, vonage: FakeVonage) -> None:
    """`/fblink sync`: acked at once, then a tracked task asks Vonage for the Page accounts (held)."""
    ack = web.command("sync", response_url=slack.response_url("sync", "C1", "U1"))
    assert ack.status_code == 200 and "Syncing with Vonage" in ack.text
    vonage.wait_for(lambda: vonage.calls("GET", "/beta/chatapp-accounts"))


def wait_not_ready(web: Process) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        r = web.get("/readyz")
        if r.status_code == 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.02)


def test_sigterm_flips_readiness_then_finishes_the_request_and_task_in_flight(
    make_settings, slack: FakeSlack, graph: FakeGraph, vonage: FakeVonage
) -> None:
    settings = make_settings()
    web = start(settings, "serve", "--role", "web", "--grace", "8", "--drain-delay", "1")
    held = threading.Event()
    slack.fail("GET /api/users.info", hold=held, status=200, body=ADA)
    vonage.fail(ACCOUNTS, hold=held, status=200, body=NO_ACCOUNTS)
    try:
        pages: list[httpx.Response] = []
        browser = open_login_page(web, slack, pages)
        start_sync(web, slack, vonage)
        assert web.get("/readyz").json() == {"ready": True, "role": "web", "draining": False}

        web.proc.terminate()
        signalled = time.monotonic()
        not_ready = wait_not_ready(web)  # a load balancer polling readiness now takes the replica out
        assert not_ready.status_code == 503 and not_ready.json() == {"ready": False, "role": "web", "draining": True}
        assert web.get("/healthz").json()["draining"] is True  # alive, and it says why it is not ready
        held.set()  # the fakes answer the request and the task that were in flight

        browser.join(10)
        assert pages and pages[0].status_code == 200
        assert "Ada Lovelace" in pages[0].text and "Continue to Facebook" in pages[0].text
        assert ":arrows_clockwise: Synced with Vonage." in slack.wait_response("Synced with Vonage")["text"]
        code = web.wait(timeout=15)
        took = time.monotonic() - signalled
    finally:
        held.set()
        if web.proc.poll() is None:
            web.proc.kill()
    assert code == 0, web.err
    assert took < 8, took  # within --grace
    assert "task(s) still running" not in web.err
    try:
        httpx.get(web.url + "/healthz", timeout=1)
        raise AssertionError("the port still answers after exit")
    except httpx.TransportError:
        pass


def test_work_still_held_when_the_grace_runs_out_is_cut_and_the_process_exits_on_time(
    make_settings, slack: FakeSlack, graph: FakeGraph, vonage: FakeVonage
) -> None:
    settings = make_settings(fblink_http_timeout=20, fblink_retry_total=30)  # no client gives up first
    web = start(settings, "serve", "--role", "web", "--grace", "3")
    never = threading.Event()  # the fakes hold their answers past the grace (set only at the end)
    slack.fail("GET /api/users.info", hold=never, status=200, body=ADA)
    vonage.fail(ACCOUNTS, hold=never, status=200, body=NO_ACCOUNTS)
    try:
        pages: list[httpx.Response] = []
        open_login_page(web, slack, pages)
        start_sync(web, slack, vonage)
        web.proc.terminate()
        signalled = time.monotonic()
        code = web.wait(timeout=15)
        took = time.monotonic() - signalled
    finally:
        never.set()
        if web.proc.poll() is None:
            web.proc.kill()
    assert code == 0, web.err
    assert took < 3 + 1, took  # the grace, plus the interpreter's exit
    assert "1 task(s) still running at the end of the grace period; cancelled" in web.err, web.err
    assert not any("Synced with Vonage" in r.get("text", "") for r in slack.responses)
