"""Issue 17, items 9 and 10: a Page change re-checks, under its lease, what it read before it,
and checks the lease again right before each Vonage call that deletes something.

A second process is played by a second SQLite connection to the same database file holding
its write lock, or by taking the Page's lease under another owner, as another fblink process would."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import httpx
import pytest

from tests import pg
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import buttons, log_in, text_of

DAY = 86400
PAGES = [{"id": "101", "name": "Acme Coffee", "category": "Cafe", "tasks": ["MANAGE", "MESSAGING"]}]
APP1 = "aaaaaaaa-0000-4000-8000-000000000001"
APP2 = "aaaaaaaa-0000-4000-8000-000000000002"


@pytest.fixture
def world(bot, graph, vonage):  # type: ignore[no-untyped-def]
    vonage.add_application(VONAGE_KEY, APP1, "Support Bot")
    vonage.add_application(VONAGE_KEY, APP2, "Sales Bot")
    for user in ("U1", "U2"):
        log_in(bot, graph, user=user, fb_user=f"FB-{user}", pages=PAGES, data_access_expires_at=START + 200 * DAY)
    bot.slack.messages.clear()
    return bot


def _other_process(bot) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    return sqlite3.connect(bot.services.settings.fblink_database, timeout=30, isolation_level=None)


def _wait_until_blocked(bot) -> None:  # type: ignore[no-untyped-def]
    """fblink's event loop waits for the write lock (its health check stops answering), or, should
    the store not block the loop, give the change a moment to reach its lease."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            httpx.get(bot.url + "/healthz", timeout=0.3)
        except httpx.TimeoutException:
            return
        time.sleep(0.05)
    time.sleep(0.5)


@pytest.mark.skipif(pg.engine_under_test() != "sqlite", reason="holds SQLite's write lock as the other process")
def test_unlink_checks_permission_again_on_the_row_under_the_lease(world, vonage):
    """U2 linked the Page and asks to unlink it; before U2's change gets the lease, U1 re-links the
    Page (another process). Under the lease the row says U1 linked it: U2 may not remove it."""
    world.command("link 101", user="U2")
    world.slack.wait_response("Linked *Acme Coffee*")
    assert world.store.get_link(TEAM, "101").linked_by == "U2"
    world.slack.responses.clear()
    other = _other_process(world)
    other.execute("BEGIN IMMEDIATE")  # the other process is writing: fblink waits for its lease
    try:
        # no trigger_id: the command's first write is its lease, after it read the link
        world.command("unlink 101", user="U2", fields={"trigger_id": ""})
        _wait_until_blocked(world)
        other.execute("UPDATE links SET linked_by = 'U1', linked_at = linked_at + 1 WHERE page_id = '101'")
        other.execute("COMMIT")
    finally:
        other.close()
    answer = text_of(world.slack.wait_response("can unlink"))
    assert "Only <@U1> or an fblink admin" in answer
    assert "101" in vonage.accounts[VONAGE_KEY]  # nothing deleted at Vonage
    assert not vonage.calls("DELETE", "/beta/chatapp-accounts/messenger/101")
    assert world.store.get_link(TEAM, "101").linked_by == "U1"


def test_a_replace_whose_lease_was_taken_over_deletes_nothing_at_vonage(world, vonage, clock):
    """The Replace waits for Vonage past its lease; another process takes the Page. The change
    must not unlink the application at Vonage (the other change owns the Page now)."""
    world.command("link 101 app Support Bot", user="U1")
    world.slack.wait_response("Linked *Acme Coffee*")
    world.command("link 101 app Sales Bot", user="U1")
    prompt = world.slack.wait_response("Replace it with")
    (replace,) = [b for b in buttons(prompt) if b["action_id"] == "link_replace"]
    assert json.loads(replace["value"])["c"] == APP1
    account = vonage._account_json(VONAGE_KEY, vonage.accounts[VONAGE_KEY]["101"])
    held = threading.Event()
    path = "GET /beta/chatapp-accounts/messenger/101"
    vonage.fail(path, hold=held, status=200, body=account, times=1)
    world.slack.responses.clear()

    def reads() -> int:
        return len([c for c in vonage.calls() if f"{c.method} {c.path}" == path])

    before = reads()
    world.click("link_replace", replace["value"], user="U1")
    vonage.wait_for(lambda: reads() > before, timeout=10)  # the Replace is waiting for Vonage, lease held
    clock.advance(3600)  # the Replace's lease has run out
    # another process takes the Page (its own owner, through the store's own lease statement)
    assert world.store.acquire_lease(TEAM, "101", "other-process:1", now=clock.now(), ttl=600)
    held.set()
    answer = text_of(world.slack.wait_response("took over"))
    assert "Another change to *Acme Coffee*" in answer
    assert not [c for c in vonage.calls() if c.method == "DELETE"]  # no application unlinked at Vonage
    assert vonage.accounts[VONAGE_KEY]["101"]["applications"] == [APP1]
    assert world.store.get_link(TEAM, "101").application_id == APP1
