"""Token rotation through one path, on both engines: a due bot token is refreshed once, even when
several tasks or processes ask for it at the same moment.

The fake Slack has token rotation on: a refresh token is single-use, so a second refresh with the
same token would answer ``invalid_refresh_token`` and fail the process that sent it. Each test
counts the ``oauth.v2.access`` refresh calls that reached the fake and checks the token every
caller ends with, the row in the database and that the token works at the fake.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.crypto import Vault
from bot.fakes.slack import FakeSlack
from bot.fakes.slack_oauth import Installer, SlackOAuth
from bot.installations import (
    InstallationStore,
    Refresher,
    TokenRefreshError,
    fresh_bot_token,
    slack_refresher,
)
from bot.store import Store
from tests.store_sync import SyncStore, sync_store
from tests.test_slack_oauth_fake import with_oauth
from tests.test_store_contract import where  # noqa: F401  # the two-engine fixture

KEY = Fernet.generate_key().decode()
ROOT = Path(__file__).resolve().parents[1]
TEAM = "T0AAA"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = with_oauth(SlackOAuth(rotation=True))
    yield fake
    fake.stop()


@pytest.fixture
def store(where: str) -> Iterator[SyncStore]:
    s = sync_store(where, Vault(KEY), clock=Clock())
    yield s
    s.close()


def api(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(base_url=slack.url + "/api/")


def refresher(slack: FakeSlack) -> Refresher:
    return slack_refresher(api(slack), slack.oauth.client_id, slack.oauth.client_secret)


def installed(slack: FakeSlack, store: SyncStore, *, due: bool) -> dict[str, str]:
    """Install at the fake (rotation on), store it, and make its token due (or not) for refresh."""
    oauth = slack.oauth
    code = oauth.grant(Installer(team_id=TEAM, team_name="Acme"))

    async def exchange() -> dict[str, str]:
        answer = await api(slack).oauth_v2_access(
            client_id=oauth.client_id, client_secret=oauth.client_secret, code=code
        )
        return dict(answer.data)  # type: ignore[arg-type]

    first = asyncio.run(exchange())
    inst = Installation(
        team_id=TEAM,
        team_name="Acme",
        bot_token=first["access_token"],
        bot_id="BBT0AAA",
        bot_user_id=first["bot_user_id"],
        bot_refresh_token=first["refresh_token"],
        bot_token_expires_in=int(first["expires_in"]),
        user_id="U0ADA",
    )
    s = InstallationStore(store.unwrapped)
    store.run(lambda _: s.async_save(inst))
    if due:  # 60 s left: inside the 2-hour window
        store.execute("UPDATE slack_installations SET bot_token_expires_at = ?", [int(time.time()) + 60])
    return first


def stored(store: SyncStore) -> Installation:
    s = InstallationStore(store.unwrapped)
    got = store.run(lambda _: s.async_find_installation(enterprise_id=None, team_id=TEAM))
    assert got is not None
    return got


def test_a_token_outside_the_window_is_used_as_it_is(slack: FakeSlack, store: SyncStore) -> None:
    first = installed(slack, store, due=False)
    got = store.run(lambda st: fresh_bot_token(st, refresher(slack), enterprise_id=None, team_id=TEAM))
    assert got is not None and got.bot_token == first["access_token"]
    assert slack.oauth.refresh_calls() == []


def test_a_due_token_is_refreshed_once_and_stored_encrypted(slack: FakeSlack, store: SyncStore) -> None:
    first = installed(slack, store, due=True)
    got = store.run(lambda st: fresh_bot_token(st, refresher(slack), enterprise_id=None, team_id=TEAM))
    assert got is not None and got.bot_token != first["access_token"]
    assert got.bot_token_expires_at is not None and got.bot_token_expires_at >= int(time.time()) + 43200 - 60
    now = stored(store)
    assert (now.bot_token, now.bot_refresh_token) == (got.bot_token, got.bot_refresh_token)
    assert now.bot_refresh_token != first["refresh_token"]
    raw = json.dumps(store.select("SELECT * FROM slack_installations"), default=str)
    assert str(got.bot_token) not in raw and str(got.bot_refresh_token) not in raw
    assert slack.oauth.problem(str(got.bot_token)) is None  # the fake knows it as live
    again = store.run(lambda st: fresh_bot_token(st, refresher(slack), enterprise_id=None, team_id=TEAM))
    assert again is not None and again.bot_token == got.bot_token
    assert len(slack.oauth.refresh_calls()) == 1


def test_many_tasks_of_one_process_refresh_once(slack: FakeSlack, store: SyncStore) -> None:
    installed(slack, store, due=True)
    slack.oauth.hold_refresh = threading.Event()

    async def many(st: Store) -> list[str | None]:
        tasks = [
            asyncio.ensure_future(fresh_bot_token(st, refresher(slack), enterprise_id=None, team_id=TEAM))
            for _ in range(5)
        ]
        await asyncio.to_thread(slack.wait_for, lambda: slack.oauth.refresh_calls())
        await asyncio.sleep(0)  # the other tasks run up to their wait for the row
        slack.oauth.hold_refresh.set()  # type: ignore[union-attr]
        return [i.bot_token if i else None for i in await asyncio.gather(*tasks)]

    tokens = store.run(many)
    assert len(set(tokens)) == 1 and tokens[0] == stored(store).bot_token
    assert len(slack.oauth.refresh_calls()) == 1


def test_a_spent_refresh_token_is_an_error_and_changes_nothing(slack: FakeSlack, store: SyncStore) -> None:
    first = installed(slack, store, due=True)

    async def spend() -> None:  # someone else (a stale copy of the app) used it
        await api(slack).oauth_v2_access(
            client_id=slack.oauth.client_id,
            client_secret=slack.oauth.client_secret,
            grant_type="refresh_token",
            refresh_token=first["refresh_token"],
        )

    asyncio.run(spend())
    with pytest.raises(TokenRefreshError, match="invalid_refresh_token"):
        store.run(lambda st: fresh_bot_token(st, refresher(slack), enterprise_id=None, team_id=TEAM))
    assert stored(store).bot_token == first["access_token"]  # rolled back: the row is as it was


def test_an_org_install_is_refreshed_for_any_workspace_of_its_org(slack: FakeSlack, store: SyncStore) -> None:
    oauth = slack.oauth
    code = oauth.grant(Installer(team_id=None, enterprise_id="E0ORG", enterprise_name="Acme", org_install=True))

    async def exchange() -> dict[str, str]:
        answer = await api(slack).oauth_v2_access(
            client_id=oauth.client_id, client_secret=oauth.client_secret, code=code
        )
        return dict(answer.data)  # type: ignore[arg-type]

    first = asyncio.run(exchange())
    inst = Installation(
        enterprise_id="E0ORG",
        team_id=None,
        is_enterprise_install=True,
        bot_token=first["access_token"],
        bot_refresh_token=first["refresh_token"],
        bot_token_expires_at=int(time.time()) + 60,
        user_id="W0ADM",
    )
    s = InstallationStore(store.unwrapped)
    store.run(lambda _: s.async_save(inst))
    got = store.run(
        lambda st: fresh_bot_token(
            st, refresher(slack), enterprise_id="E0ORG", team_id="T0BBB", is_enterprise_install=True
        )
    )
    assert got is not None and got.bot_token != first["access_token"] and got.team_id is None
    assert len(oauth.refresh_calls()) == 1


REFRESHER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from slack_sdk.web.async_client import AsyncWebClient
    from bot.crypto import Vault
    from bot.installations import fresh_bot_token, slack_refresher
    from bot.store import Store, open_engine

    async def main(url, key, api, client_id, secret, out, go):
        store = Store(open_engine(url), Vault(key))
        await store.open()
        client = AsyncWebClient(base_url=api)
        open(out + ".ready", "w").close()
        while not os.path.exists(go):
            await asyncio.sleep(0.01)
        open(out + ".calling", "w").close()
        got = await fresh_bot_token(
            store, slack_refresher(client, client_id, secret), enterprise_id=None, team_id="T0AAA"
        )
        test = await client.auth_test(token=got.bot_token)
        await store.close()
        with open(out, "w") as f:
            json.dump({"token": got.bot_token, "expires_at": got.bot_token_expires_at, "team": test["team_id"]}, f)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def lock_waiters(store: SyncStore) -> int:
    """PostgreSQL sessions waiting for a row lock on an installation (the second process)."""
    row = store.one(
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE '%FROM slack_installations WHERE id%'"
    )
    return int(row["n"]) if row else 0


def wait_until(check, procs: list[subprocess.Popen[bytes]], what: str, limit: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while not check():
        assert all(p.poll() is None for p in procs), f"a process ended while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(
    slack: FakeSlack,
    store: SyncStore,
    where: str,
    tmp_path: Path,
) -> None:
    first = installed(slack, store, due=True)
    slack.oauth.hold_refresh = threading.Event()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    gos = [tmp_path / "go-a", tmp_path / "go-b"]
    cid, secret = slack.oauth.client_id, slack.oauth.client_secret
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESHER, where, KEY, slack.url + "/api/", cid, secret, str(out), str(go)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for out, go in zip(outs, gos, strict=True)
    ]
    try:
        wait_until(lambda: all(Path(f"{o}.ready").exists() for o in outs), procs, "both processes to start")
        gos[0].touch()  # A finds the token due, takes the row and asks Slack; the fake holds its answer
        wait_until(lambda: len(slack.oauth.refresh_calls()) == 1, procs, "A's refresh")
        gos[1].touch()  # B finds the same due token while A holds the row
        wait_until(lambda: Path(f"{outs[1]}.calling").exists(), procs, "B to ask for the token")
        if where.startswith("postgresql://"):
            wait_until(lambda: lock_waiters(store) >= 1, procs, "B to wait for A's row lock")
        slack.oauth.hold_refresh.set()
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read().decode() if p.stderr else ""
    finally:
        slack.oauth.hold_refresh.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
    a, b = (json.loads(o.read_text()) for o in outs)
    assert len(slack.oauth.refresh_calls()) == 1  # one refresh reached Slack
    assert a["token"] == b["token"] != first["access_token"]  # both ended with the new token
    assert a["team"] == b["team"] == TEAM  # and it works at the fake
    now = stored(store)
    assert now.bot_token == a["token"] and now.bot_token_expires_at == a["expires_at"] == b["expires_at"]


def test_the_cached_authorize_refreshes_a_due_token_then_serves_from_its_cache(
    slack: FakeSlack, store: SyncStore
) -> None:
    from bot.authorize import CachedAuthorize

    first = installed(slack, store, due=True)
    auth = CachedAuthorize(store.unwrapped, refresher(slack), ttl=3600)
    got = store.run(lambda _: auth.install_for(None, TEAM))
    assert got is not None and got.bot_token != first["access_token"]  # due: refreshed before use
    for _ in range(3):
        again = store.run(lambda _: auth.install_for(None, TEAM))
        assert again is not None and again.bot_token == got.bot_token
    assert (auth.misses, auth.hits) == (1, 3) and len(slack.oauth.refresh_calls()) == 1
    # a token inside its refresh window is never served from the cache
    store.execute("UPDATE slack_installations SET bot_token_expires_at = ?", [int(time.time()) + 60])
    auth.forget(team_id=TEAM)
    store.run(lambda _: auth.install_for(None, TEAM))
    store.run(lambda _: auth.install_for(None, TEAM))
    assert auth.misses == 2 and len(slack.oauth.refresh_calls()) == 2  # refreshed once more, then cached
    assert store.run(lambda _: auth.install_for(None, "T0NONE")) is None


def test_an_entry_past_its_ttl_is_served_while_one_background_read_replaces_it_but_never_once_gone(
    slack: FakeSlack, store: SyncStore
) -> None:
    """Refresh ahead: a steady stream of requests never waits on the database for a workspace it
    has seen (bench/workspaces.py: 1,000 entries loaded together came due together, and their
    reads put the status p99 over budget); an uninstall still ends the serving at once."""
    from bot.authorize import JITTER, CachedAuthorize
    from bot.store.teams import TeamRows

    installed(slack, store, due=False)
    clock = [1000.0]
    auth = CachedAuthorize(store.unwrapped, refresher(slack), ttl=60, recheck=5, monotonic=lambda: clock[0])

    def lookup() -> str | None:
        got = store.run(lambda _: auth.install_for(None, TEAM))
        return None if got is None else got.team_name

    assert lookup() == "Acme" and (auth.misses, auth.hits, auth.refreshes) == (1, 0, 0)
    store.execute("UPDATE slack_installations SET team_name = ?", ["Acme Renamed"])
    clock[0] += 60 * (1 + JITTER) + 1  # past the TTL, within twice it
    assert lookup() == "Acme"  # the entry it had, without a read on the request's path
    for _ in range(100):  # the background read runs on the store's loop
        if lookup() == "Acme Renamed":
            break
        store.run(lambda _: asyncio.sleep(0.01))
    assert lookup() == "Acme Renamed"  # replaced by the one background read
    assert auth.misses == 1 and auth.refreshes == 1

    clock[0] += 2 * 60 * (1 + JITTER) + 1  # nobody asked for two TTLs: too old to serve
    assert lookup() == "Acme Renamed" and auth.misses == 2

    # marked gone by another process: dropped at the next recheck, stale window or not
    clock[0] += 60 * (1 + JITTER) + 1
    store.run(lambda _: TeamRows(store.unwrapped).retire([TEAM], None, now=int(time.time())))
    assert lookup() is None
    assert auth.refreshes == 1  # no read ahead for an install that is gone
