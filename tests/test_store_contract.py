"""The store's contract, on both engines in every run: what the handlers and the sweep rely on.

Each test runs once on SQLite and once on a real PostgreSQL (a fresh schema each); without
a server the PostgreSQL half skips, saying how to run it (under CI it fails instead).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.clock import DAY, Clock, FixedClock
from bot.crypto import Vault
from bot.graph import Page
from bot.store import FacebookLogin, SchemaError, Store, open_engine
from tests import pg
from tests.store_sync import LoopThread, SyncStore, sync_store

KEY = Fernet.generate_key().decode()
T0 = 1_790_000_000
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database on each engine: a SQLite file, or a migrated PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "contract.db")
        return
    with pg.fresh_schema("c") as url:
        pg.migrate(url)
        yield url


@pytest.fixture
def store(where) -> Iterator[SyncStore]:  # type: ignore[no-untyped-def]
    s = sync_store(where, Vault(KEY), clock=FixedClock(T0))
    yield s
    s.close()


def tick(store: SyncStore, t: int) -> int:
    """Move the store's clock to ``t`` and return it: leases and claims on PostgreSQL read the
    server's clock shifted by the app clock's, so a test moves time through the clock."""
    store.clock.at = t
    return t


def link(store: SyncStore, page: str = "101", **fields: object):  # type: ignore[no-untyped-def]
    values = dict(page_name=f"Page {page}", api_key="k1", status="active", linked_by="U1", channel_id="C1")
    values.update(fields)
    return store.upsert_link("T1", page, now=T0, **values)


# -- links, logins, keys ---------------------------------------------------------------
def test_links_upsert_read_list_and_count(store):
    a = link(store, "101", expires_at=T0 + 5 * DAY)
    b = link(store, "102", page_name="alpha", expires_at=None)
    c = link(store, "103", page_name="Beta", expires_at=T0 + 2 * DAY)
    assert a.id != b.id and store.get_link("T1", "101") == a
    assert store.get_link_by_id(c.id) == c
    assert [x.page_id for x in store.list_links("T1")] == ["103", "101", "102"]  # soonest expiry, unknown last
    assert [x.page_id for x in store.list_links("T1", limit=1, offset=1)] == ["101"]
    assert store.count_links("T1") == 3 and store.count_links("T2") == 0
    page, total = store.links_page("T1", limit=2, offset=1)
    assert [x.page_id for x in page] == ["101", "102"] and total == 3
    assert store.links_page("T1", limit=2, offset=5) == ([], 3) and store.links_page("T2", limit=2) == ([], 0)
    again = link(store, "101", application_id="app-1")
    assert again.id == a.id and again.application_id == "app-1" and again.expires_at == a.expires_at
    store.delete_link("T1", "101")
    assert store.get_link("T1", "101") is None


def test_status_page_reads_links_total_linkers_and_the_viewers_pages_in_one_statement(store):
    """What the status view judges a page of links by: each linker's scopes (a lost permission
    breaks the link) and which Pages the viewer may re-link, never another workspace's."""
    link(store, "101", expires_at=T0 + 5 * DAY, linked_by="U1")
    link(store, "102", page_name="alpha", expires_at=None, linked_by="U2")
    link(store, "103", page_name="Beta", expires_at=T0 + 2 * DAY, linked_by=None)
    store.upsert_link("T2", "101", now=T0, page_name="Other", api_key="k9", status="active", linked_by="U1")
    store.save_login(FacebookLogin("T1", "U1", "FB1", "Ada", "EAA-1", None, T0 + DAY, ("pages_show_list",)), now=T0)
    store.save_login(FacebookLogin("T2", "U2", "FB2", "Bo", "EAA-2", None, T0 + DAY, ("elsewhere",)), now=T0)
    pages = [Page("101", "Zed", "c", ("MANAGE",), "t1"), Page("102", "alpha", "c", ("ANALYZE",), "t2")]
    store.save_pages("T1", "UV", [*pages, Page("103", "Beta", "c", ("MESSAGING",), "")], now=T0)
    store.save_pages("T2", "UV", [Page("102", "alpha", "c", ("MANAGE",), "t3")], now=T0)
    page = store.status_page("T1", "UV", limit=10)
    assert [x.page_id for x in page.links] == ["103", "101", "102"] and page.total == 3
    assert page.linker_scopes == {"U1": ("pages_show_list",)}  # U2 has a login only in T2
    assert page.viewer_linkable == {"101"}  # 102: no task that links; 103: no Page token
    later = store.status_page("T1", "UV", limit=2, offset=1)
    assert [x.page_id for x in later.links] == ["101", "102"] and later.total == 3
    assert [x.page_id for x in store.status_page("T1", "", limit=2).links] == ["103", "101"]
    assert store.status_page("T1", "", limit=2).viewer_linkable == set()
    past = store.status_page("T1", "UV", limit=2, offset=5)
    assert (past.links, past.total, past.viewer_linkable) == ([], 3, set())
    other = store.status_page("T2", "UV", limit=10)
    assert [x.page_name for x in other.links] == ["Other"] and other.linker_scopes == {}
    assert store.status_page("T3", "UV", limit=10).total == 0


def test_link_state_counts(store):
    link(store, "1", expires_at=T0 + DAY)
    link(store, "2", expires_at=T0 - 1)
    link(store, "3", expires_at=None)
    link(store, "4", status="gone")
    link(store, "5", broken_at=T0, expires_at=T0 + DAY)
    counts = store.link_state_counts(T0)
    assert counts == {"active": 2, "expired": 1, "broken": 1, "gone": 1, "unknown_expiry": 1}


def test_logins_pages_and_keys_are_encrypted_and_read_back(store, where):
    store.save_login(FacebookLogin("T1", "U1", "FB1", "Ada", "EAA-user-secret", None, T0 + DAY, ("a", "b")), now=T0)
    store.save_pages(
        "T1",
        "U1",
        [Page("101", "Zed", "c", ("MANAGE",), "EAA-page-secret"), Page("102", "alpha", "c", (), "EAA-2")],
        now=T0,
    )
    store.add_key("T1", "k2", "vonage-secret", by="U1", now=T0)
    assert store.get_login("T1", "U1").token == "EAA-user-secret"
    assert [p.name for p in store.get_pages("T1", "U1")] == ["alpha", "Zed"]  # case-insensitive order
    assert store.key_secret("T1", "k2") == "vonage-secret" and [k["api_key"] for k in store.list_keys("T1")] == ["k2"]
    raw = json.dumps(
        store.select("SELECT * FROM fb_users")
        + store.select("SELECT * FROM fb_pages")
        + store.select("SELECT * FROM vonage_keys"),
        default=str,
    )
    for secret in ("EAA-user-secret", "EAA-page-secret", "vonage-secret"):
        assert secret not in raw
    assert store.login_scopes("T1", ["U1", "U9"]) == {"U1": ("a", "b")}
    linkable = {p.page_id for p in store.get_pages("T1", "U1") if p.can_link}
    assert store.linkable_page_ids("T1", "U1") == linkable == {"101"}  # 102 has no task that can link
    store.save_pages(
        "T1", "U2", [Page("103", "No token", "c", ("MANAGE",), ""), Page("104", "Ok", "c", ("MESSAGING",), "t")], now=T0
    )
    assert (
        store.linkable_page_ids("T1", "U2") == {p.page_id for p in store.get_pages("T1", "U2") if p.can_link} == {"104"}
    )
    assert store.forget_login("T1", "U1") and store.get_login("T1", "U1") is None and store.get_pages("T1", "U1") == []
    assert store.remove_key("T1", "k2") and store.key_secret("T1", "k2") is None


# -- OAuth states, idempotency, audit -------------------------------------------------
def test_states_are_single_use_and_need_confirmation(store):
    state = store.create_state("T1", "U1", now=T0, channel_id="C1", payload={"page": "101"})
    assert store.peek_state(state, now=T0).user_id == "U1"
    assert store.consume_state(state, now=T0) is None  # not confirmed yet
    assert store.confirm_state(state, now=T0, browser="a" * 64)
    assert store.confirm_state(state, now=T0, browser="a" * 64)  # the same browser again: fine
    assert not store.confirm_state(state, now=T0, browser="b" * 64)  # another browser: never
    got = store.consume_state(state, now=T0)
    assert got is not None and got.payload == {"page": "101"} and got.channel_id == "C1"
    assert got.browser == "a" * 64
    assert store.consume_state(state, now=T0) is None  # used
    late = store.create_state("T1", "U1", now=T0, ttl=10)
    store.confirm_state(late, now=T0, browser="a" * 64)
    assert store.consume_state(late, now=T0 + 11) is None  # expired
    # a new state cancels the user's unfinished ones, and no one else's
    first = store.create_state("T1", "U1", now=T0)
    other = store.create_state("T1", "U2", now=T0)
    newest = store.create_state("T1", "U1", now=T0)
    assert store.peek_state(first, now=T0) is None
    assert store.peek_state(other, now=T0) is not None and store.peek_state(newest, now=T0) is not None


def test_first_time_dedupes_within_its_ttl(store):
    assert store.first_time("req-1", now=T0) and not store.first_time("req-1", now=T0 + 10)
    assert store.first_time("req-1", now=T0 + 3601)


def test_audit_history_newest_first(store):
    for i in range(3):
        store.audit("T1", f"a{i}", now=T0 + i, user_id="U1", page_id="101", detail=f"d{i}")
    assert [h["action"] for h in store.history("T1", "101", limit=2)] == ["a2", "a1"]


# -- leases: one holder; compared with the database's clock ----------------------------
def test_lease_has_one_holder_until_it_expires(store):
    assert store.acquire_lease("T1", "101", "A", now=tick(store, T0), ttl=120)
    assert not store.acquire_lease("T1", "101", "B", now=tick(store, T0 + 60), ttl=120)
    assert store.lease_owner("T1", "101", now=tick(store, T0 + 60)) == "A"
    assert store.acquire_lease("T1", "101", "B", now=tick(store, T0 + 121), ttl=120)  # expired: taken over
    store.release_lease("T1", "101", "A")  # not A's any more: nothing happens
    assert store.lease_owner("T1", "101", now=tick(store, T0 + 122)) == "B"
    store.release_lease("T1", "101", "B")
    assert store.lease_owner("T1", "101", now=tick(store, T0 + 122)) is None


class FastWallClock(Clock):
    """A process whose machine clock runs ten minutes ahead: its ``now()`` says so, but it is the
    wall clock (no deliberate shift)."""

    def now(self) -> int:
        return int(time.time()) + 600


def test_a_process_whose_clock_runs_ahead_cannot_take_a_live_lease_or_claim(where):
    """On PostgreSQL leases and claims use the server's clock; a fast machine clock changes nothing.
    (SQLite serves one machine, whose processes share one clock: there the case cannot arise.)"""
    if not where.startswith("postgresql://"):
        pytest.skip("SQLite serves one machine: every process reads the same clock")
    honest = sync_store(where, Vault(KEY), clock=Clock())
    fast = sync_store(where, Vault(KEY), clock=FastWallClock())
    try:
        now = int(time.time())
        assert honest.acquire_lease("T1", "101", "honest", now=now, ttl=120)
        assert not fast.acquire_lease("T1", "101", "fast", now=FastWallClock().now(), ttl=120)
        assert fast.lease_owner("T1", "101", now=FastWallClock().now()) == "honest"
        honest.upsert_link(
            "T1",
            "101",
            now=now,
            page_name="P",
            api_key="k",
            status="active",
            expires_at=now + 2 * DAY,
            next_due_at=now - 1,
        )
        claims = honest.reminders.claim_due(now=now, thresholds=(7, 3, 1), lease=300)
        assert len(claims) == 1
        # Ten minutes later by its own clock, the lease of 300 s would look expired: it is not.
        stolen = fast.reminders.claim_due(now=FastWallClock().now(), thresholds=(7, 3, 1), lease=300)
        assert stolen == []
    finally:
        honest.close()
        fast.close()


# -- the reminder ledger ----------------------------------------------------------------
def due(store: SyncStore, n: int, *, expires: int = T0 + 2 * DAY) -> None:
    async def go(s: Store) -> None:
        async with s.transaction():
            for i in range(n):
                await s.upsert_link(
                    "T1",
                    f"{i:06d}",
                    now=T0,
                    page_name=f"P{i}",
                    api_key="k",
                    status="active",
                    expires_at=expires,
                    next_due_at=T0 - 10,
                )

    store.run(go)


def test_claims_are_exactly_once_and_confirmed_once(store):
    due(store, 30)
    first = store.reminders.claim_due(now=T0, thresholds=(7, 3, 1), lease=600, limit=200)
    assert len(first) == 30 and {c.threshold for c in first} == {3}
    assert store.reminders.claim_due(now=T0, thresholds=(7, 3, 1), lease=600) == []
    c = first[0]
    assert store.reminders.confirm(c, channel_id="C1", message_ts="1.1", now=T0)
    assert not store.reminders.confirm(
        dataclasses.replace(c, claim_id="other"), channel_id="C1", message_ts="1.2", now=T0
    )
    row = store.one("SELECT status, message_ts FROM reminders WHERE id = ?", [c.reminder_id])
    assert row == {"status": "posted", "message_ts": "1.1"}


def test_an_abandoned_claim_is_handed_out_again_after_its_lease_once(store):
    due(store, 1)
    [c] = store.reminders.claim_due(now=tick(store, T0), thresholds=(7, 3, 1), lease=600)
    assert store.reminders.claim_due(now=tick(store, T0 + 599), thresholds=(7, 3, 1), lease=600) == []
    [again] = store.reminders.claim_due(now=tick(store, T0 + 601), thresholds=(7, 3, 1), lease=600)
    assert again.reminder_id == c.reminder_id and again.claim_id != c.claim_id and again.attempts == 1
    assert not store.reminders.confirm(c, channel_id="C1", message_ts="1", now=tick(store, T0))  # the old claim is void
    assert store.reminders.claim_due(now=tick(store, T0 + 602), thresholds=(7, 3, 1), lease=600) == []


def test_a_claim_taken_over_during_a_long_delivery_is_not_renewed(store):
    due(store, 2)
    a, b = store.reminders.claim_due(now=tick(store, T0), thresholds=(7, 3, 1), lease=600)
    assert store.reminders.renew([a], now=tick(store, T0 + 500)) == [a]  # still held: its lease starts again
    assert store.reminders.claim_due(now=tick(store, T0 + 700), thresholds=(7, 3, 1), lease=600) != []  # b's ran out
    taken = {
        c.reminder_id for c in store.reminders.claim_due(now=tick(store, T0 + 1101), thresholds=(7, 3, 1), lease=600)
    }
    assert a.reminder_id in taken  # a's renewed lease ran out too, and another worker took it
    assert store.reminders.renew([a, b], now=tick(store, T0 + 1102)) == []  # neither is ours any more: not posted


def test_a_recorded_send_goes_with_the_claim_to_the_worker_that_takes_it_over(store):
    due(store, 3)
    a, b, c = store.reminders.claim_due(now=tick(store, T0), thresholds=(7, 3, 1), lease=600)
    sent_at = int(time.time())
    store.reminders.attempt([a, b], channel="CSENT", at=sent_at)  # sent, then the worker stopped
    store.reminders.attempt([c], channel="CREFUSED", at=sent_at)
    store.reminders.attempt([c], channel=None, at=None)  # Slack refused it: nothing was posted
    again = store.reminders.claim_due(now=tick(store, T0 + 601), thresholds=(7, 3, 1), lease=600)
    by_id = {x.reminder_id: x for x in again}
    assert sorted(by_id) == sorted([a.reminder_id, b.reminder_id, c.reminder_id])
    assert (by_id[a.reminder_id].attempt_at, by_id[a.reminder_id].attempt_channel) == (sent_at, "CSENT")
    assert (by_id[c.reminder_id].attempt_at, by_id[c.reminder_id].attempt_channel) == (None, None)
    assert all(x.claim_id not in (a.claim_id, b.claim_id, c.claim_id) for x in again)  # new holders
    store.reminders.attempt([a], channel="CLATE", at=sent_at + 1)  # the old holder's claim ids no longer match
    assert store.select("SELECT attempt_channel FROM reminders WHERE id = ?", [a.reminder_id]) == [
        {"attempt_channel": "CSENT"}
    ]


def test_release_give_up_drop_and_prune(store):
    due(store, 3)
    a, b, c = store.reminders.claim_due(now=tick(store, T0), thresholds=(7, 3, 1), lease=600)
    assert store.reminders.release(a, error="ratelimited") == 1
    [retry] = store.reminders.claim_due(
        now=tick(store, T0 + 1), thresholds=(7, 3, 1), lease=600
    )  # released: stale at once
    assert retry.reminder_id == a.reminder_id
    store.reminders.give_up(b, error="channel_not_found", now=tick(store, T0))
    store.reminders.drop(c, why="superseded", now=tick(store, T0))
    statuses = {r["id"]: r["status"] for r in store.select("SELECT id, status FROM reminders")}
    assert statuses[b.reminder_id] == "failed" and statuses[c.reminder_id] == "dropped"
    for i in range(12):
        store.audit("T1", "x", now=T0 - 500 * DAY + i, user_id=None, page_id="101")
    audit, reminders = store.reminders.prune(before=T0 + 1)
    assert audit == 2 and reminders == 2  # each Page keeps its 10 latest audit rows; finished reminders go
    assert len(store.history("T1", "101", limit=50)) == 10


def test_breakage_is_claimed_once_per_breakage(store):
    bl = link(store, "101", expires_at=T0 + 30 * DAY)
    first = store.reminders.claim_breakage(bl, now=T0)
    assert first is not None and first.kind == "broken" and first.threshold == 1
    assert store.reminders.claim_breakage(bl, now=T0 + 1) is None
    store.upsert_link("T1", "101", now=T0, broken_at=None)
    second = store.reminders.claim_breakage(store.get_link("T1", "101"), now=T0 + 2)
    assert second is not None and second.threshold == 2


def test_probe_batches_page_forward(store):
    for i in range(5):
        link(store, str(i), checked_at=0, page_token=f"tok{i}")
    first = store.reminders.probe_batch(now=T0, after=(-1, 0), limit=3)
    rest = store.reminders.probe_batch(now=T0, after=(first[-1].checked_at, first[-1].link_id), limit=3)
    assert len(first) == 3 and len(rest) == 2
    assert {p.token for p in first + rest} == {f"tok{i}" for i in range(5)}


# -- the schema ---------------------------------------------------------------------------
def test_both_engines_carry_one_versioned_schema():
    from bot.store import migrations, migrations_pg

    assert migrations.names() == migrations_pg.names()


def test_serve_refuses_a_postgresql_schema_behind_its_version():
    with pg.fresh_schema("old") as url:  # created, never migrated
        runner = LoopThread()
        store = Store(open_engine(url), Vault(KEY))
        with pytest.raises(SchemaError, match="fblink migrate"):
            runner.run(store.open())
        runner.stop()
        pg.migrate(url)
        pg.migrate(url)  # a second run (another replica) finds nothing to do
        ok = sync_store(url, Vault(KEY))
        assert ok.ping()
        ok.close()


def test_migrate_from_several_processes_at_once_applies_each_step_once():
    with pg.fresh_schema("mig") as url:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        code = "import sys, asyncio; from bot.dbtools import migrate; from bot.store import open_engine; print(len(asyncio.run(migrate(open_engine(sys.argv[1])))))"
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(3)
        ]
        applied = sorted(int(p.communicate(timeout=60)[0]) for p in procs)
        from bot.store import migrations_pg

        assert applied == [0, 0, len(migrations_pg.names())]


# -- several processes on one database ----------------------------------------------------
CLAIMER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from bot.clock import FixedClock
    from bot.crypto import Vault
    from bot.store import Store, open_engine

    async def main(url, key, now, out):
        store = Store(open_engine(url), Vault(key), clock=FixedClock(now))
        await store.open()
        open(out + ".ready", "w").close()
        while not os.path.exists(os.path.join(os.path.dirname(out), "go")):  # start together
            await asyncio.sleep(0.01)
        got = []
        while True:
            batch = await store.reminders.claim_batch(now=now, thresholds=(7, 3, 1), lease=600, limit=100)
            got += [c.link.id for c in batch.claims]
            if not batch.touched:
                break
        await store.close()
        open(out, "w").write(json.dumps(got))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    """
)


def test_two_processes_claim_10000_due_reminders_exactly_once(where, tmp_path):
    s = sync_store(where, Vault(KEY))
    due(s, 10_000)
    s.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [tmp_path / f"claims{i}.json" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, where, KEY, str(T0), str(out)], env=env) for out in outs]
    deadline = time.monotonic() + 120
    while not all(Path(f"{out}.ready").exists() for out in outs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a claimer did not start"
        time.sleep(0.02)
    (tmp_path / "go").touch()
    for p in procs:
        assert p.wait(timeout=300) == 0
    a, b = (json.loads(out.read_text()) for out in outs)
    assert len(a) + len(b) == 10_000 and len(set(a) | set(b)) == 10_000  # 0 duplicates, 0 missed
    if where.startswith("postgresql://"):  # SKIP LOCKED: each takes rows the other holds no lock on
        assert a and b, "both processes took a share"
    # (SQLite's writers take turns on one lock, and its busy handler may let one process take every batch.)


HOLDER = textwrap.dedent(
    """
    import asyncio, sys, time
    from bot.clock import FixedClock
    from bot.crypto import Vault
    from bot.store import Store, open_engine

    async def main(url, key, now):
        store = Store(open_engine(url), Vault(key), clock=FixedClock(now))
        await store.open()
        assert await store.acquire_lease("T1", "101", "doomed", now=now, ttl=120)
        claims = await store.reminders.claim_due(now=now, thresholds=(7, 3, 1), lease=600)
        print(len(claims), flush=True)
        time.sleep(600)  # killed here, holding both

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_a_killed_process_leaves_its_lease_and_claim_to_be_taken_once_after_expiry(where, store):
    due(store, 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, where, KEY, str(T0)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "1"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not store.acquire_lease("T1", "101", "next", now=tick(store, T0 + 60), ttl=120)  # still live
    assert store.reminders.claim_due(now=tick(store, T0 + 60), thresholds=(7, 3, 1), lease=600) == []
    assert store.acquire_lease("T1", "101", "next", now=tick(store, T0 + 121), ttl=120)  # expired: taken
    taken = store.reminders.claim_due(now=tick(store, T0 + 601), thresholds=(7, 3, 1), lease=600)
    assert len(taken) == 1 and taken[0].attempts == 1  # abandoned: counted as an attempt
    assert store.reminders.claim_due(now=tick(store, T0 + 602), thresholds=(7, 3, 1), lease=600) == []  # exactly once
