"""Issue 9 items 1 and 3: Page work is serialised across processes that share one database, an
undo never removes what another process created and recorded, and ids are matched as ids.

"Another process" is a second app built by ``start_app`` on the same FBLINK_DATABASE (and the
same fake clock), or a second Store on the same file: nothing in fblink is mocked.
"""

from __future__ import annotations

import threading
import time

import pytest
from cryptography.fernet import Fernet

from bot.crypto import Vault
from tests.conftest import START, TEAM, VONAGE_KEY
from tests.flows import log_in
from tests.linkstate_world import ACCOUNT, APP1, DAY, PAGES, PERSISTENT, answer, audit_rows, setup, vonage_apps
from tests.store_sync import SyncStore, sync_store

FAST = dict(fblink_http_timeout=2.0, fblink_retry_total=3, fblink_retry_attempts=2)


@pytest.fixture
def two(start_app, graph, vonage):  # type: ignore[no-untyped-def]
    """Two serving processes on one database; U1 (FB1) and U2 (FB2) both manage Page 101."""
    a = start_app(**FAST)
    b = start_app(**FAST)
    assert a.services.settings.fblink_database == b.services.settings.fblink_database
    setup(a, graph, vonage)
    log_in(b, graph, user="U2", fb_user="FB2", name="Grace", pages=PAGES[:1], data_access_expires_at=START + 200 * DAY)
    b.slack.wait_message("Connected to Facebook")
    a.slack.responses.clear()
    return a, b


def arrived(fake, method: str, path: str) -> None:
    """Wait until the fake has received the request (it may be held there)."""
    fake.wait_for(lambda: fake.calls(method, path))


def test_concurrent_first_link_from_two_processes(two, vonage):
    a, b = two
    held = threading.Event()  # A's create is answered only after B has had its answer
    vonage.fail(
        f"POST {ACCOUNT}",
        hold=held,
        status=201,
        times=1,
        body={"external_id": "101", "name": "Acme Coffee", "applications": []},
    )
    a.command("link 101", response="a")
    arrived(vonage, "POST", ACCOUNT)
    b.command("link 101", user="U2", response="b")
    busy = answer(b, "already in progress", name="b")
    assert "try again" in busy
    held.set()
    answer(a, "Linked *Acme Coffee*", name="a")
    assert len(vonage.calls("POST", ACCOUNT)) == 1
    rows = a.store.select("SELECT linked_by FROM links WHERE team_id = ? AND page_id = '101'", [TEAM])
    assert rows == [{"linked_by": "U1"}]


@pytest.mark.parametrize("lost", [True, False], ids=["create-unanswered", "create-conflict"])
def test_lost_answer_undo_spares_the_account_another_process_recorded(two, vonage, graph, lost):
    """A's lease runs out while Vonage is slow; B links the Page and records it; A's create then goes
    unanswered (or meets B's account: 409). A must neither delete nor overwrite B's account, and
    must tell its user what happened."""
    a, b = two
    held = threading.Event()  # A's look-up is answered only once B has linked the Page
    vonage.fail(
        f"GET {ACCOUNT}/101",
        hold=held,
        status=404,
        times=1,
        headers={"Content-Type": "application/problem+json"},
        body={"type": "https://developer.nexmo.com/api-errors#not-found", "title": "Not Found"},
    )
    a.command("link 101", response="a")
    arrived(vonage, "GET", f"{ACCOUNT}/101")
    a.clock.advance(600)  # A's lease has expired: a lease bounds a stuck process, it does not stop it
    b.command("link 101", user="U2", response="b")
    answer(b, "Linked *Acme Coffee*", name="b")
    if lost:
        vonage.fail(f"POST {ACCOUNT}", delay=2.5, status=504, times=PERSISTENT)  # A's create: no answer in time
    held.set()
    text = answer(a, "took over while this one waited", name="a")
    assert "try again" in text
    assert vonage.calls("DELETE") == [] and vonage.calls("PATCH") == []
    assert vonage.accounts[VONAGE_KEY]["101"]["access_token"] == graph.page_token("FB2", "101")
    link = a.store.get_link(TEAM, "101")
    assert link.linked_by == "U2" and link.status == "active"
    assert audit_rows(a, "101")[-1][:2] == ("link", "U1")


def test_undo_spares_an_account_a_process_that_took_the_lease_over_made(two, vonage, graph):
    """A's lease runs out while Vonage is slow; B takes the lease over and its create lands, but B has
    not recorded it yet when A's own create goes unanswered. A's undo would delete B's account."""
    a, b = two
    vonage.fail(f"POST {ACCOUNT}", delay=2.5, status=504, times=PERSISTENT)  # longer than A's 2 s timeout
    a.command("link 101", response="a")
    arrived(vonage, "POST", ACCOUNT)
    a.clock.advance(600)
    assert b.store.acquire_lease(TEAM, "101", f"{b.services.owner}:1", now=a.clock.now(), ttl=120)
    vonage.add_account(VONAGE_KEY, "101", graph.page_token("FB2", "101"), name="Acme Coffee")  # B's create landed
    text = answer(a, "took over while this one waited", name="a")
    assert "try again" in text
    assert vonage.calls("DELETE") == [] and "101" in vonage.accounts[VONAGE_KEY]
    assert a.store.get_link(TEAM, "101") is None  # B records it when its change completes


@pytest.mark.parametrize("taker", ["another process", "this process"])
@pytest.mark.parametrize("change", ["link", "relink", "unlink"])
def test_a_change_that_lost_its_lease_records_nothing_over_the_new_holder(two, vonage, graph, change, taker):
    """A's lease runs out while Vonage is slow and another change takes it over, in process B or
    in A's own process; then A's call succeeds. The check that the lease is still this change's
    and its write are one transaction, so A records nothing: the new holder, still running,
    records its own outcome. A's user is told, and it is audited."""
    a, b = two
    new_holder = b if taker == "another process" else a
    if change != "link":
        a.command("link 101", response="first")
        answer(a, "Linked *Acme Coffee*", name="first")
    before = a.store.get_link(TEAM, "101")
    held = threading.Event()
    route = {"link": f"POST {ACCOUNT}", "relink": f"PATCH {ACCOUNT}/101", "unlink": f"DELETE {ACCOUNT}/101"}[change]
    body = {"external_id": "101", "name": "Acme Coffee", "applications": []}
    status = {"link": 201, "relink": 200, "unlink": 204}[change]
    vonage.fail(route, hold=held, status=status, body=None if change == "unlink" else body)
    a.command(f"{change} 101", response="a")
    arrived(vonage, *route.split(" "))
    a.clock.advance(600)  # A's lease has expired
    assert new_holder.store.acquire_lease(TEAM, "101", f"{new_holder.services.owner}:1", now=a.clock.now(), ttl=120)
    held.set()
    text = answer(a, "took over while this one waited", name="a")
    assert "try again" in text
    assert a.store.get_link(TEAM, "101") == before  # nothing recorded over B's change
    if change != "unlink":
        assert vonage.calls("DELETE") == []  # nor undone what may now be B's
    assert audit_rows(a, "101")[-1] == (change, "U1", "error: Busy")


def test_a_lease_held_by_another_process_is_honoured(two, vonage):
    a, b = two
    assert b.store.acquire_lease(TEAM, "101", "other-process:1", now=a.clock.now(), ttl=120)
    a.command("link 101", response="a")
    answer(a, "already in progress", name="a")
    assert vonage.calls("POST") == [] and a.store.get_link(TEAM, "101") is None
    a.clock.advance(121)  # an expired lease (its process died) is taken over
    a.command("link 101", response="a2")
    answer(a, "Linked", name="a2")
    assert b.store.select("SELECT owner FROM page_leases") == []  # released after the change


def test_first_insert_from_two_stores_never_raises(tmp_path):
    path = str(tmp_path / "race.db")
    vault = Vault(Fernet.generate_key().decode())
    stores = [sync_store(path, vault), sync_store(path, vault)]
    errors: list[BaseException] = []
    pages = [f"p{i}" for i in range(150)]
    barrier = threading.Barrier(2)

    def work(store: SyncStore, who: str) -> None:
        for page_id in pages:
            barrier.wait()
            try:
                store.upsert_link(
                    TEAM,
                    page_id,
                    now=START,
                    page_name=f"Page {page_id}",
                    api_key=VONAGE_KEY,
                    linked_by=who,
                    status="active",
                )
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, f"U{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert stores[0].count_links(TEAM) == len(pages)
    for s in stores:
        s.close()


def test_button_ids_never_match_page_names(start_app, graph, vonage):
    """U2 manages a Page *named* "101"; the button and command naming Page id 101 must not touch it."""
    bot = start_app()
    setup(bot, graph, vonage)
    bot.command("link 101 app Support Bot", response="x")
    answer(bot, "Linked *Acme Coffee*", name="x")
    before = bot.store.get_link(TEAM, "101")
    log_in(
        bot,
        graph,
        user="U2",
        fb_user="FB2",
        name="Eve",
        pages=[{"id": "777", "name": "101", "category": "Shop", "tasks": ["MANAGE"]}],
        data_access_expires_at=START + 200 * DAY,
    )
    bot.click("reminder_relink", "101", user="U2", response="click")
    answer(bot, "does not list *Acme Coffee*", name="click")
    bot.command("relink 101", user="U2", response="cmd")
    answer(bot, "does not list *Acme Coffee*", name="cmd")
    bot.click("page_link", "101", user="U2", response="page")
    answer(bot, "don't manage", name="page")
    time.sleep(0.2)
    assert "777" not in vonage.accounts[VONAGE_KEY]
    assert bot.store.get_link(TEAM, "777") is None
    assert bot.store.get_link(TEAM, "101") == before and vonage_apps(vonage, "101") == [APP1]


def test_lease_outlasts_the_slowest_operation(start_app, graph, vonage):
    bot = start_app(fblink_retry_total=30, fblink_http_timeout=2)
    setup(bot, graph, vonage)
    held = threading.Event()
    vonage.fail(
        f"POST {ACCOUNT}",
        hold=held,
        status=201,
        times=1,
        body={"external_id": "101", "name": "Acme Coffee", "applications": []},
    )
    bot.command("link 101", response="slow")
    arrived(vonage, "POST", ACCOUNT)
    (lease,) = bot.store.select("SELECT owner, expires_at FROM page_leases")
    held.set()
    assert lease["expires_at"] - bot.clock.now() == 8 * (30 + 2)  # eight Vonage calls, each with its retries
    answer(bot, "Linked *Acme Coffee*", name="slow")
    assert bot.store.select("SELECT owner FROM page_leases") == []
    assert lease["owner"].startswith(bot.services.owner)
    answer(bot, "Linked", name="slow")
    assert bot.store.select("SELECT owner FROM page_leases") == []
